import numpy as np

from optimizer.ir import model_to_bytes
from optimizer.passes import FoldConstants, FoldConstantsConfig
from optimizer.testing import assert_equivalent, model_from_text, op_types


def test_constant_subgraph_becomes_an_initializer():
    model = model_from_text(
        """
        <ir_version: 9, opset_import: ["" : 17]>
        g (float[3] x) => (float[3] y) {
            c = Mul (a, b)
            y = Add (x, c)
        }
        """,
        a=np.array([1, 2, 3], np.float32), b=np.array([4, 5, 6], np.float32),
    )
    original = model_to_bytes(model)
    fold = FoldConstants()
    fold(model)
    assert op_types(model) == ["Add"]
    assert fold.total_rewrites >= 1
    assert_equivalent(original, model)


def test_fold_respects_the_output_size_limit():
    model = model_from_text(
        """
        <ir_version: 9, opset_import: ["" : 17]>
        g (float[1000] x) => (float[1000] y) {
            big = Expand (one, shape)
            y = Add (x, big)
        }
        """,
        one=np.array([1.0], np.float32), shape=np.array([1000], np.int64),
    )
    FoldConstants(FoldConstantsConfig(output_size_limit=100))(model)
    assert op_types(model) == ["Expand", "Add"]


def test_random_ops_are_not_folded():
    model = model_from_text(
        """
        <ir_version: 9, opset_import: ["" : 17]>
        g (float[3] x) => (float[3] y) {
            r = RandomUniform <shape = [3], dtype = 1> ()
            y = Add (x, r)
        }
        """
    )
    FoldConstants()(model)
    assert op_types(model) == ["RandomUniform", "Add"]
