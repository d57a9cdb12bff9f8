"""What a weight is worth: its magnitude (l1, l2), or its magnitude times its input's (activation, as Wanda does).

Activation importance scores W[k, n] by |W[k, n]| * ||X_k||_2, X_k being input channel k over every row (token,
pixel, sample) of the calibration data: a small weight on a channel that carries large activations (the outlier
features of transformers) moves the output more than a large weight on a quiet one. The norms come from one
pass of the calibration samples through ONNX Runtime; only per-channel sums of squares are kept, so memory is
one sample's activations.

Every mask function of masks.py takes (weight, importance in l1/l2): activation importance hands them the
weight already scaled by its input norms, with l1, which is exactly |W| * ||X||.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np

from optimizer.pruning.layers import Layer
from optimizer.pruning.probe import Sample, WeightProbe


def input_norms(probe: WeightProbe, layers: Sequence[Layer], samples: Sequence[Sample]) -> dict[str, np.ndarray]:
    """Layer input name -> ||X_k||_2 per input channel k, over every sample (the probe outputs those inputs)."""
    channels = {layer.node.inputs[0].name: channel_axis(layer) for layer in layers}
    sums: dict[str, np.ndarray] = {}
    for sample in samples:
        result = probe.run(sample)
        for name, axis in channels.items():
            array = np.asarray(result[name], dtype=np.float64)
            squares = np.moveaxis(array, axis, -1).reshape(-1, array.shape[axis]) ** 2
            sums[name] = sums.get(name, 0.0) + squares.sum(axis=0)
    return {name: np.sqrt(total) for name, total in sums.items()}


def channel_axis(layer: Layer) -> int:
    """Where the input channel sits in the layer's input: C of [N, C, ...] for Conv, the last axis for MatMul,
    and for Gemm the last axis of A, or the first with transA (A is then [K, M])."""
    if layer.op_type == "Conv":
        return 1
    if layer.op_type == "Gemm":
        trans_a = layer.node.attributes.get("transA")
        return 0 if trans_a is not None and int(trans_a.value) else -1
    return -1


def scoring_weight(layer: Layer, weight: np.ndarray, importance: str,
                   norms: Mapping[str, np.ndarray] | None) -> tuple[np.ndarray, str]:
    """(weight to score, l1 or l2) for masks.py: the weight itself, or |W| scaled along its input axis by the
    input's channel norms (activation importance). For grouped Convs each group sees its own channels."""
    if importance != "activation":
        return weight, importance
    norm = norms[layer.node.inputs[0].name]
    if layer.op_type == "Conv":
        group = layer.node.attributes.get("group")
        groups = int(group.value) if group is not None else 1
        # Output channel c of group g reads input channels g * (C_in / groups) ... : one row of norms each.
        rows = np.repeat(norm.reshape(groups, weight.shape[1]), weight.shape[0] // groups, axis=0)
        scale = rows.reshape(weight.shape[:2] + (1,) * (weight.ndim - 2))
    else:
        shape = [1, 1]
        shape[layer.input_axis] = norm.size
        scale = norm.reshape(shape)
    return np.abs(weight.astype(np.float64)) * scale, "l1"

