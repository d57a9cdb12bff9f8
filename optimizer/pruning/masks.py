"""Which weights to zero: masks from magnitudes, pure NumPy, shared by the ONNX passes and the PyTorch fine-tune.

Every function returns a boolean *keep* mask of the weight's shape (True: the weight stays). Scores are
magnitudes (|w| or w^2 summed over whatever unit is pruned together); the lowest-scoring units are zeroed.
"""

from __future__ import annotations

import numpy as np

IMPORTANCES = ("l1", "l2")


def magnitude(weight: np.ndarray, importance: str = "l1") -> np.ndarray:
    """Each element's score: |w| (l1) or w^2 (l2), in float64."""
    if importance not in IMPORTANCES:
        raise ValueError(f"importance must be one of {', '.join(IMPORTANCES)}, not {importance!r}")
    weight = np.asarray(weight, dtype=np.float64)
    return np.abs(weight) if importance == "l1" else weight * weight


def keep_largest(scores: np.ndarray, sparsity: float) -> np.ndarray:
    """Keep mask zeroing the round(sparsity * size) lowest scores (ties broken by position, so the count is exact)."""
    _check_sparsity(sparsity)
    flat = scores.reshape(-1)
    pruned = round(sparsity * flat.size)
    keep = np.ones(flat.size, dtype=bool)
    if pruned:
        keep[np.argpartition(flat, pruned - 1, kind="introselect")[:pruned]] = False
    return keep.reshape(scores.shape)


def global_threshold(scores: list[np.ndarray], sparsity: float) -> float:
    """The score below which `sparsity` of all elements of `scores` together lie (global magnitude pruning)."""
    _check_sparsity(sparsity)
    every = np.concatenate([s.reshape(-1) for s in scores])
    pruned = round(sparsity * every.size)
    if pruned == 0:
        return -np.inf
    return float(np.partition(every, pruned - 1)[pruned - 1])


def n_m_mask(weight: np.ndarray, n: int = 2, m: int = 4, axis: int = 1, importance: str = "l1") -> np.ndarray:
    """Keep the `n` largest of every `m` consecutive weights along `axis` (2:4 along the input dimension is what
    Ampere/Orin sparse tensor cores run). A tail shorter than `m` along `axis` stays dense."""
    if not 0 < n <= m:
        raise ValueError(f"N:M needs 0 < N <= M, not {n}:{m}")
    scores = np.moveaxis(magnitude(weight, importance), axis, -1)
    keep = np.ones(scores.shape, dtype=bool)
    whole = scores.shape[-1] // m * m
    groups = scores[..., :whole].reshape(*scores.shape[:-1], whole // m, m)
    # Stable argsort: among equal magnitudes the later ones are pruned, so the result does not depend on luck.
    order = np.argsort(groups, axis=-1, kind="stable")
    group_keep = np.ones(groups.shape, dtype=bool)
    np.put_along_axis(group_keep, order[..., : m - n], False, axis=-1)
    keep[..., :whole] = group_keep.reshape(*scores.shape[:-1], whole)
    return np.moveaxis(keep, -1, axis)


def block_scores(weight: np.ndarray, block_shape: tuple[int, int], importance: str = "l1") -> np.ndarray:
    """Each block's score (sum of its elements' scores) for a 2-D weight [K, N] tiled by `block_shape`."""
    (k, n), (block_k, block_n) = weight.shape, block_shape
    if weight.ndim != 2 or k % block_k or n % block_n:
        raise ValueError(f"block shape {block_k}x{block_n} does not tile a weight of shape {weight.shape}")
    scores = magnitude(weight, importance).reshape(k // block_k, block_k, n // block_n, block_n)
    return scores.sum(axis=(1, 3))


def expand_blocks(block_keep: np.ndarray, block_shape: tuple[int, int]) -> np.ndarray:
    """An element mask from a block mask [K / block_k, N / block_n]."""
    return np.repeat(np.repeat(block_keep, block_shape[0], axis=0), block_shape[1], axis=1)


def block_mask(weight: np.ndarray, block_shape: tuple[int, int], sparsity: float,
               importance: str = "l1") -> np.ndarray:
    """Keep mask zeroing the `sparsity` fraction of `block_shape` blocks of [K, N] with the lowest scores."""
    return expand_blocks(keep_largest(block_scores(weight, block_shape, importance), sparsity), block_shape)


def _check_sparsity(sparsity: float) -> None:
    if not 0.0 <= sparsity < 1.0:
        raise ValueError(f"sparsity must be in [0, 1), not {sparsity}")
