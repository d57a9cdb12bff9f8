"""The TensorRT bundle `compile` writes, on a machine without TensorRT: its files, build settings, trtexec
commands and README, and build_engine.py as a script that compiles and answers --help without TensorRT."""

import ast
import json
import os
import py_compile
import subprocess
import sys

import numpy as np
import pytest
from optimizer.backends.registry import get_backend
from optimizer.backends.tensorrt import TensorRTBackend
from optimizer.backends.tensorrt.backend import BATCH_RANGE, LENGTH_RANGE, precision_flags

from optimizer.artifact import load_artifact
from optimizer.errors import RuntimeNotAvailableError, UsageError
from optimizer.testing import model_from_text

BUNDLE_FILES = {"model.onnx", "build_config.json", "build_engine.py", "trtexec.sh", "README.md", "manifest.json"}
CONV_NET = """
<ir_version: 9, opset_import: ["" : 17]>
g (float[1, 3, 32, 32] x) => (float[1, 4, 16, 16] y) {
    a = Conv <pads = [1, 1, 1, 1]> (x, w1, b1)
    r = Relu (a)
    c = Conv <pads = [1, 1, 1, 1], strides = [2, 2]> (r, w2, b2)
    s = Relu (c)
    y = Conv (s, w3, b3)
}
"""
TEXT_NET = """
<ir_version: 9, opset_import: ["" : 17]>
g (int64[batch, sequence] ids, int64[batch, sequence] mask) => (float[batch, sequence, 8] y) {
    e = Gather (table, ids)
    m = Cast <to = 1> (mask)
    u = Unsqueeze (m, axis)
    y = Mul (e, u)
}
"""


@pytest.fixture
def conv_net():
    rng = np.random.default_rng(0)
    return model_from_text(
        CONV_NET,
        w1=rng.standard_normal((8, 3, 3, 3)).astype(np.float32), b1=np.zeros(8, np.float32),
        w2=rng.standard_normal((16, 8, 3, 3)).astype(np.float32), b2=np.zeros(16, np.float32),
        w3=rng.standard_normal((4, 16, 1, 1)).astype(np.float32), b3=np.zeros(4, np.float32),
    )


@pytest.fixture
def text_net():
    return model_from_text(TEXT_NET, table=np.ones((100, 8), np.float32), axis=np.array([2], np.int64))


def test_the_registry_finds_the_backend_and_it_says_what_it_is():
    backend = get_backend("tensorrt")
    assert isinstance(backend, TensorRTBackend)
    capabilities = backend.capabilities()
    assert capabilities.runtime == "tensorrt" and capabilities.extra == "tensorrt"
    assert {"fp16", "int8"} <= set(capabilities.precisions)
    if capabilities.version is None:
        assert not capabilities.runs_here


def test_compile_writes_a_complete_bundle(conv_net, make_bundle, t4):
    artifact = make_bundle(conv_net, t4, "fp32")
    folder = artifact.folder
    assert {path.name for path in folder.iterdir()} == BUNDLE_FILES
    assert artifact.manifest.entry == "model.onnx"
    assert load_artifact(folder).manifest.files.keys() == BUNDLE_FILES - {"manifest.json"}
    assert os.access(folder / "trtexec.sh", os.X_OK) and os.access(folder / "build_engine.py", os.X_OK)
    syntax = subprocess.run(["sh", "-n", str(folder / "trtexec.sh")], check=False, capture_output=True, text=True)
    assert syntax.returncode == 0, syntax.stderr
    config = json.loads((folder / "build_config.json").read_text())
    assert config["profile"] == {} and config["precision_flags"] == [] and config["dla_core"] is None
    details = artifact.manifest.details
    assert details["trtexec"]["11.x"] == ("trtexec --onnx=model.onnx --saveEngine=model.engine "
                                          "--timingCacheFile=timing.cache")
    assert artifact.manifest.device == "GPU (sm 7.5)"
    assert artifact.manifest.runs_here == TensorRTBackend().capabilities().runs_here
    readme = (folder / "README.md").read_text()
    assert "$" not in readme.replace("$(", "")  # every placeholder filled
    assert "python3 build_engine.py" in readme and "Every input is static" in readme
    assert "t4-test has no DLA" in readme


def test_fp16_onnx_gets_the_tensorrt_10_flag(conv_net, make_bundle, quantize, t4, tmp_path):
    fp16 = quantize(conv_net, "fp16")
    assert precision_flags(fp16) == ["FP16"]
    artifact = make_bundle(fp16, t4, "fp16")
    assert artifact.manifest.details["trtexec"]["10.x"].endswith("--fp16")
    assert "--fp16" not in artifact.manifest.details["trtexec"]["11.x"]
    fake = tmp_path / "trtexec"
    fake.write_text('#!/bin/sh\necho "$@"\n')
    fake.chmod(0o755)
    for major, flags in (("10", " --fp16 --verbose"), ("11", " --verbose")):
        shown = subprocess.run([str(artifact.folder / "trtexec.sh"), "--verbose"], check=True, capture_output=True,
                               text=True, env={**os.environ, "TRTEXEC": str(fake), "TENSORRT_MAJOR": major})
        assert shown.stdout == ("--onnx=model.onnx --saveEngine=model.engine --timingCacheFile=timing.cache"
                                + flags + "\n")


