import numpy as np

from optimizer.ir import infer_shapes, model_to_bytes
from optimizer.passes import MatMulAddToGemm
from optimizer.testing import assert_equivalent, model_from_text, op_types


def test_2d_matmul_plus_bias_becomes_gemm():
    rng = np.random.default_rng(0)
    model = model_from_text(
        """
        <ir_version: 9, opset_import: ["" : 17]>
        g (float[4, 8] x) => (float[4, 5] y) {
            m = MatMul (x, w)
            y = Add (m, b)
        }
        """,
        w=rng.standard_normal((8, 5)).astype(np.float32),
        b=rng.standard_normal(5).astype(np.float32),
    )
    original = model_to_bytes(model)
    infer_shapes(model)
    MatMulAddToGemm()(model)
    assert op_types(model) == ["Gemm"]
    assert_equivalent(original, model, rtol=1e-5, atol=1e-5)


def test_3d_matmul_is_left_alone():
    rng = np.random.default_rng(0)
    model = model_from_text(
        """
        <ir_version: 9, opset_import: ["" : 17]>
        g (float[2, 4, 8] x) => (float[2, 4, 5] y) {
            m = MatMul (x, w)
            y = Add (m, b)
        }
        """,
        w=rng.standard_normal((8, 5)).astype(np.float32),
        b=rng.standard_normal(5).astype(np.float32),
    )
    infer_shapes(model)
    MatMulAddToGemm()(model)
    assert op_types(model) == ["MatMul", "Add"]
