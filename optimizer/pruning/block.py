"""Block pruning of MatMul/Gemm weights: zero whole block_k x block_n tiles of the [K, N] matmul view.

Blocks are what hwopt's block-sparse MatMul kernels skip (kernels/block_sparse.py): a (1, 16) block is one input
row of a 16-wide output strip, a SIMD vector's worth of work saved per zero block. A block's importance is the
sum of its weights' (l1, l2, or activation-scaled |w|); per layer the lowest `sparsity` of a layer's blocks go,
globally one threshold over every layer's blocks (all blocks have the same size, so their scores compare).

Conv weights are not block-pruned: the block-sparse kernels run MatMuls only, and a Conv's im2col view would
prune patterns no kernel of ours can skip. Layers whose [K, N] the block does not tile are left dense; both
are reported.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from optimizer.pruning.layers import Layer
from optimizer.pruning.masks import block_scores, expand_blocks, global_threshold, keep_largest
from optimizer.pruning.unstructured import Scored


def block_skip_reason(layer: Layer, block_shape: tuple[int, int]) -> str | None:
    """Why a layer cannot be block-pruned, or None when it can."""
    if not layer.has_matmul_view:
        return "Conv: block sparsity applies to MatMul/Gemm weights only"
    k, n = layer.matmul_view(layer.array()).shape
    if k % block_shape[0] or n % block_shape[1]:
        return f"block {block_shape[0]}x{block_shape[1]} does not tile its [K, N] = [{k}, {n}]"
    return None


def block_masks(layers: Sequence[Layer], scored: Sequence[Scored], block_shape: tuple[int, int],
                targets: Sequence[float], scope: str = "layer") -> list[np.ndarray]:
    """Keep masks in each weight's own layout for layers that `block_skip_reason` accepts; `targets` per layer
    (scope "layer"), or targets[0] for all layers together (scope "global")."""
    scores = [block_scores(layer.matmul_view(weight), block_shape, importance)
              for layer, (weight, importance) in zip(layers, scored)]
    if scope == "global":
        threshold = global_threshold(scores, targets[0]) if scores else -np.inf
        block_keeps = [score > threshold for score in scores]
    else:
        block_keeps = [keep_largest(score, target) for score, target in zip(scores, targets)]
    return [layer.from_matmul_view(expand_blocks(keep, block_shape)) for layer, keep in zip(layers, block_keeps)]
