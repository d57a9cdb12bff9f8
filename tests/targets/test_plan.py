import pytest

from optimizer.errors import UsageError
from optimizer.targets import get_target
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


def test_edge_targets_say_their_runtime_is_not_built_and_fall_back():
    plan = make_plan(get_target("rpi5"), None, calibrated=False)
    assert plan.backends == ("onnxruntime",)
    assert any("tflite" in note and "onnxruntime" in note for note in plan.notes)
    assert plan.precision == "fp32"  # int8 is the default there, but it needs calibration data


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
