"""How much each channel unit of a group matters, so the least important go first.

l1 / l2: the norm of each producer's filter (its weight row), times the |scale| of a BatchNormalization on
that output when there is one. activation: the mean |activation| of the channel on calibration samples at
each producer's output. Either way each producer's scores are divided by their mean before they are summed
over the group's producers: a residual group ties layers whose weights have different scales, and without it
the layer with the largest weights alone would decide.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import onnx_ir as ir

from optimizer.pruning.channels import runtime
from optimizer.pruning.channels.constants import constant_array
from optimizer.pruning.channels.groups import ChannelGraph, ChannelGroup, node_name


def group_scores(model: ir.Model, channel_graph: ChannelGraph, groups: Sequence[ChannelGroup],
                 importance: str, samples: runtime.Samples | None = None, *,
                 threads: int | None = None) -> dict[int, np.ndarray]:
    """Group index -> one score per unit (in `group.units` order)."""
    per_row = _activation_rows(model, channel_graph, groups, samples, threads) if importance == "activation" \
        else _weight_rows(model, channel_graph, importance)
    scores = {}
    for group in groups:
        position = {int(root): index for index, root in enumerate(group.units)}
        total = np.zeros(group.size)
        for producer in group.producers:
            rows = per_row[producer]
            roots = channel_graph.slots[channel_graph.producer_outputs[producer]]
            mean = rows.mean() if rows.size and rows.mean() > 0 else 1.0
            for root, score in zip(roots.tolist(), rows / mean):
                if root in position:  # a producer of a depthwise chain also carries other groups' channels
                    total[position[root]] += score
        scores[group.index] = total
    return scores


def _weight_rows(model: ir.Model, channel_graph: ChannelGraph, importance: str) -> dict[str, np.ndarray]:
    nodes = {node_name(node): node for node in model.graph}
    rows = {}
    for producer in channel_graph.producer_outputs:
        node = nodes[producer]
        weight = node.inputs[1].const_value.numpy().astype(np.float64)
        if node.op_type == "Conv" or (node.op_type == "Gemm" and node.attributes.get("transB") is not None
                                      and node.attributes["transB"].value):
            matrix = weight.reshape(weight.shape[0], -1)
        else:
            matrix = weight.T  # MatMul / Gemm weight [in, out]: a filter is a column
        norms = np.abs(matrix).sum(1) if importance == "l1" else np.sqrt((matrix * matrix).sum(1))
        rows[producer] = norms * _batchnorm_scale(node.outputs[0], len(norms))
    return rows


def _batchnorm_scale(output: ir.Value, channels: int) -> np.ndarray:
    """|gamma / sqrt(var + eps)| of a BatchNormalization reading the output (1 when there is none): a filter
    the normalization scales down matters less, whatever its norm."""
    for use, _ in output.uses():
        if use.op_type == "BatchNormalization":
            scale, variance = constant_array(use.inputs[1]), constant_array(use.inputs[4])
            epsilon = use.attributes["epsilon"].value if "epsilon" in use.attributes else 1e-5
            if scale is not None and variance is not None and scale.shape == (channels,):
                return np.abs(scale.astype(np.float64)) / np.sqrt(variance.astype(np.float64) + epsilon)
    return np.ones(channels)


def _activation_rows(model: ir.Model, channel_graph: ChannelGraph, groups: Sequence[ChannelGroup],
                     samples: runtime.Samples | None, threads: int | None) -> dict[str, np.ndarray]:
    if not samples:
        raise ValueError("activation importance needs calibration samples")
    producers = sorted({producer for group in groups for producer in group.producers})
    outputs = [channel_graph.producer_outputs[producer] for producer in producers]
    statistics = runtime.channel_statistics(model, outputs, samples, threads=threads)
    return {producer: statistics[output].abs_mean for producer, output in zip(producers, outputs)}
