import json

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper

from optimizer.artifact import ArtifactError
from optimizer.benchmarks.runner import bench
from optimizer.errors import RuntimeNotAvailableError, UsageError

FAST = dict(time_budget_s=0.2, threads=1)


def _dynamic_batch_model(path, *, batch="N"):
    graph = helper.make_graph(
        [helper.make_node("MatMul", ["x", "w"], ["y"]), helper.make_node("Relu", ["y"], ["z"])], "dense",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [batch, 16])],
        [helper.make_tensor_value_info("z", TensorProto.FLOAT, [batch, 8])],
        [helper.make_tensor("w", TensorProto.FLOAT, [16, 8], np.ones(128, np.float32))])
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), path)
    return path


def test_an_artifact_is_measured_with_every_field_of_the_report(demo_artifact):
    report = bench(demo_artifact, **FAST)
    latency = report.batches[0].latency
    assert report.kind == "measured" and report.source == "local"
    assert report.model.name == "demo"  # the optimize run's source, not the folder's name
    assert report.runtime == "onnxruntime" and report.precision == "fp32" and report.label == "fp32 onnxruntime"
    assert latency.min_ms <= latency.p50_ms <= latency.p90_ms <= latency.p99_ms <= latency.max_ms
    assert latency.ci95_low_ms <= latency.p50_ms <= latency.ci95_high_ms
    assert report.batches[0].throughput_per_s == pytest.approx(1e3 / latency.p50_ms)
    assert report.memory.peak_rss_bytes >= report.memory.rss_before_bytes > 0
    assert report.load_seconds > 0 and report.compile_seconds is None
    assert report.model.size_bytes > 0 and len(report.model.sha256) == 64
    assert report.environment.threads == 1 and "onnxruntime" in report.environment.runtimes
    assert report.fidelity["worst_cosine"] > 0.999


def test_a_plain_model_is_compiled_for_the_target_and_timed_per_batch(tmp_path):
    path = _dynamic_batch_model(tmp_path / "dense.onnx")
    report = bench(path, batches=(1, 4), profile_operators=False, **FAST)
    assert [b.batch for b in report.batches] == [1, 4]
    assert report.compile_seconds is not None and report.model.name == "dense"
    assert report.model.inputs == {"x": [1, 16]}
    assert path.read_bytes() == _dynamic_batch_model(tmp_path / "again.onnx").read_bytes()  # input untouched


def test_a_fixed_batch_dimension_names_the_input(tmp_path):
    path = _dynamic_batch_model(tmp_path / "fixed.onnx", batch=1)
    with pytest.raises(UsageError, match="input 'x' has a fixed batch dimension of 1"):
        bench(path, batches=(1, 8), **FAST)


def test_real_inputs_are_used_and_checked(tmp_path):
    path = _dynamic_batch_model(tmp_path / "dense.onnx")
    np.savez(tmp_path / "good.npz", x=np.zeros((2, 16), np.float32))
    report = bench(path, inputs=tmp_path / "good.npz", profile_operators=False, **FAST)
    assert report.model.inputs == {"x": [2, 16]}
    np.savez(tmp_path / "bad.npz", y=np.zeros((2, 16), np.float32))
    with pytest.raises(UsageError, match="missing input"):
        bench(path, inputs=tmp_path / "bad.npz", **FAST)


def test_an_altered_artifact_is_refused_before_anything_runs(demo_artifact, tmp_path):
    import shutil

    copy = tmp_path / "copy"
    shutil.copytree(demo_artifact, copy)
    entry = json.loads((copy / "manifest.json").read_text())["entry"]
    data = bytearray((copy / entry).read_bytes())
    data[-1] ^= 0xFF
    (copy / entry).write_bytes(bytes(data))
    with pytest.raises(ArtifactError, match="checksum"):
        bench(copy, **FAST)


def test_an_artifact_for_a_device_not_here_points_to_the_agent(demo_artifact, tmp_path):
    import shutil

    copy = tmp_path / "gpu"
    shutil.copytree(demo_artifact, copy)
    manifest = json.loads((copy / "manifest.json").read_text())
    manifest.update(runs_here=False, device="GPU")
    (copy / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(RuntimeNotAvailableError, match="--remote"):
        bench(copy, **FAST)


@pytest.mark.parametrize("options, message", [
    (dict(batches=(0,)), "positive batch sizes"),
    (dict(runs=0), "--runs must be at least 1"),
    (dict(time_budget_s=0), "--time must be positive"),
    (dict(target="cpu"), "already compiled"),
])
def test_bad_options_are_usage_errors(demo_artifact, options, message):
    with pytest.raises(UsageError, match=message):
        bench(demo_artifact, **{**FAST, **options})


def test_a_missing_source_is_named(tmp_path):
    with pytest.raises(UsageError, match="no such model file or artifact folder"):
        bench(tmp_path / "nothing", **FAST)


def test_generated_inputs_take_the_given_shapes(tmp_path):
    graph = helper.make_graph(
        [helper.make_node("ReduceMean", ["x"], ["y"], keepdims=0)], "mean",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 3, "H", "W"])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [])])
    path = tmp_path / "mean.onnx"
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), path)
    report = bench(path, shapes={"x": (1, 3, 32, 48)}, profile_operators=False, **FAST)
    assert report.model.inputs == {"x": [1, 3, 32, 48]}
    with pytest.raises(UsageError, match="unknown input"):
        bench(path, shapes={"images": (1, 3, 32, 32)}, **FAST)


def test_fidelity_comes_from_the_outputs_that_decided_verification(demo_artifact, tmp_path):
    import shutil

    copy = tmp_path / "copy"
    shutil.copytree(demo_artifact, copy)
    report = json.loads((copy / "report.json").read_text())
    judged = dict(report["verification"]["outputs"][0], cosine=0.995, decides=True)
    ignored = dict(judged, name="hidden_states", cosine=0.5, decides=False)
    report["verification"]["outputs"] = [judged, ignored]
    (copy / "report.json").write_text(json.dumps(report))
    assert bench(copy, profile_operators=False, **FAST).fidelity["worst_cosine"] == 0.995


def test_a_plain_model_for_a_static_shape_runtime_takes_the_given_shapes(tmp_path):
    pytest.importorskip("ai_edge_litert.interpreter", reason="ai-edge-litert is not installed")
    path = _dynamic_batch_model(tmp_path / "dense.onnx")
    report = bench(path, runtime="tflite", shapes={"x": (1, 16)}, profile_operators=False, **FAST)
    assert report.runtime == "tflite" and report.model.inputs == {"x": [1, 16]}
