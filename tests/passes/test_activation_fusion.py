import math

import numpy as np

from optimizer.ir import infer_shapes, model_to_bytes
from optimizer.passes import FuseActivations
from optimizer.testing import assert_equivalent, model_from_text, op_types


def test_clip_form_of_hardswish_becomes_one_op():
    model = model_from_text(
        """
        <ir_version: 9, opset_import: ["" : 17]>
        g (float[1, 4, 5, 5] x) => (float[1, 4, 5, 5] y) {
            a = Add (x, three)
            c = Clip (a, zero, six)
            m = Mul (x, c)
            y = Div (m, six)
        }
        """,
        three=np.array(3.0, np.float32), zero=np.array(0.0, np.float32), six=np.array(6.0, np.float32),
    )
    original = model_to_bytes(model)
    infer_shapes(model)
    FuseActivations()(model)
    assert op_types(model) == ["HardSwish"]
    assert_equivalent(original, model)


def test_relu_after_relu_collapses():
    model = model_from_text(
        """
        <ir_version: 9, opset_import: ["" : 17]>
        g (float[8] x) => (float[8] y) {
            a = Relu (x)
            y = Relu (a)
        }
        """
    )
    FuseActivations()(model)
    assert op_types(model) == ["Relu"]


ERF_GELU = """
<ir_version: 10, opset_import: ["" : {opset}]>
g (float[2, 16] x) => (float[2, 16] y) {{
    d = Div (x, sqrt2)
    e = Erf (d)
    p = Add (e, one)
    h = Mul (x, half)
    y = Mul (h, p)
}}
"""


def _gelu_model(opset: int):
    return model_from_text(
        ERF_GELU.format(opset=opset),
        sqrt2=np.array(math.sqrt(2), np.float32), one=np.array(1.0, np.float32),
        half=np.array(0.5, np.float32),
    )


def test_erf_gelu_becomes_gelu_from_opset_20():
    model = _gelu_model(21)
    original = model_to_bytes(model)
    FuseActivations()(model)
    assert op_types(model) == ["Gelu"]
    assert_equivalent(original, model, rtol=1e-5, atol=1e-6)


def test_erf_gelu_stays_before_opset_20():
    model = _gelu_model(17)
    FuseActivations()(model)
    assert "Gelu" not in op_types(model)


def test_wrong_constant_is_not_gelu():
    model = model_from_text(
        ERF_GELU.format(opset=21),
        sqrt2=np.array(2.0, np.float32), one=np.array(1.0, np.float32), half=np.array(0.5, np.float32),
    )
    FuseActivations()(model)
    assert "Gelu" not in op_types(model)
