"""The ONNX of a TensorRT bundle parses and builds: proved with TensorRT-RTX, which shares TensorRT's ONNX
parser and builds strongly typed networks without a GPU (see backends/tensorrt/rtx_check.py).

Also runs the bundle's own build_engine.py code on TensorRT-RTX: its Python API is TensorRT 11's (strong
typing only, no precision flags), so this exercises the script's 11.x path for real."""

import json
import os
import subprocess
import sys

import numpy as np
import pytest

from optimizer.testing import model_from_text

tensorrt_rtx = pytest.importorskip(
    "tensorrt_rtx", reason="TensorRT-RTX is not installed (pip install tensorrt-rtx-cu12; builds need no GPU)")

from optimizer.backends.tensorrt.rtx_check import check_bundle, check_onnx, rtx_compute_capability
from optimizer.backends.tensorrt.templates import build_engine

# build_engine.py keeps a timing cache, which TensorRT-RTX accepts but ignores (and says so).
pytestmark = pytest.mark.filterwarnings(
    "ignore:.*Timing cache operations are no-ops in TensorRT-RTX:DeprecationWarning")

CONV_NET = """
<ir_version: 9, opset_import: ["" : 17]>
g (float[1, 3, 32, 32] x) => (float[1, 4, 16, 16] y) {
    a = Conv <pads = [1, 1, 1, 1]> (x, w1, b1)
    r = Relu (a)
    c = Conv <pads = [1, 1, 1, 1], strides = [2, 2]> (r, w2, b2)
    s = Sigmoid (c)
    m = Mul (c, s)
    y = Conv (m, w3, b3)
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


@pytest.mark.parametrize("precision", ["fp32", "fp16", "int8"])
def test_a_conv_bundle_parses_and_builds(precision, conv_net, make_bundle, quantize, t4):
    model = quantize(conv_net, precision, {"x": (1, 3, 32, 32)})
    if precision == "int8":
        qdq = [node for node in model.graph if node.op_type in ("QuantizeLinear", "DequantizeLinear")]
        assert qdq and all(not node.inputs[2].const_value.numpy().any() for node in qdq)  # symmetric
    result = check_bundle(make_bundle(model, t4, precision).folder)
    assert result.ok, str(result)
    assert result.compute_capability == "7.5" and result.plan_bytes > 0


def test_a_dynamic_bundle_builds_with_its_default_profile(make_bundle, t4):
    model = model_from_text("""
        <ir_version: 9, opset_import: ["" : 17]>
        g (int64[batch, sequence] ids) => (float[batch, sequence, 8] y) {
            e = Gather (table, ids)
            y = Relu (e)
        }
        """, table=np.ones((100, 8), np.float32))
    result = check_bundle(make_bundle(model, t4).folder)
    assert result.ok, str(result)
    without = check_onnx(make_bundle(model, t4, name="again").folder / "model.onnx")
    assert without.problems == ["input 'ids' (-1, -1) is dynamic and has no shape range"]


def test_a_parse_error_names_the_node(make_bundle, t4):
    model = model_from_text("""
        <ir_version: 9, opset_import: ["" : 17]>
        g (float[3, 3] x) => (float y) { y = Det (x) }
        """)
    model.graph.node(0).name = "determinant"
    result = check_bundle(make_bundle(model, t4).folder)
    assert not result.parsed
    assert result.problems[0].startswith("determinant (Det)")


def test_preflight_knows_the_restriction_rtx_found_in_float_mod(make_bundle, t4):
    """The parser table lists Mod for floats; the parser takes a float Mod only with fmod=1."""
    from optimizer.backends.tensorrt import TensorRTBackend

    text = """
        <ir_version: 9, opset_import: ["" : 17]>
        g (float[2, 3] x) => (float[2, 3] y) { y = Mod <fmod = FMOD> (x, x) }
        """
    for fmod, parses in ((0, False), (1, True)):
        model = model_from_text(text.replace("FMOD", str(fmod)))
        model.graph.node(0).name = "modulo"
        issues = TensorRTBackend().preflight(model, t4, "fp32")
        assert [i.node for i in issues] == ([] if parses else ["modulo"])
        result = check_bundle(make_bundle(model, t4, name=f"fmod{fmod}").folder)
        assert result.parsed == parses, str(result)


def test_build_engine_script_builds_on_the_strongly_typed_api(conv_net, make_bundle, quantize, t4, tmp_path):
    folder = make_bundle(quantize(conv_net, "fp16"), t4, "fp16").folder
    config = build_engine.read_config(folder / "build_config.json")
    assert config["precision_flags"] == ["FP16"]
    cache = tmp_path / "timing.cache"
    result = build_engine.build_engine(folder / "model.onnx", tmp_path / "model.engine", profile=config["profile"],
                                       precision_flags=config["precision_flags"], timing_cache=cache,
                                       trt=tensorrt_rtx)
    # RTX, like TensorRT 11, has no weak typing: the script notices and builds strongly typed, flags unset.
    assert result.strongly_typed and result.precision_flags == []
    assert "always strongly typed" in result.notes[0]
    assert (tmp_path / "model.engine").stat().st_size > 0 and cache.is_file()


def test_build_engine_script_reports_parser_errors_by_node(tmp_path):
    path = tmp_path / "model.onnx"
    path.write_bytes(_det_model_bytes())
    with pytest.raises(build_engine.BuildError, match=r"cannot parse model.onnx: det \(Det\)"):
        build_engine.build_engine(path, tmp_path / "model.engine", trt=tensorrt_rtx)
    assert not (tmp_path / "model.engine").exists()


def test_build_engine_script_asks_for_a_range_of_a_dynamic_input(tmp_path, make_bundle, t4):
    model = model_from_text("""
        <ir_version: 9, opset_import: ["" : 17]>
        g (float[N, 4] x) => (float[N, 4] y) { y = Relu (x) }
        """)
    folder = make_bundle(model, t4).folder
    with pytest.raises(build_engine.BuildError, match=r"--shape x=MIN:OPT:MAX"):
        build_engine.build_engine(folder / "model.onnx", tmp_path / "e", profile={}, trt=tensorrt_rtx)
    name, shapes = build_engine.parse_shape_option("x=1x4:2x4:8x4")
    build_engine.build_engine(folder / "model.onnx", tmp_path / "e", profile={name: shapes}, trt=tensorrt_rtx)
    assert json.loads((folder / "build_config.json").read_text())["profile"]["x"]["max"] == [8, 4]


def test_compute_capabilities_map_to_the_nearest_rtx_target():
    assert rtx_compute_capability("8.6") == ("8.6", None)
    assert rtx_compute_capability("8.7")[0] == "8.6"  # Orin
    assert rtx_compute_capability("9.0")[0] == "8.9"  # H100
    assert rtx_compute_capability("7.2")[0] == "7.5"  # Xavier: older than any RTX target
    assert rtx_compute_capability(None) == ("8.0", None)


def _det_model_bytes():
    from optimizer.ir import model_to_bytes

    model = model_from_text("""
        <ir_version: 9, opset_import: ["" : 17]>
        g (float[3, 3] x) => (float y) { y = Det (x) }
        """)
    model.graph.node(0).name = "det"
    return model_to_bytes(model)


def test_the_bundle_script_builds_from_the_command_line(conv_net, make_bundle, quantize, t4, tmp_path):
    """build_engine.py as a user runs it on the device, with TensorRT-RTX standing in for `tensorrt`."""
    folder = make_bundle(quantize(conv_net, "fp16"), t4, "fp16").folder
    shim = tmp_path / "shim"
    shim.mkdir()
    (shim / "tensorrt.py").write_text("from tensorrt_rtx import *  # noqa: F403\n"
                                      "from tensorrt_rtx import __version__  # noqa: F401\n")
    environment = {**os.environ, "PYTHONPATH": str(shim)}

    def run(*arguments):
        return subprocess.run([sys.executable, str(folder / "build_engine.py"), *arguments], check=False,
                              capture_output=True, text=True, env=environment, cwd=tmp_path, timeout=120)

    built = run()
    assert built.returncode == 0, built.stderr
    assert f"TensorRT {tensorrt_rtx.__version__}; model.onnx (fp16)" in built.stdout
    assert "built model.engine" in built.stdout and "strongly typed" in built.stdout
    assert (folder / "model.engine").stat().st_size > 0
    no_dla = run("--dla-core", "0", "--engine", str(tmp_path / "dla.engine"))
    assert no_dla.returncode == 1 and "this device has no DLA" in no_dla.stderr


def test_load_builds_the_engine_outside_the_artifact(conv_net, make_bundle, t4, tmp_path, monkeypatch):
    """load() where TensorRT and a GPU seem present (TensorRT-RTX standing in): it builds the engine into the
    engine cache, not the artifact folder; here the engine cannot be opened without a GPU, which load reports
    as a ModelRunError naming the engine."""
    from optimizer.backends.tensorrt import TensorRTBackend, backend

    from optimizer.errors import ModelRunError

    monkeypatch.setattr(backend, "tensorrt_version", lambda: "rtx-" + tensorrt_rtx.__version__)
    monkeypatch.setattr(backend, "cuda_gpu_visible", lambda: True)
    monkeypatch.setattr(build_engine, "import_tensorrt", lambda: tensorrt_rtx)
    monkeypatch.setenv("HWOPT_TENSORRT_CACHE", str(tmp_path / "engines"))
    artifact = make_bundle(conv_net, t4)
    with pytest.raises(ModelRunError, match="cannot load this engine"):
        TensorRTBackend().load(artifact)
    [engine] = (tmp_path / "engines").glob("*/model.engine")
    assert engine.stat().st_size > 0
    assert {p.name for p in artifact.folder.iterdir()} == {*artifact.manifest.files, "manifest.json"}
