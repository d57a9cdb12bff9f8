"""hwopt's custom ONNX operators: their contract, and the table mapping each to the kernels that run it.

Custom ops live in the `com.hwopt` domain. A model that holds one runs only where a kernel for it is registered:
in OpenVINO through hwopt's extension (kernels/openvino, loaded by the OpenVINO backend), and in hwopt's own
NumPy/Numba/C++ kernels (optimizer.kernels) for tests. ONNX Runtime cannot run them here (its wheel ships no
headers for a custom-op library, and Python custom ops cost ~10 ms a call), so the hot-operator pass only
substitutes them for a runtime listed in `KERNELS`.

BlockSparseMatMul (com.hwopt, version 1): `Y = activation(X @ W + bias)` with W block-sparse.
  inputs:  X float32 [..., K]; values float32 [blocks, block_k, block_n]; block_rows int32 [blocks];
           strip_ptr int32 [N / block_n + 1]; bias float32 [N] (optional: an empty name or absent)
  attributes: k (int), n (int), block_shape (ints [block_k, block_n]), activation (string: "none", "relu",
           "gelu" (the erf form, as ONNX's Gelu))
  output:  Y float32 [..., N]
  The three weight inputs are the arrays of kernels.block_sparse.BlockSparseMatrix, stored as initializers.
  The fused bias and activation are what the runtimes cannot fuse into a custom op themselves: profiling the
  pruned MiniLM in OpenVINO shows the Add and Gelu after each feed-forward MatMul as nodes of their own.
"""

from __future__ import annotations

import numpy as np
from optimizer.kernels.block_sparse import BlockSparseMatrix

DOMAIN = "com.hwopt"
DOMAIN_VERSION = 1
BLOCK_SPARSE_MATMUL = "BlockSparseMatMul"
ACTIVATIONS = ("none", "relu", "gelu")

# Custom op -> the runtimes (backend names) that have a kernel for it.
KERNELS: dict[str, tuple[str, ...]] = {
    BLOCK_SPARSE_MATMUL: ("openvino",),
}


def runtimes_for(op_type: str) -> tuple[str, ...]:
    return KERNELS.get(op_type, ())


def block_sparse_matmul_attributes(weight: BlockSparseMatrix, activation: str = "none") -> dict[str, object]:
    """The node attributes of a BlockSparseMatMul over `weight`."""
    if activation not in ACTIVATIONS:
        raise ValueError(f"activation must be one of {', '.join(ACTIVATIONS)}, not {activation!r}")
    k, n = weight.shape
    return {"k": k, "n": n, "block_shape": list(weight.block_shape), "activation": activation}


def block_sparse_matmul_inputs(weight: BlockSparseMatrix) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The weight inputs of a BlockSparseMatMul, in input order (values, block_rows, strip_ptr)."""
    return (np.ascontiguousarray(weight.values, dtype=np.float32), weight.block_rows, weight.strip_ptr)
