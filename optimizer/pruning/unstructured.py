"""Unstructured magnitude pruning: zero the least important single weights, per layer or with one global threshold.

Per layer (scope "layer") every layer loses the same fraction, the order in which its own weights are zeroed set
by importance. Global (scope "global") puts one threshold on the importance of every weight of every layer, so a
layer with many small weights loses more than one whose weights all matter: the usual better trade at high
sparsity, as long as the scores are comparable across layers (plain |w| is; activation scores multiply by each
layer's input norms, which makes layers with loud inputs keep more).

Unstructured zeros save nothing on dense kernels; they are for sparse CPU kernels at high sparsity, and the
baseline structured methods are judged against.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from optimizer.pruning.masks import global_threshold, keep_largest, magnitude

Scored = tuple[np.ndarray, str]
"""A weight to score (possibly activation-scaled) and the magnitude to take of it (l1 or l2)."""


def layer_masks(scored: Sequence[Scored], targets: Sequence[float]) -> list[np.ndarray]:
    """Keep masks zeroing `targets[i]` of layer i's weights, the least important first."""
    return [keep_largest(magnitude(weight, importance), target)
            for (weight, importance), target in zip(scored, targets)]


def global_masks(scored: Sequence[Scored], sparsity: float) -> tuple[list[np.ndarray], float]:
    """Keep masks from one importance threshold over all layers together, and the threshold. Weights scoring
    exactly the threshold are zeroed, so ties (many exact zeros) can push the total slightly past `sparsity`."""
    scores = [magnitude(weight, importance) for weight, importance in scored]
    threshold = global_threshold(scores, sparsity)
    return [score > threshold for score in scores], threshold