def test_int8_qdq_gets_the_int8_flag(conv_net, quantize):
    int8 = quantize(conv_net, "int8", {"x": (1, 3, 32, 32)})
    assert {node.op_type for node in int8.graph} >= {"QuantizeLinear", "DequantizeLinear"}
    assert precision_flags(int8) == ["INT8"]


def test_dynamic_inputs_get_a_default_profile_that_says_so(text_net, make_bundle, t4):
    artifact = make_bundle(text_net, t4)
    config = json.loads((artifact.folder / "build_config.json").read_text())
    low, best, high = zip(BATCH_RANGE, LENGTH_RANGE)
    expected = {"min": list(low), "opt": list(best), "max": list(high), "source": "default"}
    assert config["profile"] == {"ids": expected, "mask": expected}  # named dims share their range
    command = artifact.manifest.details["trtexec"]["10.x"]
    assert "--minShapes=ids:1x1,mask:1x1" in command and "--maxShapes=ids:8x512,mask:8x512" in command
    readme = (artifact.folder / "README.md").read_text()
    assert "hwopt default: check it" in readme and "--shape NAME=MIN:OPT:MAX" in readme


def test_given_shape_ranges_are_used_and_checked(text_net, make_bundle, t4):
    ranges = {"ids": ((1, 16), (2, 64), (4, 128)), "mask": ((1, 16), (2, 64), (4, 128))}
    artifact = make_bundle(text_net, t4, shape_ranges=ranges)
    profile = json.loads((artifact.folder / "build_config.json").read_text())["profile"]
    assert profile["ids"] == {"min": [1, 16], "opt": [2, 64], "max": [4, 128], "source": "given"}
    with pytest.raises(UsageError, match="rank 3"):
        make_bundle(text_net, t4, name="bad", shape_ranges={"ids": ((1, 1, 1),) * 3})


def test_a_dla_device_puts_the_dla_core_in_every_command(conv_net, make_bundle, quantize, orin):
    artifact = make_bundle(quantize(conv_net, "fp16"), orin, "fp16", device="DLA1")
    config = json.loads((artifact.folder / "build_config.json").read_text())
    assert config["dla_core"] == 1
    assert "--useDLACore=1 --allowGPUFallback" in artifact.manifest.details["trtexec"]["10.x"]
    assert artifact.manifest.device == "DLA core 1 with GPU (sm 8.7) fallback"
    # Conv and Relu run on the DLA; the float32 <-> float16 Casts at the model's edges are GPU layers.
    fallbacks = artifact.manifest.details["dla_gpu_fallback"]
    assert [f.split(":")[0] for f in fallbacks] == ["x_fp16 (Cast)", "y_fp32 (Cast)"]
    assert "python3 build_engine.py --dla-core 1" in (artifact.folder / "README.md").read_text()
    with pytest.raises(UsageError, match="DLA cores 0 to 1"):
        make_bundle(conv_net, orin, "fp16", name="bad", device="DLA2")


def test_the_readme_lists_the_nodes_that_fall_back_from_dla(make_bundle, orin):
    model = model_from_text("""
        <ir_version: 9, opset_import: ["" : 17]>
        g (float[1, 8] x) => (float[1, 8] y) {
            e = Erf (x)
            y = Relu (e)
        }
        """)
    model.graph.node(0).name = "erf"
    artifact = make_bundle(model, orin, "fp16")
    assert artifact.manifest.details["dla_gpu_fallback"] == ["erf (Erf): DLA has no Erf layer"]
    assert "| `erf` | Erf | DLA has no Erf layer |" in (artifact.folder / "README.md").read_text()


def test_build_engine_script_compiles_and_helps_without_tensorrt(conv_net, make_bundle, t4):
    script = make_bundle(conv_net, t4).folder / "build_engine.py"
    py_compile.compile(str(script), doraise=True)
    ast.parse(script.read_text(), feature_version=(3, 8))  # JetPack 5's Python runs it too
    environment = {**os.environ, "PYTHONPATH": ""}
    shown = subprocess.run([sys.executable, str(script), "--help"], check=False, capture_output=True, text=True,
                           env=environment, cwd=script.parent, timeout=60)
    assert shown.returncode == 0, shown.stderr
    assert "--dla-core" in shown.stdout and "--benchmark" in shown.stdout and "11.x" in shown.stdout
    if TensorRTBackend().capabilities().version is None:
        built = subprocess.run([sys.executable, str(script)], check=False, capture_output=True, text=True,
                               env=environment, cwd=script.parent, timeout=60)
        assert built.returncode == 1
        assert "TensorRT's Python package is not installed" in built.stderr


def test_load_without_tensorrt_says_to_build_on_the_device(conv_net, make_bundle, t4):
    backend = TensorRTBackend()
    if backend.capabilities().runs_here:
        pytest.skip("TensorRT and a GPU are here: load builds the engine")
    artifact = make_bundle(conv_net, t4)
    with pytest.raises(RuntimeNotAvailableError, match="build it there with build_engine.py"):
        backend.load(artifact)
