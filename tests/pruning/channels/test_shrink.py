import numpy as np
from channel_models import FIRST_HALF_REMOVED, SECOND_HALF_REMOVED, build

from optimizer.ir import model_to_bytes, validate_model
from optimizer.pruning.channels.groups import analyze
from optimizer.pruning.channels.shrink import shrink
from optimizer.testing import assert_equivalent, run


def _remove(model, positions_first, positions_second):
    """Remove the given positions of c1's two halves, through the analysis' units."""
    graph = analyze(model)
    roots = graph.slots["c1"]
    removed = [roots[c] for c in positions_first] + [roots[8 + c] for c in positions_second]
    return shrink(model, graph.keep_masks(np.array(sorted(removed))))


def _shape(model, name):
    values = {v.name: v for node in model.graph for v in node.outputs}
    return tuple(values[name].shape)


def test_removing_channels_that_contribute_nothing_keeps_outputs_exactly(rich_model, feeds):
    original = model_to_bytes(rich_model)
    _remove(rich_model, FIRST_HALF_REMOVED, SECOND_HALF_REMOVED)
    assert_equivalent(original, rich_model, feeds, rtol=1e-5, atol=1e-5)
    initializers = rich_model.graph.initializers
    weight = {node.outputs[0].name: tuple(node.inputs[1].const_value.shape)
              for node in rich_model.graph if node.op_type == "Conv"}
    assert weight == {"c1": (8, 3, 3, 3), "d0": (4, 1, 3, 3), "c2": (4, 4, 1, 1), "y": (4, 8, 3, 3)}
    depthwise = next(node for node in rich_model.graph if node.outputs[0].name == "d0")
    assert depthwise.attributes["group"].value == 4
    split = next(node for node in rich_model.graph if node.op_type == "Split")
    np.testing.assert_array_equal(split.inputs[1].const_value.numpy(), [4, 4])
    batchnorm = next(node for node in rich_model.graph if node.op_type == "BatchNormalization")
    assert all(tuple(value.const_value.shape) == (8,) for value in batchnorm.inputs[1:])
    scale = next(node for node in rich_model.graph if node.outputs[0].name == "p1")
    assert tuple(scale.inputs[1].const_value.shape) == (1, 8, 1, 1)
    assert "w1" not in initializers  # the replaced weights are gone
    assert _shape(rich_model, "cat") == (1, 8, 8, 8)


def test_uneven_split_after_pruning(rich_model, feeds):
    original = model_to_bytes(rich_model)
    _remove(rich_model, FIRST_HALF_REMOVED[:1], SECOND_HALF_REMOVED)
    split = next(node for node in rich_model.graph if node.op_type == "Split")
    np.testing.assert_array_equal(split.inputs[1].const_value.numpy(), [7, 4])
    assert_equivalent(original, rich_model, feeds, rtol=1e-5, atol=1e-5)


def test_removing_live_channels_gives_the_numpy_expectation():
    # Two 1x1 convs: y = W2 @ relu(W1 @ x + b1). Dropping channel k of the hidden layer drops its row of W1 and
    # column of W2, which NumPy computes directly.
    rng = np.random.default_rng(0)
    w1, b1 = rng.standard_normal((6, 3, 1, 1)).astype(np.float32), rng.standard_normal(6).astype(np.float32)
    w2 = rng.standard_normal((2, 6, 1, 1)).astype(np.float32)
    model = build("""
        <ir_version: 9, opset_import: ["" : 17]>
        g (float[1, 3, 4, 4] x) => (float[1, 2, 4, 4] y) {
            a = Conv (x, w1, b1)
            r = Relu (a)
            y = Conv (r, w2)
        }
        """, w1=w1, b1=b1, w2=w2)
    graph = analyze(model)
    shrink(model, graph.keep_masks(graph.slots["a"][[1, 4]]))
    validate_model(model, source="pruned")
    x = rng.standard_normal((1, 3, 4, 4)).astype(np.float32)
    keep = [0, 2, 3, 5]
    hidden = np.maximum(np.einsum("oc,nchw->nohw", w1[keep, :, 0, 0], x) + b1[keep, None, None], 0)
    expected = np.einsum("oc,nchw->nohw", w2[:, keep, 0, 0], hidden)
    np.testing.assert_allclose(run(model, {"x": x})["y"], expected, rtol=1e-5, atol=1e-5)


