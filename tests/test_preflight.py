import onnx
import pytest
from onnx import TensorProto, helper

import optimizer
from optimizer.errors import UsageError
from optimizer.ir import from_proto
from optimizer.preflight import PreflightError, errors_of, preflight
from optimizer.targets import get_target
from optimizer.targets.plan import make_plan


def _model(custom: bool = False, batch="N"):
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [batch, 4])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, [batch, 4])
    nodes = [helper.make_node("Relu", ["x"], ["h"], name="relu")]
    if custom:
        nodes.append(helper.make_node("Frobnicate", ["h"], ["y"], name="my_frob", domain="acme"))
    else:
        nodes.append(helper.make_node("Sigmoid", ["h"], ["y"], name="sigmoid"))
    opsets = [helper.make_opsetid("", 17)] + ([helper.make_opsetid("acme", 1)] if custom else [])
    return helper.make_model(helper.make_graph(nodes, "g", [x], [y]), opset_imports=opsets)


def test_an_op_the_runtime_lacks_is_named_with_its_node():
    plan = make_plan(get_target("cpu"), "fp32", calibrated=False, runtime="onnxruntime")
    issues = preflight(from_proto(_model(custom=True)), plan, "onnxruntime")
    assert [(i.node, i.op, i.action) for i in errors_of(issues)] == [("my_frob", "acme::Frobnicate", "error")]
    assert not preflight(from_proto(_model()), plan, "onnxruntime")


def test_dynamic_inputs_on_a_static_shape_npu_are_errors_that_say_how_to_fix_them():
    plan = make_plan(get_target("intel-npu"), "fp16", calibrated=False)
    from optimizer.preflight import _profile_issues

    issues = _profile_issues(from_proto(_model()), plan, "openvino")
    assert [(i.node, i.action) for i in issues] == [("x", "error")]
    assert "--shape x=" in issues[0].problem
    assert not _profile_issues(from_proto(_model(batch=1)), plan, "openvino")


def test_precision_without_native_arithmetic_on_a_cpu_is_reported_not_refused():
    plan = make_plan(get_target("x86-64"), "bf16", calibrated=False)
    issues = preflight(from_proto(_model()), plan, "onnxruntime")
    assert [i.action for i in issues] == ["float"] and "no native bf16" in issues[0].problem


def test_optimize_stops_before_writing_anything_and_names_the_node(tmp_path):
    path = tmp_path / "custom.onnx"
    onnx.save(_model(custom=True), path)
    out = tmp_path / "out"
    with pytest.raises(PreflightError, match=r"my_frob \(acme::Frobnicate\)") as caught:
        optimizer.optimize(path, output_dir=out, runtime="onnxruntime")
    assert caught.value.exit_code == 1 and caught.value.issues[0].node == "my_frob"
    assert not out.exists()


def test_check_lists_issues_per_runtime_and_writes_nothing(tmp_path):
    path = tmp_path / "custom.onnx"
    onnx.save(_model(custom=True), path)
    result = optimizer.check(path, target="cpu", runtime="onnxruntime")
    assert not result.ok and result.issues["onnxruntime"][0].node == "my_frob"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["custom.onnx"]
    with pytest.raises(UsageError, match="unknown target"):
        optimizer.check(path, target="toaster")
