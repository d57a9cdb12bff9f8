"""NumPy references for the C++ kernels.

Each function here states what its kernel computes, in plain NumPy: the tests hold the native code to it, and
`optimizer.kernels` falls back to it when the extension is not built. They favour clarity over speed, but are
numerically careful, since a reference that overflows cannot judge a kernel that does not.
"""

from __future__ import annotations

import math

import numpy as np
from optimizer.kernels.block_sparse import BlockSparseMatrix


def silu_reference(x: np.ndarray) -> np.ndarray:
    """SiLU, x * sigmoid(x), in x's floating dtype; finite for all finite x, -0.0 at -inf, NaN for NaN.

    exp is only ever taken of -|x|, which lies in (0, 1], so large |x| cannot overflow it: sigmoid(x) is
    1 / (1 + e) for x >= 0 and e / (1 + e) for x < 0, with e = exp(-|x|).
    """
    x = np.asarray(x)
    if not np.issubdtype(x.dtype, np.floating):
        raise TypeError(f"silu_reference: expected a floating-point array, got {x.dtype}")
    e = np.exp(-np.abs(x))
    sigmoid = np.where(x >= 0, 1 / (1 + e), e / (1 + e))
    with np.errstate(invalid="ignore"):  # -inf * 0, replaced below by the limit
        y = x * sigmoid
    return np.where(x == -np.inf, np.asarray(-0.0, dtype=x.dtype), y)


ACTIVATIONS = ("none", "relu", "gelu")


def gelu_reference(x: np.ndarray) -> np.ndarray:
    """GELU, exact (erf) form as ONNX's Gelu, in float64: 0.5 * x * erfc(-x / sqrt 2).

    The erfc form keeps its relative accuracy for negative x, where 1 + erf(x / sqrt 2) cancels. NumPy has no
    erf, so math.erfc is applied element by element (slow, fine for a reference). gelu(-inf) is its limit, -0.
    """
    x = np.asarray(x, dtype=np.float64)
    erfc = np.frompyfunc(math.erfc, 1, 1)
    with np.errstate(invalid="ignore"):  # -inf * 0, replaced below by the limit
        y = 0.5 * x * erfc(-x / math.sqrt(2)).astype(np.float64)
    return np.where(x == -np.inf, -0.0, y)


def block_sparse_matmul_reference(
    x: np.ndarray, weight: BlockSparseMatrix, bias: np.ndarray | None = None, activation: str = "none"
) -> np.ndarray:
    """activation(x @ W + bias) for x [..., K] and a block-sparse W [K, N], as float32 [..., N].

    Dense math over W.to_dense(), accumulated in float64 so that the kernels' float32 sums are judged against
    something more accurate than themselves.
    """
    y = np.asarray(x, dtype=np.float64) @ weight.to_dense().astype(np.float64)
    return _bias_and_activation(y, bias, activation)


def block_sparse_matmul_u8s8_reference(x: np.ndarray, weight: BlockSparseMatrix) -> np.ndarray:
    """The exact sums x @ W for x uint8 [..., K] and W's values int8 (no zero points, no scales), as int32."""
    return (np.asarray(x).astype(np.int64) @ weight.to_dense().astype(np.int64)).astype(np.int32)


def block_sparse_matmul_dequantized_reference(
    x: np.ndarray, x_scale: float, x_zero_point: int, weight: BlockSparseMatrix, weight_scales: np.ndarray,
    bias: np.ndarray | None = None, activation: str = "none",
) -> np.ndarray:
    """What the int8 kernel stands for: activation(dequant(x) @ dequant(W) + bias), in float64, as float32.

    dequant(x) = (x - x_zero_point) * x_scale (uint8, one scale and zero point); dequant(W)[:, j] =
    W[:, j] * weight_scales[j] (int8, symmetric, one scale per output column).
    """
    x_real = (np.asarray(x).astype(np.float64) - x_zero_point) * x_scale
    w_real = weight.to_dense().astype(np.float64) * np.asarray(weight_scales, dtype=np.float64)
    return _bias_and_activation(x_real @ w_real, bias, activation)


def _bias_and_activation(y: np.ndarray, bias: np.ndarray | None, activation: str) -> np.ndarray:
    if activation not in ACTIVATIONS:
        raise ValueError(f"activation must be one of {', '.join(ACTIVATIONS)}, not {activation!r}")
    if bias is not None:
        y = y + np.asarray(bias, dtype=np.float64)
    if activation == "relu":
        y = np.maximum(y, 0.0)
    elif activation == "gelu":
        y = gelu_reference(y)
    return y.astype(np.float32)
