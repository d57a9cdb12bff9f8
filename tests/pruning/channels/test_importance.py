import numpy as np
from channel_models import FIRST_HALF_REMOVED, SECOND_HALF_REMOVED, build

from optimizer.pruning.channels.groups import analyze
from optimizer.pruning.channels.importance import group_scores
from optimizer.pruning.channels.plan import kept_count, removed_units

RESIDUAL = """
<ir_version: 9, opset_import: ["" : 17]>
g (float[1, 3, 4, 4] x) => (float[1, 2, 4, 4] y) {
    a = Conv (x, wa)
    b = Conv (x, wb)
    s = Add (a, b)
    y = Conv (s, wc)
}
"""


def _by_producers(graph):
    return {tuple(group.producers): group for group in graph.groups}


def test_zero_filters_score_lowest_and_are_removed_first(rich_model):
    graph = analyze(rich_model)
    groups = graph.prunable
    scores = group_scores(rich_model, graph, groups, "l1")
    removed = set(removed_units(graph, groups, scores, {group.index: 0.5 for group in groups}).tolist())
    roots = graph.slots["c1"]
    expected = {int(roots[c]) for c in FIRST_HALF_REMOVED} | {int(roots[8 + c]) for c in SECOND_HALF_REMOVED}
    assert removed == expected


def test_scores_are_normalized_per_producer():
    # Filter norms of `a` are 1000x those of `b`: unnormalized, `a` alone would decide. Here `b`'s ordering is
    # the reverse of `a`'s and both count equally, so the scores are flat.
    norms = np.arange(1, 9, dtype=np.float32)
    wa = np.ones((8, 3, 1, 1), np.float32) * norms[:, None, None, None] * 1000
    wb = np.ones((8, 3, 1, 1), np.float32) * norms[::-1, None, None, None]
    model = build(RESIDUAL, wa=wa, wb=wb, wc=np.ones((2, 8, 1, 1), np.float32))
    graph = analyze(model)
    group = _by_producers(graph)[("a", "b")]
    scores = group_scores(model, graph, [group], "l1")[group.index]
    np.testing.assert_allclose(scores, np.full(8, scores[0]), rtol=1e-6)


def test_l2_and_activation_importance():
    rng = np.random.default_rng(0)
    wa = rng.standard_normal((8, 3, 1, 1)).astype(np.float32)
    wa[3] = 0
    model = build(RESIDUAL, wa=wa, wb=wa.copy(), wc=np.ones((2, 8, 1, 1), np.float32))
    graph = analyze(model)
    group = _by_producers(graph)[("a", "b")]
    assert np.argmin(group_scores(model, graph, [group], "l2")[group.index]) == 3
    samples = [{"x": rng.standard_normal((1, 3, 4, 4)).astype(np.float32)} for _ in range(3)]
    activation = group_scores(model, graph, [group], "activation", samples)[group.index]
    assert np.argmin(activation) == 3 and activation[3] == 0


def test_kept_counts_round_to_vector_widths():
    assert kept_count(64, 0.3) == 48  # 44.8 -> 48: a multiple of 8
    assert kept_count(256, 0.3) == 176
    assert kept_count(16, 0.3) == 12  # under 32 channels: multiples of 4
    assert kept_count(6, 0.5) == 3  # small groups: unrounded
    assert kept_count(4, 0.9) == 1  # never zero
    assert kept_count(32, 0.95) == 8
