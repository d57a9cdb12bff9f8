"""Numba kernels: the block-sparse MatMul compiled by LLVM at first call, for machines without the C++ extension.

Same semantics as the C++ kernels (csrc/core/block_sparse_matmul.h) and the NumPy references: fp32
`activation(x @ W + bias)` and the exact int32 sums of uint8 x by int8 W, over a BlockSparseMatrix's arrays, with
the strips split across Numba's threads (prange). Argument checks are the dispatcher's (optimizer.kernels): these
functions trust their inputs. This module imports numba at its top; optimizer.kernels imports it only when a
Numba kernel is asked for, so hwopt imports without numba (the `numba` extra).

fastmath allows FMA contraction and reciprocal tricks but not "no NaN/inf" (nnan, ninf), so NaN and infinities pass
through as in the other implementations. cache=True keeps the compiled code in __pycache__ (or Numba's user-wide
cache where the package folder is read-only), so only the first process pays the few seconds of compilation.
"""

from __future__ import annotations

import math

import numba
import numpy as np

_FASTMATH = {"contract", "arcp", "nsz"}

# The activation codes the kernels take (a string argument would compile a specialization per value).
ACTIVATION_CODES = {"none": 0, "relu": 1, "gelu": 2}

_INV_SQRT2 = 1.0 / math.sqrt(2.0)


@numba.njit(cache=True, fastmath=_FASTMATH, inline="always")
def _activate(value, activation):
    if activation == 1:
        return value if not value < 0 else np.float32(0.0)  # NaN stays NaN, as np.maximum
    if activation == 2:
        # The erfc form of GELU keeps its relative accuracy for negative inputs, where 1 + erf cancels; -inf
        # would give -inf * 0, so its limit is returned instead.
        if value == -np.inf:
            return np.float32(-0.0)
        return np.float32(0.5 * value * math.erfc(-value * _INV_SQRT2))
    return value


# Both kernels work on X transposed ([K, M], one contiguous copy per call, small next to the matmul) and keep a
# strip's accumulators as [block_n, M]: the innermost loop then runs over all M rows, contiguous in both X and
# the accumulators, which LLVM vectorizes at full width; with the rows of one block as the innermost loop
# (block_n long, 1 to 16) it ran about 15 times slower.


@numba.njit(parallel=True, cache=True, fastmath=_FASTMATH)
def block_sparse_matmul_f32(x, values, block_rows, strip_ptr, bias, has_bias, activation):
    """activation(x @ W + bias) for x float32 [M, K] (C-contiguous); a new float32 [M, N].

    bias is ignored unless has_bias (Numba compiles one signature; pass any float32 [N] or an empty array).
    """
    m = x.shape[0]
    block_k, block_n = values.shape[1], values.shape[2]
    strips = strip_ptr.shape[0] - 1
    x_t = np.ascontiguousarray(x.T)
    y = np.empty((m, strips * block_n), dtype=np.float32)
    for strip in numba.prange(strips):
        col = strip * block_n
        acc = np.empty((block_n, m), dtype=np.float32)
        for j in range(block_n):
            acc[j, :] = bias[col + j] if has_bias else np.float32(0.0)
        for block in range(strip_ptr[strip], strip_ptr[strip + 1]):
            k0 = block_rows[block] * block_k
            for r in range(block_k):
                x_column = x_t[k0 + r]
                for j in range(block_n):
                    w_value = values[block, r, j]
                    acc_row = acc[j]
                    for i in range(m):
                        acc_row[i] += w_value * x_column[i]
        for i in range(m):
            for j in range(block_n):
                y[i, col + j] = _activate(acc[j, i], activation)
    return y


@numba.njit(parallel=True, cache=True)
def block_sparse_matmul_u8s8(x, values, block_rows, strip_ptr):
    """The exact int32 sums x @ W for x uint8 [M, K] and int8 values; a new int32 [M, N]."""
    m = x.shape[0]
    block_k, block_n = values.shape[1], values.shape[2]
    strips = strip_ptr.shape[0] - 1
    x_t = np.ascontiguousarray(x.T).astype(np.int32)
    y = np.empty((m, strips * block_n), dtype=np.int32)
    for strip in numba.prange(strips):
        col = strip * block_n
        acc = np.zeros((block_n, m), dtype=np.int32)
        for block in range(strip_ptr[strip], strip_ptr[strip + 1]):
            k0 = block_rows[block] * block_k
            for r in range(block_k):
                x_column = x_t[k0 + r]
                for j in range(block_n):
                    w_value = np.int32(values[block, r, j])
                    acc_row = acc[j]
                    for i in range(m):
                        acc_row[i] += w_value * x_column[i]
        for i in range(m):
            for j in range(block_n):
                y[i, col + j] = acc[j, i]
    return y
