"""Per-layer sensitivity: how much the model's output moves when one layer alone is pruned, and per-layer
sparsities that spare the sensitive layers while the model as a whole still loses `sparsity` of its weights.

Measure: each layer is pruned alone to the target (the method's own mask) and the model's outputs on a few
calibration samples are compared with the original's (the worst output's cosine, mean over samples). One probe
session serves every layer (probe.py), so the cost is one run per layer and sample.

Allocation rule. A layer's loss is 1 - cosine; losses span orders of magnitude, so layers are ranked on
r = (log loss - min) / (max - min), 0 for the least sensitive and 1 for the most. Layer i then gets

    s_i = clip(c - spread * r_i, 0, s_max),   spread = min(0.3, sparsity),   s_max = sparsity + (1 - sparsity) / 2

with c found by bisection so that sum(s_i * size_i) = sparsity * sum(size_i): the most sensitive layer is
pruned `spread` less than the least sensitive, no layer goes more than halfway from the target to fully
pruned, and the overall fraction of pruned weights is the one asked for. Linear in rank (not in loss) so one
outlier layer does not flatten the others; bounded, because a one-point measurement says which layers are
fragile, not by how much more they could take.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np

from optimizer.pruning.layers import Layer
from optimizer.pruning.probe import Sample, WeightProbe, output_cosine

SENSITIVITY_SAMPLES = 8
"""Samples each layer is measured on: a ranking needs few, and the cost is one run per layer and sample."""
MAX_SPREAD = 0.3


def measure(probe: WeightProbe, layers: Sequence[Layer], pruned: Sequence[np.ndarray | None],
            samples: Sequence[Sample], reference: Sequence[Mapping[str, np.ndarray]]) -> dict[int, float]:
    """Layer index -> output cosine with that layer alone pruned (layers whose mask is None are skipped)."""
    samples, reference = samples[:SENSITIVITY_SAMPLES], reference[:SENSITIVITY_SAMPLES]
    cosines = {}
    for index, (layer, weight) in enumerate(zip(layers, pruned)):
        if weight is None:
            continue
        outputs = probe.outputs(samples, {layer.weight.name: weight})
        cosines[index] = output_cosine(reference, outputs)
    return cosines


def allocate(cosines: Sequence[float], sizes: Sequence[int], sparsity: float) -> list[float]:
    """Per-layer sparsities from per-layer cosines (the rule in the module doc)."""
    if not cosines:
        return []
    losses = np.log(np.maximum(1.0 - np.asarray(cosines, dtype=np.float64), 1e-12))
    span = float(losses.max() - losses.min())
    rank = (losses - losses.min()) / span if span > 0 else np.zeros_like(losses)
    sizes = np.asarray(sizes, dtype=np.float64)
    spread, ceiling = min(MAX_SPREAD, sparsity), min(0.99, sparsity + (1.0 - sparsity) / 2)
    wanted = sparsity * sizes.sum()

    def allocation(c: float) -> np.ndarray:
        return np.clip(c - spread * rank, 0.0, ceiling)

    low, high = 0.0, ceiling + spread
    for _ in range(60):  # the pruned count is nondecreasing in c: bisection to well below one weight
        middle = (low + high) / 2
        if float(allocation(middle) @ sizes) < wanted:
            low = middle
        else:
            high = middle
    return [float(s) for s in allocation(high)]
