import numpy as np
from optimizer.backends.base import CompileOptions
from optimizer.backends.onnxruntime import OnnxRuntimeBackend

from optimizer.artifact import Manifest, load_artifact, model_io_specs, write_manifest
from optimizer.examples.make_demo_model import build_demo_model
from optimizer.ir import load_model, save_model
from optimizer.targets import get_target
from optimizer.verify import cosine, run_reference


def test_compile_writes_the_portable_model_and_orts_optimized_graph_that_load_runs(tmp_path):
    backend = OnnxRuntimeBackend()
    original = tmp_path / "original.onnx"
    save_model(build_demo_model(), original)
    ir_model = load_model(original)
    compiled = backend.compile(ir_model, CompileOptions(get_target("cpu"), "fp32", threads=1), tmp_path / "a")
    assert compiled.entry == "model.ort.onnx" and compiled.details["offline_optimization"] == "extended"
    inputs, outputs = model_io_specs(ir_model)
    write_manifest(tmp_path / "a", Manifest("cpu", "onnxruntime", compiled.runtime_version, "CPU", "fp32",
                                            compiled.entry, inputs, outputs, details=compiled.details))
    session = backend.load(load_artifact(tmp_path / "a"))
    feeds = {"image": np.random.default_rng(0).standard_normal((1, 3, 128, 128), dtype=np.float32)}
    expected = run_reference(original, feeds, label="original")
    actual = session.run(feeds)
    assert list(actual) == list(expected)
    assert all(cosine(expected[name], actual[name]) > 0.9999 for name in expected)


def test_capabilities_name_the_runtime_and_its_precisions():
    capabilities = OnnxRuntimeBackend().capabilities()
    assert capabilities.runtime == "onnxruntime" and capabilities.runs_here
    assert {"fp32", "int8", "int4"} <= set(capabilities.precisions)
