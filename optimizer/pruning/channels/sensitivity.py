"""Per-group sensitivity: prune each group alone, see what the outputs lose, and spend the budget where it hurts
least.

A group's drop is 1 - output cosine with only that group pruned by the target ratio. Ratios are then set
inversely to the square root of the drop (the square root keeps one outlier from taking the whole budget),
scaled so that the channels removed over all groups stay at the target fraction, and capped so that no group
loses more than MAX_RATIO_FACTOR times the target.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence

import numpy as np

from optimizer.pruning.channels.groups import ChannelGroup

MAX_RATIO_FACTOR = 2.0
MAX_RATIO = 0.9
EPSILON = 1e-6


def measure(groups: Sequence[ChannelGroup], prune_alone: Callable[[ChannelGroup], float]) -> dict[int, float]:
    """Group index -> output cosine with that group alone pruned (`prune_alone` builds and runs that model)."""
    return {group.index: prune_alone(group) for group in groups}


def allocate(groups: Sequence[ChannelGroup], cosines: Mapping[int, float], sparsity: float) -> dict[int, float]:
    """Per-group ratios whose size-weighted mean is `sparsity`, less for the groups that hurt more."""
    if not groups or sparsity <= 0:
        return {group.index: sparsity for group in groups}
    sizes = np.array([group.size for group in groups], dtype=np.float64)
    drops = np.array([max(1.0 - cosines[group.index], 0.0) for group in groups])
    weights = 1.0 / np.sqrt(drops + max(float(np.median(drops)), EPSILON) * 0.1 + EPSILON)
    cap = min(MAX_RATIO, sparsity * MAX_RATIO_FACTOR)
    budget = sparsity * sizes.sum()
    ratios = np.zeros(len(groups))
    free = np.ones(len(groups), dtype=bool)
    # Water-filling: scale the free groups to the remaining budget, fix the ones that hit the cap, repeat.
    for _ in range(len(groups)):
        remaining = budget - (ratios[~free] * sizes[~free]).sum()
        scale = remaining / max((weights[free] * sizes[free]).sum(), EPSILON)
        ratios[free] = weights[free] * scale
        over = free & (ratios > cap)
        if not over.any():
            break
        ratios[over] = cap
        free &= ~over
    return {group.index: float(ratio) for group, ratio in zip(groups, ratios)}
