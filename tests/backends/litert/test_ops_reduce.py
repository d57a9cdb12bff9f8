"""Reduce*, ArgMax/ArgMin and the decomposed LayerNormalization against ONNX Runtime, with axes as attribute
(before opset 18) and as input, keepdims 0 and 1, and on convolution outputs (NHWC in TFLite)."""

import numpy as np
import pytest

RNG = np.random.default_rng(0)
W = (RNG.standard_normal((4, 3, 1, 1)) / np.sqrt(3)).astype(np.float32)
REDUCTIONS = ["ReduceMean", "ReduceSum", "ReduceMax", "ReduceMin", "ReduceProd", "ReduceL1", "ReduceL2",
              "ReduceSumSquare", "ReduceLogSum", "ReduceLogSumExp"]


def positive_feeds(shape):
    """Inputs in 0.5..1.5: ReduceLogSum and ReduceProd stay defined and well-scaled."""
    return {"x": RNG.uniform(0.5, 1.5, shape).astype(np.float32)}


@pytest.mark.parametrize("keepdims", [0, 1])
@pytest.mark.parametrize("op", REDUCTIONS)
def test_reduction_with_axes_input(matches_onnxruntime, op, keepdims):
    out = "[2, 1, 5]" if keepdims else "[2, 5]"
    matches_onnxruntime(f"""<ir_version: 9, opset_import: ["" : 18]>
        g (float[2, 4, 5] x) => (float{out} y) {{
            y = {op} <keepdims = {keepdims}> (x, axes)
        }}""", positive_feeds((2, 4, 5)), axes=np.array([-2], np.int64))


@pytest.mark.parametrize("keepdims", [0, 1])
@pytest.mark.parametrize("op", [op for op in REDUCTIONS if op != "ReduceSum"])
def test_reduction_with_axes_attribute(matches_onnxruntime, op, keepdims):
    out = "[1, 1, 5]" if keepdims else "[5]"
    matches_onnxruntime(f"""<ir_version: 8, opset_import: ["" : 13]>
        g (float[2, 4, 5] x) => (float{out} y) {{
            y = {op} <keepdims = {keepdims}, axes = [0, 1]> (x)
        }}""", positive_feeds((2, 4, 5)))


@pytest.mark.parametrize("keepdims", [0, 1])
def test_reduce_sum_over_every_axis_and_no_axis(matches_onnxruntime, keepdims):
    out = "[1, 1]" if keepdims else "[]"
    matches_onnxruntime(f"""<ir_version: 9, opset_import: ["" : 18]>
        g (float[3, 4] x) => (float{out} y, float[3, 4] n) {{
            y = ReduceSum <keepdims = {keepdims}> (x)
            n = ReduceSum <noop_with_empty_axes = 1> (x)
        }}""")


@pytest.mark.parametrize("axes, keepdims, out, nhwc", [
    ("[2, 3]", 1, "[1, 4, 1, 1]", True),
    ("[2, 3]", 0, "[1, 4]", True),       # what remains (N, C) is in the same order in both layouts
    ("[1]", 0, "[1, 6, 5]", True),
    ("[1]", 1, "[1, 1, 6, 5]", True),
    ("[2]", 0, "[1, 4, 5]", False),      # (N, W, C) in NHWC: read in ONNX's layout
])
@pytest.mark.parametrize("op", ["ReduceMean", "ReduceMax", "ReduceL2"])
def test_reduction_of_a_convolution_output(matches_onnxruntime, op, axes, keepdims, out, nhwc):
    ops = matches_onnxruntime(f"""<ir_version: 9, opset_import: ["" : 13]>
        g (float[1, 3, 6, 5] x) => (float{out} y) {{
            a = Conv <kernel_shape = [1, 1]> (x, w)
            y = {op} <axes = {axes}, keepdims = {keepdims}> (a)
        }}""", w=W)
    # Only the input's transpose, and the output's when it stays 4-D NHWC.
    transposes = 1 + (keepdims if nhwc else 0) if nhwc else 2
    assert ops.count("TRANSPOSE") == transposes, ops


@pytest.mark.parametrize("op, keepdims", [("ArgMax", 1), ("ArgMax", 0), ("ArgMin", 0)])
def test_arg_max_and_min(matches_onnxruntime, op, keepdims):
    out = "[2, 1, 5]" if keepdims else "[2, 5]"
    ops = matches_onnxruntime(f"""<ir_version: 9, opset_import: ["" : 17]>
        g (float[2, 4, 5] x) => (int64{out} y) {{
            y = {op} <axis = 1, keepdims = {keepdims}> (x)
        }}""")
    assert op.upper().replace("ARG", "ARG_") in ops


def test_layer_normalization_over_the_last_axis(matches_onnxruntime):
    ops = matches_onnxruntime("""<ir_version: 9, opset_import: ["" : 17]>
        g (float[2, 8, 32] x) => (float[2, 8, 32] y) {
            y = LayerNormalization <epsilon = 1e-12> (x, scale, bias)
        }""", scale=RNG.uniform(0.5, 2, 32).astype(np.float32), bias=RNG.standard_normal(32).astype(np.float32))
    assert ops.count("MEAN") == 2 and "RSQRT" in ops


def test_layer_normalization_over_several_axes_of_a_convolution_output_without_bias(matches_onnxruntime):
    """GroupNorm(1)-style: over C, H and W of an NHWC value; a scale of ones is no op at all."""
    ops = matches_onnxruntime("""<ir_version: 9, opset_import: ["" : 17]>
        g (float[1, 3, 6, 5] x) => (float[1, 4, 6, 5] y) {
            a = Conv <kernel_shape = [1, 1]> (x, w)
            y = LayerNormalization <axis = 1> (a, scale)
        }""", w=W, scale=np.ones((4, 6, 5), np.float32))
    assert "RSQRT" in ops and ops.count("MUL") == 2  # the square and the normalization


def test_layer_normalization_with_a_computed_scale(matches_onnxruntime):
    matches_onnxruntime("""<ir_version: 9, opset_import: ["" : 17]>
        g (float[2, 8, 16] x, float[16] s, float[16] b) => (float[2, 8, 16] y) {
            y = LayerNormalization <epsilon = 1e-5> (x, s, b)
        }""")


@pytest.mark.parametrize("op", ["ReduceL2", "ReduceLogSum", "ReduceL1", "ReduceSumSquare"])
def test_noop_with_empty_axes_still_applies_the_elementwise_part(matches_onnxruntime, op):
    matches_onnxruntime(f"""<ir_version: 9, opset_import: ["" : 18]>
        g (float[3, 4] x) => (float[3, 4] y) {{ y = {op} <noop_with_empty_axes = 1> (x) }}""",
                        {"x": np.random.default_rng(0).uniform(0.5, 2.0, (3, 4)).astype(np.float32)})
