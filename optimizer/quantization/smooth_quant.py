"""SmoothQuant: move activation outliers into the weights before INT8, where per-channel scales absorb them.

Transformer activations carry a few channels tens of times larger than the rest, so one per-tensor activation
scale wastes most of the int8 levels on them; weights are quantized per output channel and barely notice a
per-input-channel factor. For a MatMul X·W, dividing input channel k of X by s_k and multiplying row k of W by
s_k leaves the product unchanged, and with s_k = max|X_k|^alpha / max|W_k|^(1-alpha) the two ranges meet in
the middle (Xiao et al., "SmoothQuant", 2023; alpha 0.5 is their default for BERT-sized models).

The division by s is folded into the LayerNormalization that produces X (its scale and bias): that is where
the outliers live in a transformer (the inputs of the Q/K/V and first feed-forward projections). Every MatMul or
Gemm with a constant weight that reads it shares the same s. In a post-LN model (BERT) the normalized tensor is
also the residual stream: its other readers get it back through one Mul by s (an elementwise op on the
residual, ~10 us on MiniLM's [1, 128, 384]); a pre-LN model (GPT, LLaMA) needs none.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np
import onnx_ir as ir

from optimizer.inputs import Feeds
from optimizer.ir import is_standard_op
from optimizer.quantization.calibration import collect_channel_statistics
from optimizer.quantization.options import DEFAULT_SMOOTH_QUANT_ALPHA
from optimizer.quantization.selection import label_of
from optimizer.quantization.weights import add_initializer, constant_array

DEFAULT_ALPHA = DEFAULT_SMOOTH_QUANT_ALPHA
DEFAULT_SAMPLES = 32
# Bounds on s: a channel that is all but silent in X or in W would otherwise get a factor that overflows the
# other side's range.
_SCALE_BOUNDS = (1e-3, 1e3)


@dataclass
class _SmoothingGroup:
    norm: ir.Node
    readers: list[ir.Node]
    """The MatMul/Gemm that read the normalized tensor as their input."""
    others: list[ir.Node]
    """Everything else that reads it: these get the unsmoothed tensor back through a Mul."""


def smooth_activations(model: ir.Model, data: Iterable[Feeds], *, alpha: float = DEFAULT_ALPHA,
                       threads: int | None = None, samples: int = DEFAULT_SAMPLES) -> dict[str, float]:
    """Apply SmoothQuant in place to every LayerNormalization -> MatMul/Gemm group of `model`, with activation
    magnitudes from `data`. Returns, for each smoothed LayerNormalization, how much its output's peak-to-median
    channel ratio shrank (1.0: no change)."""
    if not 0.0 < alpha < 1.0:
        raise ValueError(f"SmoothQuant alpha must be in (0, 1), not {alpha}")
    groups = _smoothing_groups(model.graph)
    if not groups:
        return {}
    statistics = collect_channel_statistics(model, {g.norm.outputs[0].name: -1 for g in groups}, data,
                                            threads=threads, limit=samples)
    shrink: dict[str, float] = {}
    for group in groups:
        stats = statistics.get(group.norm.outputs[0].name)
        if stats is None:
            continue
        activation_peak = stats.peak.astype(np.float32)
        weight_peak = np.max([_input_channel_peak(reader) for reader in group.readers], axis=0)
        usable = (activation_peak > 0) & (weight_peak > 0)
        scales = np.ones_like(activation_peak)
        scales[usable] = activation_peak[usable] ** alpha / weight_peak[usable] ** (1.0 - alpha)
        scales = np.clip(scales, *_SCALE_BOUNDS).astype(np.float32)
        label = label_of(group.norm)  # before a graph output's tensor is renamed
        _divide_norm_output(model.graph, group.norm, scales)
        for reader in group.readers:
            _scale_weight_rows(model.graph, reader, scales)
        if group.others or group.norm.outputs[0].is_graph_output():
            _restore_for_other_readers(model.graph, group, scales)
        shrink[label] = _outlier_ratio(activation_peak) / max(_outlier_ratio(activation_peak / scales), 1e-12)
    return shrink


def _smoothing_groups(graph: ir.Graph) -> list[_SmoothingGroup]:
    groups = []
    for node in graph:
        if node.op_type != "LayerNormalization" or not is_standard_op(node):
            continue
        if node.attributes.get_int("axis", -1) != -1 or len(node.outputs[0].uses()) == 0:
            continue
        scale = constant_array(node.inputs[1])
        bias = constant_array(node.inputs[2]) if len(node.inputs) > 2 and node.inputs[2] is not None else None
        if scale is None or scale.ndim != 1 or (len(node.inputs) > 2 and node.inputs[2] is not None
                                                 and (bias is None or bias.shape != scale.shape)):
            continue
        output = node.outputs[0]
        readers, others = [], []
        for use in output.uses():
            smoothable = use.idx == 0 and _is_smoothable_reader(use.node, scale.size)
            (readers if smoothable else others).append(use.node)
        readers = list(dict.fromkeys(readers))
        if readers and not set(readers) & set(others):
            groups.append(_SmoothingGroup(node, readers, list(dict.fromkeys(others))))
    return groups


def _is_smoothable_reader(node: ir.Node, channels: int) -> bool:
    if not is_standard_op(node) or node.op_type not in ("MatMul", "Gemm") or len(node.inputs) < 2:
        return False
    weight = constant_array(node.inputs[1])
    if weight is None or weight.ndim != 2 or weight.dtype != np.float32:
        return False
    if node.op_type == "Gemm" and node.attributes.get_int("transA", 0):
        return False
    return _weight_rows(node, weight).shape[0] == channels


def _transposed(node: ir.Node) -> bool:
    """Whether the weight is stored [outputs, input channels] (Gemm with transB)."""
    return node.op_type == "Gemm" and bool(node.attributes.get_int("transB", 0))


def _weight_rows(node: ir.Node, weight: np.ndarray) -> np.ndarray:
    """The weight as [input channels, outputs]."""
    return weight.T if _transposed(node) else weight


def _input_channel_peak(node: ir.Node) -> np.ndarray:
    return np.abs(_weight_rows(node, constant_array(node.inputs[1]))).max(axis=1)


def _divide_norm_output(graph: ir.Graph, norm: ir.Node, scales: np.ndarray) -> None:
    label = label_of(norm)
    norm.replace_input_with(1, add_initializer(graph, f"{label}_smoothed_scale",
                                               (constant_array(norm.inputs[1]) / scales).astype(np.float32)))
    if len(norm.inputs) > 2 and norm.inputs[2] is not None:
        norm.replace_input_with(2, add_initializer(graph, f"{label}_smoothed_bias",
                                                   (constant_array(norm.inputs[2]) / scales).astype(np.float32)))


def _restore_for_other_readers(graph: ir.Graph, group: _SmoothingGroup, scales: np.ndarray) -> None:
    smoothed = group.norm.outputs[0]
    label = label_of(group.norm)
    restore = ir.node("Mul", [smoothed, add_initializer(graph, f"{label}_smoothing", scales)],
                      name=f"{label}_unsmoothed")
    restored = restore.outputs[0]
    restored.type, restored.shape = smoothed.type, smoothed.shape
    graph.insert_after(group.norm, restore)
    for use in list(smoothed.uses()):
        if use.node in group.others:
            use.node.replace_input_with(use.idx, restored)
    if smoothed.is_graph_output():
        # The graph output keeps its name (and its values): the smoothed tensor is renamed instead.
        restored.name, smoothed.name = smoothed.name, f"{smoothed.name}_smoothed"
        graph.outputs[list(graph.outputs).index(smoothed)] = restored
    else:
        restored.name = f"{smoothed.name}_unsmoothed"


def _scale_weight_rows(graph: ir.Graph, node: ir.Node, scales: np.ndarray) -> None:
    weight = constant_array(node.inputs[1])
    smoothed = weight * (scales[None, :] if _transposed(node) else scales[:, None])
    node.replace_input_with(1, add_initializer(graph, f"{label_of(node)}_smoothed_weight",
                                               smoothed.astype(np.float32)))


def _outlier_ratio(peaks: np.ndarray) -> float:
    """Largest channel peak over the median one: how much range the outliers take from a per-tensor scale."""
    return float(np.max(peaks) / max(float(np.median(peaks)), 1e-12))
