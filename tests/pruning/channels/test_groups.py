import numpy as np
from channel_models import RICH, build, rich_weights

from optimizer.pruning.channels.groups import analyze


def _groups(model):
    return {tuple(group.producers): group for group in analyze(model).groups}


def test_split_halves_form_separate_groups_tied_to_the_depthwise_and_the_residual(rich_model):
    groups = _groups(rich_model)
    assert set(groups) == {("c1", "d0"), ("c1", "c2"), ("y",)}
    assert groups[("c1", "d0")].size == 8 and not groups[("c1", "d0")].pinned
    assert groups[("c1", "c2")].size == 8 and not groups[("c1", "c2")].pinned
    assert "graph output" in groups[("y",)].pinned


def test_units_map_onto_every_tensor_that_carries_them(rich_model):
    graph = analyze(rich_model)
    slots = graph.slots
    # The Split's halves are the two ranges of its input; the Concat's output holds both groups, in order.
    np.testing.assert_array_equal(slots["h0"], slots["p1"][:8])
    np.testing.assert_array_equal(slots["h1"], slots["p1"][8:])
    np.testing.assert_array_equal(slots["d0"], slots["h0"])  # depthwise: channel k in is channel k out
    np.testing.assert_array_equal(slots["s2"], slots["c2"])  # residual Add ties both operands
    np.testing.assert_array_equal(slots["cat"], np.concatenate([slots["m0"], slots["s2"]]))
    np.testing.assert_array_equal(slots["m0"], slots["h0"])  # through Resize and MaxPool


def test_residual_add_ties_two_convs_into_one_group():
    model = build("""
        <ir_version: 9, opset_import: ["" : 17]>
        g (float[1, 3, 4, 4] x) => (float[1, 2, 4, 4] y) {
            a = Conv (x, wa)
            r = Relu (a)
            b = Conv (r, wb)
            s = Add (r, b)
            y = Conv (s, wc)
        }
        """, wa=np.ones((8, 3, 1, 1), np.float32), wb=np.ones((8, 8, 1, 1), np.float32),
        wc=np.ones((2, 8, 1, 1), np.float32))
    groups = _groups(model)
    assert ("a", "b") in groups and not groups[("a", "b")].pinned


def test_reshape_and_graph_outputs_pin_their_channels():
    model = build("""
        <ir_version: 9, opset_import: ["" : 17]>
        g (float[1, 3, 4, 4] x) => (float[1, 128] flat, float[1, 8, 4, 4] a) {
            a = Conv (x, wa)
            b = Conv (x, wb)
            flat = Reshape (b, shape)
        }
        """, wa=np.ones((8, 3, 1, 1), np.float32), wb=np.ones((8, 3, 1, 1), np.float32),
        shape=np.array([1, 128], np.int64))
    groups = _groups(model)
    assert "graph output" in groups[("a",)].pinned
    assert "Reshape" in groups[("b",)].pinned


def test_unknown_ops_and_runtime_weights_pin():
    model = build("""
        <ir_version: 9, opset_import: ["" : 17]>
        g (float[1, 3, 4, 4] x, float[8, 3, 1, 1] wr) => (float[1, 2, 4, 4] y) {
            a = Conv (x, wa)
            t = LRN <size = 3> (a)
            b = Conv (x, wr)
            s = Add (t, b)
            y = Conv (s, wc)
        }
        """, wa=np.ones((8, 3, 1, 1), np.float32), wc=np.ones((2, 8, 1, 1), np.float32))
    group = _groups(model)[("a",)]
    assert "LRN" in group.pinned


def test_per_channel_constants_are_sliced_not_pinned():
    model = build("""
        <ir_version: 9, opset_import: ["" : 17]>
        g (float[1, 3, 4, 4] x) => (float[1, 2, 4, 4] y) {
            a = Conv (x, wa)
            m = Mul (a, k)
            d = Div (m, scalar)
            y = Conv (d, wc)
        }
        """, wa=np.ones((8, 3, 1, 1), np.float32), k=np.ones((8, 1, 1), np.float32),
        scalar=np.array(2.0, np.float32), wc=np.ones((2, 8, 1, 1), np.float32))
    assert not _groups(model)[("a",)].pinned


def test_rich_model_weights_do_not_change_the_analysis():
    model = build(RICH, **rich_weights(np.random.default_rng(3), zero_removed=False))
    assert len(analyze(model).prunable) == 2
