"""Label-free recovery of what channel removal costs, from calibration samples alone.

Bias compensation: a removed channel c of a layer's input contributed W[:, c] * x_c to every output; replacing
x_c by its mean over the calibration data keeps that contribution on average, and for a Conv it is a constant
per output channel, mean(x_c) * sum of W[o, c] over the kernel window, which folds into the bias. Zero padding
makes it approximate at the borders (there the window saw zeros, not the mean). Done before shrinking, while
the removed columns are still there.

Statistics matching: after shrinking, each changed layer's pre-activation output (per kept channel) has drifted
from the original's. An affine correction y' = a*y + b with a = std_orig / std_pruned, b = mean_orig - a *
mean_pruned, folded into that Conv's weight row and bias, gives it back the original's mean and spread, the
way BatchNorm re-estimation does for a network that still has BatchNorm. Layers are corrected in topological
waves (a layer's statistics are measured once every layer before it is corrected), so the corrections do not
fight each other.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import onnx_ir as ir

from optimizer.pruning.channels import runtime
from optimizer.pruning.channels.constants import attribute_int, replace_constant

# A correction outside these bounds means the statistics are too noisy (few samples, a near-constant channel)
# to trust; the layer keeps its weights.
MIN_SCALE, MAX_SCALE = 0.25, 4.0
MIN_STD = 1e-6


def compensation_consumers(model: ir.Model, masks: Mapping[str, np.ndarray]) -> list[ir.Node]:
    """The layers that mix channels (Conv with group 1, Gemm) and read a tensor that loses channels."""
    nodes = []
    for node in model.graph:
        x = node.inputs[0] if node.inputs else None
        if x is None or x.name not in masks:
            continue
        if node.op_type == "Conv" and attribute_int(node, "group", 1) == 1 or node.op_type == "Gemm":
            nodes.append(node)
    return nodes


def compensate_biases(model: ir.Model, masks: Mapping[str, np.ndarray],
                      means: Mapping[str, np.ndarray]) -> int:
    """Fold the removed input channels' mean contribution into each consumer's bias; returns the layer count."""
    changed = 0
    for node in compensation_consumers(model, masks):
        x = node.inputs[0]
        removed = ~masks[x.name]
        weight = node.inputs[1].const_value.numpy().astype(np.float64)
        mean = means[x.name][removed]
        if node.op_type == "Conv":
            window = weight[:, removed].sum(axis=tuple(range(2, weight.ndim)))  # [out, removed]
            delta = window @ mean
        else:
            matrix = weight.T if attribute_int(node, "transB", 0) else weight  # [in, out]
            delta = mean @ matrix[removed]
        _add_to_bias(node, delta)
        changed += 1
    return changed


def _add_to_bias(node: ir.Node, delta: np.ndarray) -> None:
    bias = node.inputs[2] if len(node.inputs) > 2 else None
    current = np.zeros(len(delta)) if bias is None else bias.const_value.numpy().astype(np.float64)
    dtype = node.inputs[1].const_value.numpy().dtype
    # A Gemm bias of shape (), (1,) or (1, N) broadcasts against the per-output delta.
    replace_constant(node, 2, np.ascontiguousarray((current + delta).astype(dtype)), suffix="compensated")


def corrected_layers(model: ir.Model, layers: Sequence[str]) -> list[list[ir.Node]]:
    """The Conv nodes named in `layers` (by output name), in waves: no layer depends on another of its wave."""
    wanted = set(layers)
    depth: dict[str, int] = {}
    waves: dict[int, list[ir.Node]] = {}
    for node in model.graph:
        level = max((depth.get(v.name, 0) for v in node.inputs if v is not None), default=0)
        if node.op_type == "Conv" and node.outputs[0].name in wanted:
            waves.setdefault(level, []).append(node)
            level += 1
        for value in node.outputs:
            depth[value.name] = level
    return [waves[level] for level in sorted(waves)]


def match_statistics(model: ir.Model, original: Mapping[str, runtime.ChannelStatistics],
                     masks: Mapping[str, np.ndarray], layers: Sequence[str], samples: runtime.Samples, *,
                     scale: bool = True, threads: int | None = None) -> int:
    """Correct each layer's kept channels to the original's mean and std (only the mean when `scale` is
    False); returns the channels corrected.

    Correcting every layer at once, a few passes over, was tried on yolov8n and diverged (cosine 0.984 after
    2 passes, 0.973 after 4, against 0.988 in waves): each pass corrects a layer for upstream drift that the
    same pass also removes upstream.
    """
    corrected = 0
    for wave in corrected_layers(model, layers):
        names = [node.outputs[0].name for node in wave]
        pruned = runtime.channel_statistics(model, names, samples, threads=threads)
        for node, name in zip(wave, names):
            keep = masks.get(name)
            target = original[name]
            reference_mean = target.mean if keep is None else target.mean[keep]
            reference_std = target.std if keep is None else target.std[keep]
            corrected += _fold_affine(node, reference_mean, reference_std, pruned[name], scale)
    return corrected


def _fold_affine(node: ir.Node, mean: np.ndarray, std: np.ndarray, measured: runtime.ChannelStatistics,
                 rescale: bool) -> int:
    scale = np.where(measured.std > MIN_STD, std / np.maximum(measured.std, MIN_STD), 1.0)
    if not rescale:
        scale = np.ones_like(scale)
    trusted = (scale >= MIN_SCALE) & (scale <= MAX_SCALE) & (std > MIN_STD)
    scale = np.where(trusted, scale, 1.0)
    shift = np.where(trusted, mean - scale * measured.mean, 0.0)
    weight = node.inputs[1].const_value.numpy()
    dtype = weight.dtype
    scaled = weight.astype(np.float64) * scale.reshape(-1, *([1] * (weight.ndim - 1)))
    bias = node.inputs[2] if len(node.inputs) > 2 else None
    current = np.zeros(len(scale)) if bias is None else bias.const_value.numpy().astype(np.float64)
    replace_constant(node, 1, scaled.astype(dtype), suffix="matched")
    replace_constant(node, 2, (current * scale + shift).astype(dtype), suffix="matched")
    return int(trusted.sum())
