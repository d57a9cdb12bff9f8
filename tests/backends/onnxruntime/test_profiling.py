"""ONNX Runtime's profiler as hwopt reads it: a tiny model built here, a hand-made trace for what the tiny model
cannot show (warm-up runs, control flow), and yolov8n from zoo.md at the end (marked zoo)."""

import tempfile

import numpy as np
import pytest
from optimizer.backends.base import CompileOptions
from optimizer.backends.onnxruntime import OnnxRuntimeBackend
from optimizer.backends.onnxruntime.profiling import operator_times

from optimizer.artifact import Manifest, load_artifact, model_io_specs, write_manifest
from optimizer.errors import ModelRunError
from optimizer.ir import infer_shapes
from optimizer.targets import get_target
from optimizer.testing import model_from_text

TINY = """
<ir_version: 9, opset_import: ["" : 17]>
g (float[1, 3, 16, 16] x) => (float[1, 8, 16, 16] y) {
    c = Conv <pads = [1, 1, 1, 1]> (x, w, b)
    r = Relu (c)
    m = MatMul (r, k)
    y = Softmax <axis = -1> (m)
}
"""
CONV_KERNELS = ("Conv", "FusedConv")
"""What ORT runs Conv+Relu as: one FusedConv, or at the "all" level a Conv in the NCHWc layout (Relu inside)."""
LAYOUT_KERNELS = ("ReorderInput", "ReorderOutput")


def _tiny_model():
    rng = np.random.default_rng(0)
    model = model_from_text(TINY, w=rng.standard_normal((8, 3, 3, 3)).astype(np.float32),
                            b=rng.standard_normal(8).astype(np.float32),
                            k=rng.standard_normal((16, 16)).astype(np.float32))
    infer_shapes(model)
    return model


def _feeds():
    return {"x": np.random.default_rng(1).standard_normal((1, 3, 16, 16)).astype(np.float32)}


def _artifact(model, folder, threads=1):
    """Compile `model` and write the manifest the way hwopt's build does; the artifact as load_artifact reads it."""
    compiled = OnnxRuntimeBackend().compile(model, CompileOptions(get_target("cpu"), "fp32", threads=threads),
                                            folder)
    inputs, outputs = model_io_specs(model)
    write_manifest(folder, Manifest("cpu", "onnxruntime", compiled.runtime_version, "CPU", "fp32", compiled.entry,
                                    inputs, outputs, details=compiled.details))
    return load_artifact(folder)


@pytest.fixture
def scratch(tmp_path, monkeypatch):
    """The temporary folder and working directory profiling sees, to check that it leaves no file behind."""
    temporary, working = tmp_path / "tmp", tmp_path / "cwd"
    temporary.mkdir()
    working.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(temporary))
    monkeypatch.chdir(working)
    return temporary, working


def test_kernels_ort_ran_are_ranked_with_their_calls_per_inference(tmp_path, scratch):
    artifact = _artifact(_tiny_model(), tmp_path / "artifact")
    times = OnnxRuntimeBackend().profile_operators(artifact, _feeds(), runs=5)
    by_type = {time.op_type: time for time in times}
    assert set(by_type) <= {*CONV_KERNELS, *LAYOUT_KERNELS, "MatMul", "Softmax"}
    assert "Relu" not in by_type  # fused into the convolution, not a kernel of its own
    convolutions = [by_type[name] for name in CONV_KERNELS if name in by_type]
    assert len(convolutions) == 1 and convolutions[0].calls == 1
    assert by_type["MatMul"].calls == 1 and by_type["Softmax"].calls == 1
    assert all(time.total_ms > 0 for time in times)
    assert sum(time.percent for time in times) == pytest.approx(100.0)
    assert [time.total_ms for time in times] == sorted((time.total_ms for time in times), reverse=True)
    assert not any(path for folder in scratch for path in folder.iterdir())


def test_a_model_that_fails_to_run_is_named_and_leaves_no_profile(tmp_path, scratch):
    artifact = _artifact(_tiny_model(), tmp_path / "artifact")
    with pytest.raises(ModelRunError, match="cannot run the optimized model"):
        OnnxRuntimeBackend().profile_operators(artifact, {"x": np.zeros((1, 5, 16, 16), np.float32)})
    assert not any(path for folder in scratch for path in folder.iterdir())


def _kernel(op_type, ts, dur):
    return {"cat": "Node", "name": f"{op_type}_{ts}_kernel_time", "ts": ts, "dur": dur,
            "args": {"op_name": op_type}}


def _run(ts, dur):
    return {"cat": "Session", "name": "model_run", "ts": ts, "dur": dur}


def test_warm_up_runs_and_control_flow_nodes_are_left_out():
    trace = [
        _run(0, 100), _kernel("Conv", 10, 90),  # the warm-up: slow, not counted
        _run(200, 40), _kernel("If", 201, 30), _kernel("Conv", 202, 20), _kernel("Add", 225, 5),
        # An If's time contains its body's kernels, listed on their own: it would count them twice.
        _run(300, 40), _kernel("If", 301, 30), _kernel("Conv", 302, 20), _kernel("Add", 325, 5),
        _kernel("Add", 330, 5),  # the second run's body ran Add twice
    ]
    times = operator_times(trace, warmup_runs=1)
    assert [(time.op_type, time.total_ms, time.calls) for time in times] == [("Conv", 0.02, 1), ("Add", 0.0075, 2)]
    assert [round(time.percent, 2) for time in times] == [72.73, 27.27]
    assert operator_times({"traceEvents": trace}, warmup_runs=1) == times  # the other form of Chrome trace
    assert operator_times(trace[:2], warmup_runs=1) == []


def _zoo(path_function):
    from optimizer.benchmarks import zoo

    try:
        return path_function(zoo)
    except zoo.ZooUnavailable as error:
        pytest.skip(str(error))


@pytest.mark.zoo
@pytest.mark.slow
def test_yolov8n_spends_most_time_in_convolutions(tmp_path, scratch):
    from optimizer.ir import load_model

    path, feeds = _zoo(lambda zoo: (zoo.yolov8n_path(), zoo.yolov8n_inputs(320)))
    artifact = _artifact(load_model(path), tmp_path / "artifact", threads=2)
    times = OnnxRuntimeBackend().profile_operators(artifact, feeds, runs=5)
    assert times[0].op_type == "Conv" and times[0].percent > 40
    assert times[0].calls == 64  # every convolution of yolov8n, each with its SiLU fused in or beside it
    assert sum(time.percent for time in times) == pytest.approx(100.0)
    assert not any(path for folder in scratch for path in folder.iterdir())
