"""Bias correction for static INT8: remove the mean error that int8 weights add to each layer's output.

Rounding a layer's weights to int8 changes its output by (W_q - W) x. Over inputs whose channels have non-zero
means (every channel after a SiLU or ReLU), that error does not average out: each output channel is shifted by
(W_q - W) E[x], and the next layers see the shift as signal (Nagel et al., "Data-Free Quantization", 2019).

The shift is measured rather than derived, so that padding and strides count exactly: a quantized copy of the
model gets, beside each int8 layer, a float twin reading the same dequantized input, and one pass over the
calibration data gives both outputs' per-channel means. Their difference is subtracted from the float
model's bias (a Conv or Gemm without one gets one); the real quantization then runs on the corrected model.
A MatMul without a bias input is left as it is (correcting it would add an Add to the graph).
"""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np
import onnx_ir as ir

from optimizer.inputs import Feeds
from optimizer.quantization.calibration import collect_channel_statistics
from optimizer.quantization.selection import label_of
from optimizer.quantization.static_int8 import QuantizeStaticInt8, StaticInt8Config
from optimizer.quantization.weights import add_initializer, constant_array

# Enough samples to pin channel means; more only costs time.
DEFAULT_SAMPLES = 32
_TWIN_SUFFIX = "_float_twin"


def correct_biases(model: ir.Model, config: StaticInt8Config, data: Iterable[Feeds], *,
                   threads: int | None = None, samples: int = DEFAULT_SAMPLES) -> dict[str, float]:
    """Shift the biases of the layers `config` quantizes, in place, by the mean output error of their int8
    weights on `data`. Returns each corrected layer's label with the largest shift relative to its output's
    spread (a figure for the report)."""
    originals = {label_of(node): node for node in model.graph}
    trial = model.clone()
    quantize = QuantizeStaticInt8(config)
    quantize(trial)
    twins = _add_float_twins(trial, originals, quantize)
    if not twins:
        return {}
    axes = {}
    for node in twins.values():
        channel_axis = 1 if node.op_type == "Conv" else -1
        axes[node.outputs[0].name] = axes[f"{node.outputs[0].name}{_TWIN_SUFFIX}"] = channel_axis
    statistics = collect_channel_statistics(trial, axes, data, threads=threads, limit=samples)
    shifts: dict[str, float] = {}
    for label, node in twins.items():
        name = node.outputs[0].name
        quantized, floating = statistics.get(name), statistics.get(f"{name}{_TWIN_SUFFIX}")
        if quantized is None or floating is None:
            continue
        error = (quantized.mean - floating.mean).astype(np.float32)
        if _shift_bias(model.graph, originals[label], error):
            spread = np.maximum(floating.peak, 1e-12)
            shifts[label] = float(np.max(np.abs(error) / spread))
    return shifts


def _add_float_twins(trial: ir.Model, originals: dict[str, ir.Node],
                     quantize: QuantizeStaticInt8) -> dict[str, ir.Node]:
    """For each int8 layer of `trial` that can take a bias, a float copy reading the same dequantized input,
    whose output becomes a graph output. Returns the trial's int8 nodes by label."""
    graph = trial.graph
    int8 = {label for label, precision in quantize.precisions.items() if precision.startswith("int8")}
    nodes: dict[str, ir.Node] = {}
    for node in list(graph):
        label = label_of(node)
        original = originals.get(label)
        if label not in int8 or original is None or not _takes_bias(original):
            continue
        weight = constant_array(original.inputs[1])
        inputs = [node.inputs[0], add_initializer(graph, f"{label}_twin_weight", weight)]
        bias = constant_array(original.inputs[2]) if len(original.inputs) > 2 else None
        if bias is not None:
            inputs.append(add_initializer(graph, f"{label}_twin_bias", bias))
        twin = ir.node(node.op_type, inputs, attributes=dict(node.attributes), domain=node.domain,
                       name=f"{label}{_TWIN_SUFFIX}")
        twin.outputs[0].name = f"{node.outputs[0].name}{_TWIN_SUFFIX}"
        twin.outputs[0].dtype = ir.DataType.FLOAT
        graph.insert_after(node, twin)
        nodes[label] = node
    return nodes


def _takes_bias(node: ir.Node) -> bool:
    if node.op_type == "Conv":
        return True
    if node.op_type == "Gemm":
        return len(node.inputs) < 3 or constant_array(node.inputs[2]) is not None
    return False


def _shift_bias(graph: ir.Graph, node: ir.Node, error: np.ndarray) -> bool:
    """Take `error` off the output of the float model's `node` through its bias; False when its bias is not a
    constant of that size (or a Gemm scales it by beta 0)."""
    if node.op_type == "Gemm":
        beta = node.attributes.get_float("beta", 1.0)
        if beta == 0.0:
            return False
        error = (error / beta).astype(np.float32)  # Gemm adds beta * C
    if len(node.inputs) > 2 and node.inputs[2] is not None:
        bias = constant_array(node.inputs[2])
        if bias is None or bias.size not in (1, error.size):
            return False
        if bias.size == error.size:
            corrected = (bias.reshape(-1) - error).reshape(bias.shape).astype(np.float32)
        else:
            corrected = (bias.reshape(-1)[0] - error).astype(np.float32)
    else:
        corrected = -error
    value = add_initializer(graph, f"{label_of(node)}_corrected_bias", corrected)
    if len(node.inputs) < 3:
        node.resize_inputs(3)
    node.replace_input_with(2, value)
    return True
