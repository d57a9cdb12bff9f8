import pytest

from optimizer.errors import UsageError
from optimizer.targets import get_target
from optimizer.targets import plan as plan_module
from optimizer.targets.plan import check_precision, make_plan


def test_the_host_cpu_plans_int8_only_with_calibration_data():
    cpu = get_target("cpu")
    assert make_plan(cpu, None, calibrated=False).precision == "fp32"
    calibrated = make_plan(cpu, None, calibrated=True)
    assert calibrated.precision == "int8" and "calibration" in " ".join(calibrated.notes)
    assert make_plan(cpu, "fp16", calibrated=True).precision == "fp16"


def test_the_host_cpu_measures_every_installed_cpu_runtime():
    plan = make_plan(get_target("cpu"), None, calibrated=False)
    assert plan.backends[0] == "onnxruntime"
    assert plan.pipeline_for("onnxruntime") == "onnxruntime-cpu" and plan.pipeline_for("openvino") == "portable"


def test_nvidia_targets_plan_tensorrt_fp16_and_intel_targets_openvino_on_their_device():
    jetson = make_plan(get_target("jetson"), None, calibrated=False)
    assert (jetson.backends, jetson.precision) == (("tensorrt",), "fp16")
    assert make_plan(get_target("h100"), None, calibrated=True).backends == ("tensorrt",)
    npu = make_plan(get_target("intel-npu"), None, calibrated=False)
    assert npu.backends == ("openvino",) and npu.device == "NPU"


def test_edge_targets_plan_litert_where_it_is_installed():
    pytest.importorskip("ai_edge_litert", reason="the plan falls back without it (tested below)")
    for name in ("rpi4", "rpi5", "arm64", "android-arm64"):
        plan = make_plan(get_target(name), None, calibrated=False)
        assert plan.backends == ("tflite",) and plan.pipeline_for("tflite") == "portable"
        assert plan.precision == "fp32"  # int8 is the default there, but it needs calibration data
    assert make_plan(get_target("rpi5"), None, calibrated=True).precision == "int8"


def test_edge_targets_fall_back_to_onnxruntime_without_litert(monkeypatch):
    monkeypatch.setattr(plan_module, "runtime_installed", lambda module: module != "ai_edge_litert")
    plan = make_plan(get_target("rpi5"), None, calibrated=False)
    assert plan.backends == ("onnxruntime",)
    assert any("tflite" in note and "hwopt[tflite]" in note and "onnxruntime" in note for note in plan.notes)


def test_forced_runtime_must_be_one_the_target_runs():
    assert make_plan(get_target("cpu"), None, calibrated=False, runtime="openvino").backends == ("openvino",)
    with pytest.raises(UsageError, match="t4 does not run openvino"):
        make_plan(get_target("t4"), None, calibrated=False, runtime="openvino")
    with pytest.raises(UsageError, match="unknown runtime 'tvm'"):
        make_plan(get_target("cpu"), None, calibrated=False, runtime="tvm")


def test_a_precision_the_device_lacks_is_a_usage_error():
    with pytest.raises(UsageError, match="t4 does not compute bf16"):
        check_precision(make_plan(get_target("t4"), "bf16", calibrated=False))
    check_precision(make_plan(get_target("cpu"), "fp16", calibrated=False))  # cpus cast: a warning, not an error
