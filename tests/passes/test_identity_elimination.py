import numpy as np

from optimizer.ir import infer_shapes, model_to_bytes
from optimizer.passes import EliminateIdentity
from optimizer.testing import assert_equivalent, model_from_text, op_types


def test_identity_dropout_cast_and_neutral_arithmetic_are_removed():
    model = model_from_text(
        """
        <ir_version: 9, opset_import: ["" : 17]>
        g (float[2, 3] x) => (float[2, 3] y) {
            a = Identity (x)
            b = Dropout (a)
            c = Cast <to = 1> (b)
            d = Mul (c, one)
            e = Add (d, zero)
            y = Relu (e)
        }
        """,
        one=np.array(1.0, np.float32),
        zero=np.array(0.0, np.float32),
    )
    original = model_to_bytes(model)
    infer_shapes(model)
    eliminate = EliminateIdentity()
    eliminate(model)
    assert op_types(model) == ["Relu"]
    assert eliminate.total_rewrites >= 5
    assert_equivalent(original, model)


def test_reshape_to_the_same_static_shape_is_removed_but_a_real_reshape_stays():
    model = model_from_text(
        """
        <ir_version: 9, opset_import: ["" : 17]>
        g (float[2, 6] x) => (float[3, 4] y) {
            same = Reshape (x, same_shape)
            y = Reshape (same, new_shape)
        }
        """,
        same_shape=np.array([2, -1], np.int64),
        new_shape=np.array([3, 4], np.int64),
    )
    original = model_to_bytes(model)
    infer_shapes(model)
    EliminateIdentity()(model)
    assert op_types(model) == ["Reshape"]
    assert_equivalent(original, model)


def test_adding_zero_that_broadcasts_to_a_bigger_shape_stays():
    model = model_from_text(
        """
        <ir_version: 9, opset_import: ["" : 17]>
        g (float[3] x) => (float[2, 3] y) {
            y = Add (x, zeros)
        }
        """,
        zeros=np.zeros((2, 3), np.float32),
    )
    infer_shapes(model)
    EliminateIdentity()(model)
    assert op_types(model) == ["Add"]


def test_identity_that_is_a_graph_output_keeps_the_output_name():
    model = model_from_text(
        """
        <ir_version: 9, opset_import: ["" : 17]>
        g (float[2] x) => (float[2] y) {
            r = Relu (x)
            y = Identity (r)
        }
        """
    )
    EliminateIdentity()(model)
    assert op_types(model) == ["Relu"]
    assert [o.name for o in model.graph.outputs] == ["y"]


def test_dropout_that_is_a_graph_output_or_in_a_subgraph_is_removed():
    model = model_from_text(
        """
        <ir_version: 9, opset_import: ["" : 17]>
        g (float[2] x, bool c) => (float[2] y, float[2] z) {
            y = Dropout (x)
            z = If (c) <
                then_branch = t () => (float[2] a) { a = Dropout (x) },
                else_branch = e () => (float[2] b) { b = Neg (x) }
            >
        }
        """
    )
    original = model_to_bytes(model)
    EliminateIdentity()(model)
    assert [o.name for o in model.graph.outputs] == ["y", "z"]
    then_branch = model.graph.node(0 if op_types(model)[0] == "If" else 1).attributes["then_branch"].value
    assert "Dropout" not in [n.op_type for n in then_branch]
    assert "Dropout" not in op_types(model)
    feeds = {"x": np.array([1.0, -2.0], np.float32), "c": np.array(True)}
    assert_equivalent(original, model, feeds)


def test_dropout_in_training_mode_or_with_a_used_mask_stays():
    model = model_from_text(
        """
        <ir_version: 9, opset_import: ["" : 17]>
        g (float[2] x, bool t) => (float[2] y, bool[2] m) {
            y = Dropout (x, , t)
            d, m = Dropout (x)
        }
        """
    )
    EliminateIdentity()(model)
    assert op_types(model).count("Dropout") == 2


def test_identity_a_subgraph_needs_to_output_an_outer_value_stays():
    model = model_from_text(
        """
        <ir_version: 9, opset_import: ["" : 17]>
        g (float[2] x, bool c) => (float[2] z) {
            r = Relu (x)
            z = If (c) <
                then_branch = t () => (float[2] a) { a = Identity (r) },
                else_branch = e () => (float[2] b) { b = Neg (r) }
            >
        }
        """
    )
    original = model_to_bytes(model)
    EliminateIdentity()(model)
    feeds = {"x": np.array([1.0, -2.0], np.float32), "c": np.array(True)}
    assert_equivalent(original, model, feeds)


def test_scan_body_whose_state_is_also_the_scan_output_keeps_both_outputs():
    model = model_from_text(
        """
        <ir_version: 9, opset_import: ["" : 17]>
        g (float[2] init, float[3, 2] xs) => (float[2] final, float[3, 2] partial) {
            final, partial = Scan <num_scan_inputs = 1, body = body (float[2] sum_in, float[2] next)
                => (float[2] sum_out, float[2] scan_out) {
                    sum_out = Add (sum_in, next)
                    scan_out = Identity (sum_out)
                }> (init, xs)
        }
        """
    )
    original = model_to_bytes(model)
    EliminateIdentity()(model)
    feeds = {"init": np.zeros(2, np.float32), "xs": np.arange(6, dtype=np.float32).reshape(3, 2)}
    assert_equivalent(original, model, feeds)
