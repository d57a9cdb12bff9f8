"""The block-sparse weight format that hwopt's block-sparse MatMul kernels read (C++, Numba, NumPy, OpenVINO).

A weight `W` of shape [K, N] (the right operand of `Y = X @ W`, X [M, K]) is cut into blocks of
`block_k x block_n` elements: `K / block_k` block rows along the input dimension and `N / block_n` output
*strips*. Only blocks holding a nonzero are stored, strip by strip (a CSC-like layout over blocks):

- `strip_ptr`  int32 [N / block_n + 1]: the blocks of strip `s` are `strip_ptr[s]:strip_ptr[s + 1]`;
- `block_rows` int32 [nnz_blocks]: each stored block's block-row index, ascending within a strip;
- `values`     [nnz_blocks, block_k, block_n]: each block's elements, row-major (float32, or int8 for the
  integer kernels).

Why strips: a kernel computes `Y[:, strip]` as a sum over that strip's blocks, holding a tile of Y's rows in
registers across all of them, with one output strip `block_n` floats wide (a SIMD vector at 8 or 16), so the
work per stored block is a dense micro-kernel and the index costs one load per block.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

import numpy as np

__all__ = ["BlockSparseMatrix", "block_density", "keep_largest_blocks"]


@dataclass(frozen=True)
class BlockSparseMatrix:
    shape: tuple[int, int]
    """(K, N) of the dense weight."""
    block_shape: tuple[int, int]
    """(block_k, block_n): block rows along K (the input dimension), block columns along N."""
    strip_ptr: np.ndarray
    block_rows: np.ndarray
    values: np.ndarray

    def __post_init__(self) -> None:
        (k, n), (block_k, block_n) = self.shape, self.block_shape
        if block_k < 1 or block_n < 1 or k % block_k or n % block_n:
            raise ValueError(f"block shape {block_k}x{block_n} does not tile a {k}x{n} weight")
        if self.strip_ptr.shape != (n // block_n + 1,) or self.strip_ptr.dtype != np.int32:
            raise ValueError(f"strip_ptr must be int32 of length {n // block_n + 1}")
        count = int(self.strip_ptr[-1])
        if self.block_rows.shape != (count,) or self.block_rows.dtype != np.int32:
            raise ValueError(f"block_rows must be int32 of length {count} (strip_ptr[-1])")
        if self.values.shape != (count, block_k, block_n):
            raise ValueError(f"values must have shape {(count, block_k, block_n)}, not {self.values.shape}")

    @classmethod
    def from_dense(cls, weight: np.ndarray, block_shape: tuple[int, int]) -> BlockSparseMatrix:
        """The blocks of `weight` [K, N] that hold a nonzero (all-zero blocks are dropped)."""
        if weight.ndim != 2:
            raise ValueError(f"a block-sparse weight is 2-D [K, N], not {weight.shape}")
        (k, n), (block_k, block_n) = weight.shape, block_shape
        if block_k < 1 or block_n < 1 or k % block_k or n % block_n:
            raise ValueError(f"block shape {block_k}x{block_n} does not tile a {k}x{n} weight")
        # [strips, block rows, block_k, block_n]: strip-major, so the stored order is strip by strip.
        blocks = weight.reshape(k // block_k, block_k, n // block_n, block_n).transpose(2, 0, 1, 3)
        nonzero = np.any(blocks != 0, axis=(2, 3))
        strip_ptr = np.zeros(n // block_n + 1, dtype=np.int32)
        np.cumsum(nonzero.sum(axis=1), out=strip_ptr[1:])
        _, block_rows = np.nonzero(nonzero)
        values = np.ascontiguousarray(blocks[nonzero])
        return cls((k, n), (block_k, block_n), strip_ptr, block_rows.astype(np.int32), values)

    def to_dense(self) -> np.ndarray:
        (k, n), (block_k, block_n) = self.shape, self.block_shape
        dense = np.zeros((k // block_k, block_k, n // block_n, block_n), dtype=self.values.dtype)
        strips = np.repeat(np.arange(n // block_n), np.diff(self.strip_ptr))
        dense[self.block_rows, :, strips, :] = self.values
        return dense.reshape(k, n)

    # Derived arrays the int8 kernels need on every call, computed once per weight. functools.cached_property
    # stores into the instance's __dict__ directly, so it works on this frozen dataclass.

    @functools.cached_property
    def vnni_values(self) -> np.ndarray:
        """int8 values re-laid out for AVX-512 VNNI, [blocks, ceil(block_k / 4), block_n, 4]: element (r, c) of a
        block at [r // 4, c, r % 4], so 4 consecutive K of a column are adjacent (vpdpbusd reads them as one
        int32), K padded with zeros to a multiple of 4. The layout of csrc/core's pack_s8_for_vnni."""
        count, block_k, block_n = self.values.shape
        if self.values.dtype != np.int8:
            raise ValueError(f"the VNNI layout is for int8 values, not {self.values.dtype}")
        groups = -(-block_k // 4)
        padded = np.zeros((count, groups * 4, block_n), dtype=np.int8)
        padded[:, :block_k] = self.values
        return np.ascontiguousarray(padded.reshape(count, groups, 4, block_n).transpose(0, 1, 3, 2))

    @functools.cached_property
    def column_sums(self) -> np.ndarray:
        """int64 [N]: the sum of each column of W, which an asymmetric int8 matmul subtracts zero_point times."""
        return self.to_dense().astype(np.int64).sum(axis=0)

    @property
    def stored_blocks(self) -> int:
        return int(self.strip_ptr[-1])

    @property
    def density(self) -> float:
        """The fraction of blocks stored (1 - block sparsity)."""
        (k, n), (block_k, block_n) = self.shape, self.block_shape
        return self.stored_blocks / ((k // block_k) * (n // block_n))


def block_density(weight: np.ndarray, block_shape: tuple[int, int]) -> float:
    """The fraction of `block_shape` blocks of `weight` [K, N] that hold a nonzero (1.0 when they do not tile)."""
    (k, n), (block_k, block_n) = weight.shape, block_shape
    if k % block_k or n % block_n:
        return 1.0
    blocks = weight.reshape(k // block_k, block_k, n // block_n, block_n)
    return float(np.any(blocks != 0, axis=(1, 3)).mean())


def keep_largest_blocks(weight: np.ndarray, block_shape: tuple[int, int], density: float) -> np.ndarray:
    """`weight` [K, N] with all but its `density` fraction of largest blocks (by L2 norm) set to zero.

    Magnitude block pruning, for tests and benchmarks that need a realistically pruned weight in this format; the
    pruning passes (optimizer.pruning) choose blocks with better criteria than magnitude alone.
    """
    (k, n), (block_k, block_n) = weight.shape, block_shape
    if k % block_k or n % block_n:
        raise ValueError(f"block shape {block_k}x{block_n} does not tile a {k}x{n} weight")
    blocks = weight.reshape(k // block_k, block_k, n // block_n, block_n)
    norms = np.sqrt(np.square(blocks.astype(np.float64)).sum(axis=(1, 3)))
    keep = round(density * norms.size)
    mask = np.zeros(norms.size, dtype=bool)
    mask[np.argsort(norms, axis=None, kind="stable")[norms.size - keep:]] = True
    kept = blocks * mask.reshape(norms.shape)[:, None, :, None]
    return kept.reshape(k, n).astype(weight.dtype)
