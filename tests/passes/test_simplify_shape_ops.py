import numpy as np

from optimizer.ir import infer_shapes, model_to_bytes
from optimizer.passes import SimplifyShapeOps
from optimizer.testing import assert_equivalent, model_from_text, op_types


def test_two_transposes_that_cancel_disappear_and_reshapes_merge():
    model = model_from_text(
        """
        <ir_version: 9, opset_import: ["" : 17]>
        g (float[2, 3, 4] x) => (float[4, 6] y) {
            t1 = Transpose <perm = [0, 2, 1]> (x)
            t2 = Transpose <perm = [0, 2, 1]> (t1)
            r1 = Reshape (t2, s1)
            y = Reshape (r1, s2)
        }
        """,
        s1=np.array([6, 4], np.int64), s2=np.array([4, 6], np.int64),
    )
    original = model_to_bytes(model)
    infer_shapes(model)
    SimplifyShapeOps()(model)
    assert op_types(model).count("Transpose") == 0
    assert op_types(model).count("Reshape") == 1
    assert_equivalent(original, model)
