"""Which units go: the lowest-scoring of each group, in counts hardware runs well, never emptying a tensor."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np

from optimizer.pruning.channels.groups import ChannelGraph, ChannelGroup


def kept_count(size: int, ratio: float) -> int:
    """How many of `size` channels to keep when `ratio` of them should go.

    The count is rounded to a multiple of 8 (4 for groups under 32 channels): CPU kernels work on vectors of
    8 floats (AVX2) or 16 (AVX-512) and oneDNN blocks channels by 8 or 16, so 44 channels cost as much as 48
    while 48 keep more of the model. Small groups are left unrounded; at least one channel always stays.
    """
    wanted = size - round(ratio * size)
    step = 8 if size >= 32 else 4 if size >= 8 else 1
    kept = int(round(wanted / step) * step)
    return int(min(size, max(step if size >= step else 1, kept, 1)))


def removed_units(channel_graph: ChannelGraph, groups: Sequence[ChannelGroup],
                  scores: Mapping[int, np.ndarray], ratios: Mapping[int, float]) -> np.ndarray:
    """The roots of the units to remove: per group the lowest-scoring ones, down to `kept_count`."""
    removed: list[int] = []
    for group in groups:
        ratio = ratios.get(group.index, 0.0)
        if ratio <= 0:
            continue
        keep = kept_count(group.size, ratio)
        order = np.argsort(scores[group.index], kind="stable")
        removed += group.units[order[: group.size - keep]].tolist()
    return _keep_every_tensor(channel_graph, groups, scores, np.array(sorted(removed), dtype=np.int64))


def _keep_every_tensor(channel_graph: ChannelGraph, groups: Sequence[ChannelGroup],
                       scores: Mapping[int, np.ndarray], removed: np.ndarray) -> np.ndarray:
    """Give back the best unit of any tensor that would lose all its channels: a group spread over the two
    halves of a Split could otherwise empty one half, and ONNX has no zero-channel Conv."""
    score_of = {int(root): float(score) for group in groups
                for root, score in zip(group.units, scores[group.index])}
    removed_set = set(removed.tolist())
    for roots in channel_graph.slots.values():
        if roots.size and all(int(root) in removed_set for root in roots):
            best = max(dict.fromkeys(roots.tolist()), key=lambda root: score_of.get(root, 0.0))
            removed_set.discard(best)
    return np.array(sorted(removed_set), dtype=np.int64)
