from optimizer.ir import model_to_bytes
from optimizer.passes import EliminateCommonSubexpressions
from optimizer.testing import assert_equivalent, model_from_text, op_types


def test_the_same_expression_is_computed_once():
    model = model_from_text(
        """
        <ir_version: 9, opset_import: ["" : 17]>
        g (float[4] x) => (float[4] y) {
            a = Sigmoid (x)
            b = Sigmoid (x)
            y = Add (a, b)
        }
        """
    )
    original = model_to_bytes(model)
    EliminateCommonSubexpressions()(model)
    assert op_types(model) == ["Sigmoid", "Add"]
    assert_equivalent(original, model)
