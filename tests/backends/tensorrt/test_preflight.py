"""Pre-flight for TensorRT on tiny models: ops the parser lacks, custom domains, parser restrictions, precisions
the target lacks, and the nodes a Jetson's DLA hands back to the GPU. Where TensorRT-RTX is installed, its own
parser confirms the errors pre-flight predicts, naming the same node."""

import numpy as np
import pytest
from optimizer.backends.tensorrt import TensorRTBackend
from optimizer.backends.tensorrt.ops import TENSORRT_ONNX_OPS

from optimizer.ir import save_model
from optimizer.testing import model_from_text

CONV_RELU = """
<ir_version: 9, opset_import: ["" : 17]>
g (float[1, 3, 16, 16] x) => (float[1, 8, 16, 16] y) {
    c = Conv <pads = [1, 1, 1, 1]> (x, w)
    y = Relu (c)
}
"""


def _weights():
    return {"w": np.random.default_rng(0).standard_normal((8, 3, 3, 3)).astype(np.float32)}


def _preflight(model, target, precision="fp16"):
    return TensorRTBackend().preflight(model, target, precision)


def test_a_plain_conv_model_has_no_issues(t4):
    assert _preflight(model_from_text(CONV_RELU, **_weights()), t4) == []


def test_an_op_the_parser_lacks_is_an_error_naming_the_node(t4):
    model = model_from_text("""
        <ir_version: 9, opset_import: ["" : 17]>
        g (float[4, 8] x) => (float[4, 8] y) {
            y = Relu (x)
            b = BitShift <direction = "LEFT"> (i, i)
        }
        """, i=np.ones(3, np.uint32))
    model.graph.node(1).name = "shift"
    [issue] = _preflight(model, t4)
    assert "BitShift" not in TENSORRT_ONNX_OPS
    assert (issue.node, issue.op, issue.action) == ("shift", "BitShift", "error")
    assert issue.problem.startswith("TensorRT's ONNX parser has no BitShift")


def test_a_custom_domain_op_is_an_error(t4):
    model = model_from_text("""
        <ir_version: 9, opset_import: ["" : 17, "com.microsoft" : 1]>
        g (float[2, 4] x) => (float[2, 4] y) {
            y = com.microsoft.FastGelu (x)
        }
        """)
    model.graph.node(0).name = "gelu"
    [issue] = _preflight(model, t4)
    assert (issue.node, issue.op, issue.action) == ("gelu", "com.microsoft::FastGelu", "error")
    assert "plugin" in issue.problem


def test_nodes_inside_if_branches_are_checked_and_named_by_their_path(t4):
    model = model_from_text("""
        <ir_version: 9, opset_import: ["" : 17]>
        g (bool c, float[4] x) => (float[4] y) {
            y = If (c) <
                then_branch = then_graph () => (float[4] t) { t = Relu (x) },
                else_branch = else_graph () => (float[4] e) { e = Hardmax (x) , u = Unique (x) }
            >
        }
        """)
    model.graph.node(0).name = "branch"
    issues = _preflight(model, t4)
    assert [(i.node, i.op) for i in issues] == [("branch/else_branch/Unique#1", "Unique")]


def test_parser_restrictions_are_checked_per_node(t4):
    model = model_from_text("""
        <ir_version: 9, opset_import: ["" : 19]>
        g (float[1, 3, 8, 8] x) => (float[1, 3, 16, 16] y) {
            y = Resize <mode = "cubic"> (x, roi, scales)
        }
        """, roi=np.zeros(0, np.float32), scales=np.array([1, 1, 2, 2], np.float32))
    [issue] = _preflight(model, t4)
    assert (issue.op, issue.action) == ("Resize", "error") and "cubic" in issue.problem


def test_asymmetric_uint8_qdq_is_an_error(t4):
    model = model_from_text("""
        <ir_version: 9, opset_import: ["" : 17]>
        g (float[4] x) => (float[4] y) {
            q = QuantizeLinear (x, scale, zero)
            y = DequantizeLinear (q, scale, zero)
        }
        """, scale=np.array(0.1, np.float32), zero=np.array(128, np.uint8))
    issues = _preflight(model, t4, "int8")
    assert [i.op for i in issues] == ["QuantizeLinear", "DequantizeLinear"]
    assert all("uint8" in i.problem and "'tensorrt'" in i.problem for i in issues)


def test_a_precision_the_target_lacks_is_an_error(t4, orin):
    model = model_from_text(CONV_RELU, **_weights())
    [bf16] = _preflight(model, t4, "bf16")
    assert (bf16.node, bf16.action) == ("(all layers)", "error") and "no native bf16" in bf16.problem
    assert "sm 7.5" in bf16.problem
    assert [i for i in _preflight(model, orin, "fp8") if "no native fp8" in i.problem]
    # ONNX Runtime's own schemes are not TensorRT's
    assert any("int8 with calibration" in i.problem for i in _preflight(model, t4, "int8-dynamic"))
    assert any("MatMulNBits" in i.problem for i in _preflight(model, t4, "int4"))


