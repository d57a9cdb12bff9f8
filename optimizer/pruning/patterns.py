"""Does a weight have the N:M pattern? The check runtimes with sparse kernels (TensorRT's 2:4 sparse tensor cores)
make before they pick them, done on the ONNX so a bundle can switch sparsity on only when it pays.

TensorRT runs a Conv or MatMul/Gemm sparse when every group of 4 consecutive weights along its input (reduction)
dimension holds at most 2 nonzeros: for a Conv along C_in at each (c_out, kh, kw), for a MatMul weight [K, N]
along K. Weights reach TensorRT as constants, or as int8 constants behind a DequantizeLinear (Q/DQ models), or
behind a Cast (float16 models): all three are looked through.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import onnx_ir as ir


def has_n_m_pattern(weight: np.ndarray, n: int = 2, m: int = 4, axis: int = 0) -> bool:
    """True when every complete group of `m` consecutive elements along `axis` has at most `n` nonzeros (a
    tail shorter than `m` is not checked: kernels leave it dense). A weight with no complete group is False:
    there is nothing a sparse kernel could skip."""
    if not 0 < n <= m:
        raise ValueError(f"N:M needs 0 < N <= M, not {n}:{m}")
    weight = np.moveaxis(np.asarray(weight), axis, -1)
    whole = weight.shape[-1] // m * m
    if whole == 0 or weight.size == 0:
        return False
    groups = weight[..., :whole].reshape(*weight.shape[:-1], whole // m, m)
    return bool(np.all(np.count_nonzero(groups, axis=-1) <= n))


@dataclass
class SparsityScan:
    """Which constant Conv/MatMul/Gemm weights of a model have the N:M pattern along their input dimension."""

    n: int
    m: int
    sparse: list[str] = field(default_factory=list)
    """Nodes whose weight has the pattern."""
    dense: list[str] = field(default_factory=list)
    """Nodes whose weight could have it (input dimension >= m) and does not."""

    @property
    def all_sparse(self) -> bool:
        """Every weight that could run sparse has the pattern (and there is at least one)."""
        return bool(self.sparse) and not self.dense


def scan_n_m(model: ir.Model, n: int = 2, m: int = 4) -> SparsityScan:
    """The N:M scan of every graph of `model` (subgraphs too: TensorRT builds If branches as well)."""
    scan = SparsityScan(n, m)
    for graph in model.graphs():
        for node in graph:
            found = _weight_and_axis(node)
            if found is None:
                continue
            weight, axis = found
            if weight.ndim <= axis or weight.shape[axis] < m:
                continue  # depthwise convs, tiny inputs: no group of m to skip, never a sparse kernel
            label = node.name or node.outputs[0].name or node.op_type
            (scan.sparse if has_n_m_pattern(weight, n, m, axis) else scan.dense).append(label)
    return scan


def _weight_and_axis(node: ir.Node) -> tuple[np.ndarray, int] | None:
    if node.op_type not in ("Conv", "MatMul", "Gemm") or node.domain not in ("", "ai.onnx"):
        return None
    if len(node.inputs) < 2 or node.inputs[1] is None:
        return None
    weight = _constant_through(node.inputs[1])
    if weight is None:
        return None
    if node.op_type == "Conv":
        return (weight, 1) if weight.ndim >= 3 else None
    if weight.ndim != 2:
        return None
    if node.op_type == "MatMul":
        return weight, 0
    trans_b = node.attributes.get("transB")
    return weight, 1 if trans_b is not None and int(trans_b.value) else 0


def _constant_through(value: ir.Value) -> np.ndarray | None:
    """The constant behind `value`: itself, or the input of the DequantizeLinear / Cast / Identity making it
    (zeros stay zeros through each of them, which is all the pattern is about)."""
    for _ in range(3):
        if value.const_value is not None:
            return value.const_value.numpy()
        producer = value.producer()
        if producer is None or producer.op_type not in ("DequantizeLinear", "Cast", "Identity") \
                or not producer.inputs or producer.inputs[0] is None:
            return None
        if producer.op_type == "DequantizeLinear" and _has_nonzero_zero_point(producer):
            return None  # zero points that are not 0 turn stored zeros into nonzero weights
        value = producer.inputs[0]
    return None


def _has_nonzero_zero_point(node: ir.Node) -> bool:
    if len(node.inputs) < 3 or node.inputs[2] is None:
        return False
    zero_point = node.inputs[2].const_value
    return zero_point is None or bool(np.any(zero_point.numpy().astype(np.int64) != 0))