def test_gemm_features_shrink():
    rng = np.random.default_rng(0)
    w2 = rng.standard_normal((8, 3)).astype(np.float32)
    w2[[2, 6]] = 0  # hidden features 2 and 6 feed nothing
    model = build("""
        <ir_version: 9, opset_import: ["" : 17]>
        g (float[2, 5] x) => (float[2, 3] y) {
            h = Gemm <transB = 1> (x, w1, b1)
            r = Relu (h)
            y = MatMul (r, w2)
        }
        """, w1=rng.standard_normal((8, 5)).astype(np.float32), b1=rng.standard_normal(8).astype(np.float32),
        w2=w2)
    original = model_to_bytes(model)
    graph = analyze(model)
    shrink(model, graph.keep_masks(graph.slots["h"][[2, 6]]))
    gemm, _, matmul = model.graph
    assert tuple(gemm.inputs[1].const_value.shape) == (6, 5)
    assert tuple(matmul.inputs[1].const_value.shape) == (6, 3)
    assert_equivalent(original, model, {"x": rng.standard_normal((2, 5)).astype(np.float32)})


def test_shared_split_sizes_are_not_changed_for_the_other_split():
    rng = np.random.default_rng(0)
    model = build("""
        <ir_version: 9, opset_import: ["" : 17]>
        g (float[1, 3, 4, 4] x) => (float[1, 4, 4, 4] y, float[1, 4, 4, 4] z) {
            a = Conv (x, wa)
            a0, a1 = Split <axis = 1> (a, sizes)
            b = Conv (x, wb)
            b0, b1 = Split <axis = 1> (b, sizes)
            y = Conv (a0, wy)
            z = Concat <axis = 1> (b0, b1)
        }
        """, wa=rng.standard_normal((8, 3, 1, 1)).astype(np.float32),
        wb=rng.standard_normal((8, 3, 1, 1)).astype(np.float32), sizes=np.array([4, 4], np.int64),
        wy=rng.standard_normal((4, 4, 1, 1)).astype(np.float32))
    graph = analyze(model)
    shrink(model, graph.keep_masks(graph.slots["a"][[0]]))
    splits = [node for node in model.graph if node.op_type == "Split"]
    assert [list(s.inputs[1].const_value.numpy()) for s in splits] == [[3, 4], [4, 4]]
    validate_model(model, source="pruned")


def test_equal_split_gets_explicit_sizes():
    rng = np.random.default_rng(0)
    wy = rng.standard_normal((2, 4, 1, 1)).astype(np.float32)
    wy[:, 1] = 0  # channel 1 of the first half feeds nothing
    model = build("""
        <ir_version: 9, opset_import: ["" : 18]>
        g (float[1, 3, 4, 4] x) => (float[1, 2, 4, 4] y, float[1, 4, 4, 4] z) {
            a = Conv (x, wa)
            a0, a1 = Split <axis = 1, num_outputs = 2> (a)
            y = Conv (a0, wy)
            z = Relu (a1)
        }
        """, wa=rng.standard_normal((8, 3, 1, 1)).astype(np.float32), wy=wy)
    original = model_to_bytes(model)
    graph = analyze(model)
    shrink(model, graph.keep_masks(graph.slots["a"][[1]]))
    split = next(node for node in model.graph if node.op_type == "Split")
    assert "num_outputs" not in split.attributes
    np.testing.assert_array_equal(split.inputs[1].const_value.numpy(), [3, 4])
    assert_equivalent(original, model, {"x": rng.standard_normal((1, 3, 4, 4)).astype(np.float32)})
