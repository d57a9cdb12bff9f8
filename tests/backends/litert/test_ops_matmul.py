"""MatMul (constant weights -> FULLY_CONNECTED, activations -> BATCH_MATMUL, 1-D operands, broadcasting batch
dims) and Gemm (transA/transB, alpha/beta, C as bias or added) against ONNX Runtime."""

import numpy as np
import pytest

HEADER = '<ir_version: 9, opset_import: ["" : 17]>'
RNG = np.random.default_rng(0)


def matrix(*shape):
    return (RNG.standard_normal(shape) / np.sqrt(shape[0])).astype(np.float32)


@pytest.mark.parametrize("shape", ["[4, 16]", "[2, 8, 16]", "[2, 3, 5, 16]"])
def test_matmul_by_constant_weights_is_fully_connected_keeping_dims(matches_onnxruntime, shape):
    out = shape.replace("16]", "12]")
    ops = matches_onnxruntime(f"""{HEADER}
        g (float{shape} x) => (float{out} y) {{
            y = MatMul(x, w)
        }}""", w=matrix(16, 12))
    assert ops == ["FULLY_CONNECTED"]


@pytest.mark.parametrize("order", ["Add(m, b)", "Add(b, m)"])
def test_the_bias_add_after_a_projection_is_the_fully_connected_bias(matches_onnxruntime, order):
    ops = matches_onnxruntime(f"""{HEADER}
        g (float[1, 8, 16] x) => (float[1, 8, 12] y) {{
            m = MatMul(x, w)
            y = {order}
        }}""", w=matrix(16, 12), b=RNG.standard_normal(12).astype(np.float32))
    assert ops == ["FULLY_CONNECTED"]


def test_a_projection_used_twice_keeps_its_add(matches_onnxruntime):
    ops = matches_onnxruntime(f"""{HEADER}
        g (float[1, 8, 16] x) => (float[1, 8, 12] y, float[1, 8, 12] m) {{
            m = MatMul(x, w)
            y = Add(m, b)
        }}""", w=matrix(16, 12), b=RNG.standard_normal(12).astype(np.float32))
    assert ops == ["FULLY_CONNECTED", "ADD"]


@pytest.mark.parametrize("a, b, out", [
    ("[2, 3, 8, 4]", "[2, 3, 4, 8]", "[2, 3, 8, 8]"),    # attention scores
    ("[2, 3, 8, 4]", "[4, 5]", "[2, 3, 8, 5]"),          # broadcast batch: activation weights
    ("[3, 8, 4]", "[2, 1, 4, 5]", "[2, 3, 8, 5]"),
    ("[6, 4]", "[4, 5]", "[6, 5]"),
    ("[4]", "[2, 4, 5]", "[2, 5]"),                      # vector @ matrix
    ("[2, 6, 4]", "[4]", "[2, 6]"),                      # matrix @ vector
    ("[4]", "[4]", "[]"),
])
def test_matmul_of_activations_is_batch_matmul(matches_onnxruntime, a, b, out):
    ops = matches_onnxruntime(f"""{HEADER}
        g (float{a} x, float{b} z) => (float{out} y) {{
            y = MatMul(x, z)
        }}""")
    assert "BATCH_MATMUL" in ops


def test_matmul_of_a_constant_by_an_activation(matches_onnxruntime):
    ops = matches_onnxruntime(f"""{HEADER}
        g (float[2, 4, 5] z) => (float[2, 6, 5] y) {{
            y = MatMul(k, z)
        }}""", k=matrix(6, 4))
    assert ops == ["BATCH_MATMUL"]


@pytest.mark.parametrize("attributes, a_shape, b_shape, c_shape", [
    ("transB = 1", (4, 16), (12, 16), (12,)),            # torch.nn.Linear
    ("", (4, 16), (16, 12), (1, 12)),
    ("transA = 1", (16, 4), (16, 12), (12,)),
    ("transB = 1, alpha = 0.5, beta = 2.0", (4, 16), (12, 16), (12,)),
    ("transB = 1", (4, 16), (12, 16), (4, 12)),          # a full C: added after
    ("transB = 1", (4, 16), (12, 16), (4, 1)),           # a column C: added after
    ("transB = 1", (4, 16), (12, 16), None),
])
def test_gemm_with_constant_weights(matches_onnxruntime, attributes, a_shape, b_shape, c_shape):
    inputs = "a, w, c" if c_shape else "a, w"
    initializers = {"w": matrix(*b_shape)}
    if c_shape:
        initializers["c"] = RNG.standard_normal(c_shape).astype(np.float32)
    ops = matches_onnxruntime(f"""{HEADER}
        g (float{list(a_shape)} a) => (float[4, 12] y) {{
            y = Gemm <{attributes}> ({inputs})
        }}""".replace("<>", ""), **initializers)
    assert "FULLY_CONNECTED" in ops


def test_gemm_of_activations(matches_onnxruntime):
    ops = matches_onnxruntime(f"""{HEADER}
        g (float[16, 4] a, float[12, 16] b, float[12] c) => (float[4, 12] y) {{
            y = Gemm <transA = 1, transB = 1, alpha = 0.5, beta = 3.0> (a, b, c)
        }}""")
    assert "BATCH_MATMUL" in ops
