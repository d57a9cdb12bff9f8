"""The range of every float activation of a TFLiteGraph, for full-integer INT8.

By name first (the ONNX value a tensor stands for, whose range calibration measured), else derived from the op
that computes it: a transpose, pad, split or pool keeps its input's range, a clip clips it, adding a constant
shifts it, LOGISTIC/SOFTMAX/TANH have their fixed output ranges.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
from optimizer.backends.litert.flatbuffer import TFLiteGraph
from optimizer.backends.litert.precision._uses import Uses
from optimizer.backends.litert.precision.int8_kernels import KERNELS, Range, positions_of

_NOT_A_RANGE = 1e30


def tensor_ranges(graph: TFLiteGraph, uses: Uses, ranges: Mapping[str, Range]) -> dict[int, Range]:
    """The range of every float activation: by name (the ONNX value it stands for), else derived from the op
    that computes it (a transpose, pad, split or pool keeps its input's range, a clip clips it, adding a constant
    shifts it)."""
    found: dict[int, Range] = {}

    def lookup(index: int) -> Range | None:
        if index < 0:
            return None
        if index in found:
            return found[index]
        if graph.is_constant(index) and uses.dtype(index) == np.float32:
            data = graph.constant_data(index)
            return (float(data.min()), float(data.max())) if data.size else None
        return None

    for index in graph.inputs:
        named = _named_range(graph.tensors[index].name, ranges)
        if named is not None:
            found[index] = _as_range(named)
    for op in graph.operators:
        builtin = graph.builtin(op)
        for index in op.outputs:
            if not uses.is_float_activation(index):
                continue
            derived = _named_range(graph.tensors[index].name, ranges)
            if derived is None:
                derived = _derived_range(builtin, [lookup(i) for i in op.inputs], op, graph)
            if derived is not None:
                found[index] = _as_range(derived)
    return found


# The converter's names for a value written twice: in the other layout, or copied to be a distinct output.
_SAME_VALUE_SUFFIXES = ("_nhwc", "_onnx", "_out")


def _named_range(name: str, ranges: Mapping[str, Range]) -> Range | None:
    if name in ranges:
        return ranges[name]
    for suffix in _SAME_VALUE_SUFFIXES:
        if name.endswith(suffix) and name.removesuffix(suffix) in ranges:
            return ranges[name.removesuffix(suffix)]
    return None


def _as_range(value) -> Range:
    low, high = (float(v) for v in value)
    return low, high


def _derived_range(builtin: str, inputs: list[Range | None], op: Any, graph: TFLiteGraph) -> Range | None:
    first = inputs[0] if inputs else None
    kernel = KERNELS.get(builtin)
    if builtin in ("MAXIMUM", "MINIMUM") and len(inputs) == 2 and None not in inputs:
        pick = max if builtin == "MAXIMUM" else min
        return pick(inputs[0][0], inputs[1][0]), pick(inputs[0][1], inputs[1][1])
    if kernel is not None and kernel.scales == "shared":
        # A max pool's padding holds float's lowest value, which int8 writes as -128: it sets no range.
        known = [inputs[p] for p in sorted(positions_of(kernel, len(inputs)))
                 if inputs[p] is not None and max(map(abs, inputs[p])) < _NOT_A_RANGE]
        if not known:
            return None
        return min(r[0] for r in known), max(r[1] for r in known)
    if builtin in ("LOGISTIC", "SOFTMAX"):
        return 0.0, 1.0
    if builtin == "TANH":
        return -1.0, 1.0
    if first is None:
        return None
    bounds = {"RELU": (0.0, np.inf), "RELU6": (0.0, 6.0), "RELU_0_TO_1": (0.0, 1.0)}
    if builtin in bounds:
        low, high = bounds[builtin]
        return float(np.clip(first[0], low, high)), float(np.clip(first[1], low, high))
    if builtin in ("ADD", "SUB", "MUL") and len(inputs) == 2 and inputs[1] is not None:
        (a, b), (c, d) = first, inputs[1]
        if builtin == "ADD":
            return a + c, b + d
        if builtin == "SUB":
            return a - d, b - c
        products = (a * c, a * d, b * c, b * d)
        return min(products), max(products)
    return None
