"""OpenVINO's performance counters as hwopt reads them: a tiny model built here, then yolov8n from zoo.md
(marked zoo)."""

import numpy as np
import pytest
from optimizer.backends.base import CompileOptions
from optimizer.backends.openvino import OpenVINOBackend
from optimizer.backends.openvino.runtime import usable_in_this_process

from optimizer.artifact import Manifest, load_artifact, model_io_specs, write_manifest
from optimizer.errors import ModelRunError
from optimizer.ir import infer_shapes
from optimizer.targets.profiles import TargetProfile
from optimizer.testing import model_from_text

# The backend imports OpenVINO only when used, so the imports above work without the extra.
pytest.importorskip("openvino")
pytestmark = pytest.mark.skipif(not usable_in_this_process(),
                                reason="OpenVINO was started in a parent process of this forked one")

CPU = TargetProfile(name="openvino-cpu-test", description="an x86 CPU", family="intel", device_type="cpu",
                    runtime="openvino", pipeline="portable", precisions=("fp32", "bf16", "int8"))

TINY = """
<ir_version: 9, opset_import: ["" : 17]>
g (float[1, 3, 16, 16] x) => (float[1, 8, 16, 16] y) {
    c = Conv <pads = [1, 1, 1, 1]> (x, w, b)
    r = Relu (c)
    m = MatMul (r, k)
    y = Softmax <axis = -1> (m)
}
"""


def _tiny_model():
    rng = np.random.default_rng(0)
    model = model_from_text(TINY, w=rng.standard_normal((8, 3, 3, 3)).astype(np.float32),
                            b=rng.standard_normal(8).astype(np.float32),
                            k=rng.standard_normal((16, 16)).astype(np.float32))
    infer_shapes(model)
    return model


def _feeds():
    return {"x": np.random.default_rng(1).standard_normal((1, 3, 16, 16)).astype(np.float32)}


def _artifact(model, folder, precision="fp32", threads=1):
    """Compile `model` and write the manifest the way hwopt's build does; the artifact as load_artifact reads it."""
    compiled = OpenVINOBackend().compile(model, CompileOptions(CPU, precision, threads=threads), folder)
    inputs, outputs = model_io_specs(model)
    write_manifest(folder, Manifest(CPU.name, "openvino", compiled.runtime_version, compiled.device, precision,
                                    compiled.entry, inputs, outputs, details=compiled.details,
                                    runs_here=compiled.runs_here))
    return load_artifact(folder)


def test_executed_nodes_are_ranked_with_their_calls_per_inference(tmp_path):
    artifact = _artifact(_tiny_model(), tmp_path / "artifact")
    times = OpenVINOBackend().profile_operators(artifact, _feeds(), runs=5)
    by_type = {time.op_type: time for time in times}
    # The plugin's node types: the Relu runs inside the Convolution (listed NOT_RUN, so not here), a MatMul on
    # weights runs as FullyConnected, and graph inputs and outputs are no operators.
    assert {"Convolution", "Softmax"} <= set(by_type) and {"FullyConnected", "MatMul"} & set(by_type)
    assert not {"Relu", "Parameter", "Result", "Constant"} & set(by_type)
    assert by_type["Convolution"].calls == 1 and by_type["Softmax"].calls == 1
    assert sum(time.percent for time in times) == pytest.approx(100.0)
    assert [time.total_ms for time in times] == sorted((time.total_ms for time in times), reverse=True)
    assert by_type["Convolution"].total_ms > 0


def test_a_model_that_fails_to_run_is_named(tmp_path):
    artifact = _artifact(_tiny_model(), tmp_path / "artifact")
    with pytest.raises(ModelRunError, match="cannot run the optimized model"):
        OpenVINOBackend().profile_operators(artifact, {"x": np.zeros((1, 5, 16, 16), np.float32)})


def _zoo(path_function):
    from optimizer.benchmarks import zoo

    try:
        return path_function(zoo)
    except zoo.ZooUnavailable as error:
        pytest.skip(str(error))


@pytest.mark.zoo
@pytest.mark.slow
def test_yolov8n_spends_most_time_in_convolutions(tmp_path):
    from optimizer.ir import load_model

    path, feeds = _zoo(lambda zoo: (zoo.yolov8n_path(), zoo.yolov8n_inputs(320)))
    artifact = _artifact(load_model(path), tmp_path / "artifact", threads=2)
    times = OpenVINOBackend().profile_operators(artifact, feeds, runs=5)
    assert times[0].op_type == "Convolution" and times[0].percent > 40
    assert times[0].calls == 64  # every convolution of yolov8n, its SiLU fused in
    assert sum(time.percent for time in times) == pytest.approx(100.0)
