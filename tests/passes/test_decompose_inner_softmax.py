import numpy as np
import pytest

from optimizer.ir import model_to_bytes
from optimizer.passes import DecomposeInnerSoftmax
from optimizer.testing import assert_equivalent, model_from_text, op_types


def _softmax_model(axis, opset=17, shape="1, 16, 4, 30", extra=""):
    return model_from_text(f"""
<ir_version: 9, opset_import: ["" : {opset}]>
g (float[{shape}] x) => (float[{shape}] y{extra}) {{
    y = Softmax <axis = {axis}> (x)
}}
""")


@pytest.mark.parametrize("opset", [13, 17, 18, 21])
@pytest.mark.parametrize("axis", [0, 1, 2, -2, -3])
def test_inner_axis_becomes_five_steps_with_the_same_result(axis, opset):
    model = _softmax_model(axis, opset)
    original = model_to_bytes(model)
    decompose = DecomposeInnerSoftmax()
    decompose(model)
    assert op_types(model) == ["ReduceMax", "Sub", "Exp", "ReduceSum", "Div"]
    assert decompose.total_rewrites == 1
    assert [v.name for v in model.graph.outputs] == ["y"]
    # Large logits: the max subtraction keeps Exp finite, as Softmax itself does.
    rng = np.random.default_rng(0)
    feeds = {"x": (rng.standard_normal((1, 16, 4, 30)) * 40).astype(np.float32)}
    assert_equivalent(original, model, feeds=feeds, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("axis", [-1, 3])
def test_last_axis_is_left_to_the_runtime(axis):
    model = _softmax_model(axis)
    DecomposeInnerSoftmax()(model)
    assert op_types(model) == ["Softmax"]


def test_before_opset_13_softmax_flattens_axes_and_is_left_alone():
    model = _softmax_model(1, opset=12)
    DecomposeInnerSoftmax()(model)
    assert op_types(model) == ["Softmax"]


def test_unknown_rank_is_left_alone():
    model = model_from_text("""
<ir_version: 9, opset_import: ["" : 17]>
g (float x) => (float y) {
    y = Softmax <axis = 1> (x)
}
""")
    DecomposeInnerSoftmax()(model)
    assert op_types(model) == ["Softmax"]


def test_a_softmax_read_inside_the_graph_and_as_an_output():
    model = model_from_text("""
<ir_version: 9, opset_import: ["" : 17]>
g (float[2, 5, 3] x) => (float[2, 5, 3] y, float[2, 5, 3] z) {
    y = Softmax <axis = 1> (x)
    z = Mul (y, y)
}
""")
    original = model_to_bytes(model)
    DecomposeInnerSoftmax()(model)
    assert "Softmax" not in op_types(model)
    assert [v.name for v in model.graph.outputs] == ["y", "z"]
    assert_equivalent(original, model, rtol=1e-5, atol=1e-6)


def test_names_already_in_the_graph_are_not_reused():
    """An initializer and a tensor named like the new ones (from the node name "Softmax") stay as they are."""
    model = model_from_text("""
<ir_version: 9, opset_import: ["" : 18]>
g (float[2, 5, 3] x) => (float[2, 5, 3] y, float[2, 5, 3] z, float[2, 1, 3] Softmax_max_output) {
    y = Softmax <axis = 1> (x)
    z = Softmax <axis = 1> (y)
    Softmax_max_output = ReduceMin <keepdims = 1> (x, Softmax_axes)
}
""", Softmax_axes=np.array([1], np.int64))
    model.graph.node(0).name = "Softmax"
    original = model_to_bytes(model)
    DecomposeInnerSoftmax()(model)
    assert op_types(model).count("Exp") == 2
    assert_equivalent(original, model, rtol=1e-5, atol=1e-6)