def test_dla_fallback_names_each_node_and_why(orin):
    model = model_from_text("""
        <ir_version: 9, opset_import: ["" : 17]>
        g (float[1, 3, 16, 16] x) => (float[1, 8, 16] y) {
            c = Conv <pads = [1, 1, 1, 1]> (x, w)
            r = Relu (c)
            wide = Conv <kernel_shape = [1, 1], strides = [16, 16]> (r, w1)
            e = Erf (r)
            m = ReduceMax <keepdims = 0> (e, axes)
            y = Add (m, m)
        }
        """, w=_weights()["w"], w1=np.ones((8, 8, 1, 1), np.float32), axes=np.array([3], np.int64))
    for index, node in enumerate(model.graph):
        node.name = f"n{index}"
    issues = _preflight(model, orin, "fp16")
    assert all(i.action == "fallback" for i in issues)
    assert {(i.node, i.op): i.problem for i in issues} == {
        ("n2", "Conv"): "DLA convolution strides must be at most 8, not 16",
        ("n3", "Erf"): "DLA has no Erf layer",
        ("n4", "ReduceMax"): "DLA has no ReduceMax layer",
    }
    # The shapes inferred for the check are forgotten again, as the pipeline left them.
    assert all(v.shape is None for node in model.graph for v in node.outputs if not v.is_graph_output())


def test_dla_runs_matmul_with_constant_weights_and_concat_on_channels_only(orin):
    model = model_from_text("""
        <ir_version: 9, opset_import: ["" : 17]>
        g (float[1, 4, 8, 8] x) => (float[1, 8, 8, 8] y, float[1, 4, 8, 16] z) {
            y = Concat <axis = 1> (x, x)
            z = Concat <axis = 3> (x, x)
            a = MatMul (x, w)
            b = MatMul (x, x)
        }
        """, w=np.ones((8, 8), np.float32))
    issues = _preflight(model, orin, "fp16")
    assert [(i.node, i.problem) for i in issues] == [
        ("Concat#1", "DLA concatenates on the channel axis only"),
        ("MatMul#3", "DLA runs MatMul only as a fully connected layer, with constant weights"),
    ]


def test_dla_cannot_run_fp32_or_dynamic_shapes(orin):
    [fp32] = _preflight(model_from_text(CONV_RELU, **_weights()), orin, "fp32")
    assert (fp32.node, fp32.action) == ("(all layers)", "fallback") and "fp16/int8 only" in fp32.problem
    dynamic = model_from_text(CONV_RELU.replace("float[1, 3, 16, 16] x", "float[N, 3, 16, 16] x"), **_weights())
    [issue] = _preflight(dynamic, orin, "fp16")
    assert issue.action == "fallback" and "static shapes" in issue.problem
    assert "x: float32 [Nx3x16x16]" in issue.problem


def test_targets_without_dla_get_no_fallbacks(t4):
    model = model_from_text(CONV_RELU.replace("y = Relu (c)", "y = Erf (c)"), **_weights())
    assert _preflight(model, t4) == []


def test_the_rtx_parser_rejects_what_preflight_rejects(t4, tmp_path):
    """TensorRT-RTX shares TensorRT's ONNX parser: an op pre-flight calls unsupported fails there too."""
    pytest.importorskip("tensorrt_rtx", reason="TensorRT-RTX (pip install tensorrt-rtx-cu12) is not installed")
    from optimizer.backends.tensorrt.rtx_check import check_onnx

    model = model_from_text("""
        <ir_version: 9, opset_import: ["" : 17]>
        g (float[4] x) => (float[4] y) {
            y = Unique <sorted = 1> (x)
        }
        """)
    model.graph.node(0).name = "unique"
    [issue] = _preflight(model, t4)
    save_model(model, tmp_path / "model.onnx")
    result = check_onnx(tmp_path / "model.onnx")
    assert not result.parsed
    assert result.problems[0].startswith("unique (Unique)"), result.problems
    assert issue.node == "unique"


@pytest.mark.parametrize(("name", "precision", "expected"), [
    ("t4", "bf16", {"error"}), ("h100", "fp8", set()), ("jetson-agx-orin", "fp16", {"fallback"}),
    ("jetson-agx-orin", "fp8", {"error", "fallback"}),  # no fp8 on Orin's GPU, nor on its DLA
])
def test_the_real_target_profiles(name, precision, expected):
    """The shipped profiles (optimizer/targets/families) through the same checks, where they are defined."""
    from optimizer.errors import UsageError
    from optimizer.targets import get_target

    try:
        target = get_target(name)
    except UsageError:
        pytest.skip(f"no target '{name}' in this hwopt")
    model = model_from_text(CONV_RELU.replace("y = Relu (c)", "y = Erf (c)"), **_weights())
    actions = {issue.action for issue in _preflight(model, target, precision)}
    assert actions == expected
