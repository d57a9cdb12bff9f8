"""Roofline latency estimates for a device that is not here: time = max(compute time, memory time).

A model's cost is its arithmetic (2 FLOPs per multiply-accumulate of Conv, ConvTranspose, MatMul and Gemm, and
their quantized forms) and its memory traffic (every weight read once, every activation written once). Divided
by the profile's dense datasheet peak and bandwidth, scaled by the efficiencies below, the larger of the two
times is the estimate, and which one it was says whether the model is compute- or memory-bound there.

It is an estimate, and is labelled so (`estimated = True`) wherever it is shown: it ignores kernel launch and
framework overhead (which dominate tiny models on GPUs), caches (which keep small weights and activations out of
DRAM), fusion (which keeps activations on chip), and every op that is not a matrix product. Use it to compare
devices and precisions for one model, not as a promise of milliseconds.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

import onnx_ir as ir

from optimizer.ir import infer_shapes
from optimizer.targets.profiles import TargetProfile

# ASSUMPTIONS, not measurements. Tuned libraries reach 60-80% of tensor-core peak on large GEMMs and convolutions,
# but a whole network (small layers, depthwise convolutions, odd shapes) averages far less; half the peak is a
# middle figure. Streaming kernels reach 70-90% of datasheet DRAM bandwidth (STREAM-like), so 0.7 is the low end.
COMPUTE_EFFICIENCY = 0.5
BANDWIDTH_EFFICIENCY = 0.7

# Bytes per element at each precision, for counting float tensors as the deployed model would store them.
PRECISION_BYTES = {"fp32": 4.0, "fp16": 2.0, "bf16": 2.0, "fp8": 1.0, "int8": 1.0, "int4": 0.5}

# op type -> (index of the weight input for convolutions / of the A input for matrix products)
_CONVOLUTIONS = {"Conv": 1, "ConvInteger": 1, "QLinearConv": 3}
_MATRIX_PRODUCTS = {"MatMul": 0, "MatMulInteger": 0, "QLinearMatMul": 0}


@dataclass(frozen=True)
class RooflineEstimate:
    latency_ms: float
    bound: Literal["compute", "memory"]
    flops: float
    bytes: float
    precision: str
    estimated: bool = True
    """Always True: a model of the device, never a measurement."""


def estimate_latency_ms(
    flops: float, bytes_moved: float, profile: TargetProfile, precision: str
) -> RooflineEstimate | None:
    """The roofline latency of `flops` and `bytes_moved` on `profile` at `precision`.

    None when the profile lacks the peak for that precision or its memory bandwidth: no figure beats a made-up
    one. `bytes_moved` should already be at `precision` (see model_cost's `precision`).
    """
    peak_tops = profile.peak_tops.get(precision)
    bandwidth_gbs = profile.memory_bandwidth_gbs
    if not peak_tops or not bandwidth_gbs:
        return None
    compute_s = flops / (peak_tops * 1e12 * COMPUTE_EFFICIENCY)
    memory_s = bytes_moved / (bandwidth_gbs * 1e9 * BANDWIDTH_EFFICIENCY)
    bound = "compute" if compute_s >= memory_s else "memory"
    return RooflineEstimate(max(compute_s, memory_s) * 1e3, bound, flops, bytes_moved, precision)


def model_cost(model: ir.Model, *, precision: str | None = None) -> tuple[float, float]:
    """(FLOPs, bytes moved) of one inference of `model`.

    Shapes are inferred in place first. A dynamic dimension counts as 1 (fix input shapes first for a real
    figure), and a matrix product whose shapes cannot be inferred counts 0 FLOPs. With `precision`, float
    tensors are counted at that precision's width rather than as stored.
    """
    if precision is not None and precision not in PRECISION_BYTES:
        raise ValueError(f"unknown precision '{precision}'; known: {', '.join(PRECISION_BYTES)}")
    infer_shapes(model)
    flops = 0.0
    activation_bytes = sum(_bytes(value, precision) for value in model.graph.inputs
                           if value.name not in model.graph.initializers)
    for node in ir.traversal.RecursiveGraphIterator(model.graph):
        flops += 2 * _multiply_accumulates(node)
        activation_bytes += sum(_bytes(value, precision) for value in node.outputs)
    weight_bytes = sum(_bytes(value, precision) for graph in model.graphs()
                       for value in graph.initializers.values())
    return flops, weight_bytes + activation_bytes


def _multiply_accumulates(node: ir.Node) -> float:
    if node.domain not in ("", "ai.onnx"):
        return 0.0
    if node.op_type in _CONVOLUTIONS:
        # Each output element takes (input channels / group) x kernel MACs: the weight's dims after the first.
        output, weight = node.outputs[0], _input(node, _CONVOLUTIONS[node.op_type])
        return _elements(output) * _elements(weight, skip=1)
    if node.op_type == "ConvTranspose":
        # Each input element is scattered through (output channels / group) x kernel MACs.
        return _elements(_input(node, 0)) * _elements(_input(node, 1), skip=1)
    if node.op_type in _MATRIX_PRODUCTS:
        a = _input(node, _MATRIX_PRODUCTS[node.op_type])
        return _elements(node.outputs[0]) * _dim(a, -1)
    if node.op_type == "Gemm":
        a = _input(node, 0)
        transposed = node.attributes.get_int("transA", 0)
        return _elements(node.outputs[0]) * _dim(a, 0 if transposed else 1)
    return 0.0


def _input(node: ir.Node, index: int) -> ir.Value | None:
    return node.inputs[index] if index < len(node.inputs) else None


def _elements(value: ir.Value | None, *, skip: int = 0) -> float:
    """Elements of `value` past its first `skip` dims; 0 when its shape is unknown, dynamic dims counted as 1."""
    if value is None or value.shape is None or len(value.shape) < skip:
        return 0.0
    return float(math.prod(dim if isinstance(dim, int) else 1 for dim in list(value.shape)[skip:]))


def _dim(value: ir.Value | None, axis: int) -> float:
    if value is None or value.shape is None or not -len(value.shape) <= axis < len(value.shape):
        return 0.0
    dim = value.shape[axis]
    return float(dim) if isinstance(dim, int) else 1.0


def _bytes(value: ir.Value | None, precision: str | None) -> float:
    """Bytes of a tensor value (0 for one of unknown type or shape, and for strings, which have no width)."""
    if value is None or value.dtype in (None, ir.DataType.UNDEFINED, ir.DataType.STRING):
        return 0.0
    width = float(value.dtype.itemsize)
    if precision is not None and value.dtype.is_floating_point():
        width = PRECISION_BYTES[precision]
    return _elements(value) * width
