"""The LiteRT backend: compile, load and run tiny models; optimize for the edge targets end to end; pre-flight
names every node the writer cannot express; NHWC and integer I/O; the real models on rpi5."""

import json

import numpy as np
import pytest

import optimizer
from optimizer import ir as hir
from optimizer.artifact import Manifest, load_artifact, model_io_specs, write_manifest
from optimizer.backends.base import CompileOptions
from optimizer.errors import UsageError
from optimizer.preflight import PreflightError
from optimizer.quantization.options import QuantizationOptions
from optimizer.targets import get_target
from optimizer.testing import model_from_text, run

pytest.importorskip("ai_edge_litert.interpreter", reason="ai-edge-litert is not installed")

from optimizer.backends.litert import LiteRTBackend, LiteRTSession
from optimizer.backends.litert.ops import CONVERTERS
from optimizer.backends.litert.session import dequantize, quantize

RNG = np.random.default_rng(0)
RPI5 = get_target("rpi5")
CONV_TEXT = """
    <ir_version: 9, opset_import: ["" : 17]>
    g (float[1, 3, 16, 16] x) => (float[1, 8, 8, 8] y) {
        a = Conv <pads = [1, 1, 1, 1], strides = [2, 2]> (x, w)
        y = Relu(a)
    }"""


def conv_model():
    return model_from_text(CONV_TEXT, w=RNG.standard_normal((8, 3, 3, 3)).astype(np.float32))


def compile_artifact(model, folder, **options):
    """The backend alone: compile into `folder`, then a manifest as optimize writes it."""
    backend = LiteRTBackend()
    compiled = backend.compile(model, CompileOptions(RPI5, options.pop("precision", "fp32"), threads=2, **options),
                               folder)
    inputs, outputs = model_io_specs(model)
    return write_manifest(folder, Manifest(
        target="rpi5", runtime="tflite", runtime_version=compiled.runtime_version, device=compiled.device,
        precision="fp32", entry=compiled.entry, inputs=compiled.inputs or inputs, outputs=compiled.outputs or outputs,
        details=compiled.details))


def test_a_conv_model_compiles_loads_and_matches_onnxruntime(tmp_path):
    model = conv_model()
    feeds = {"x": RNG.standard_normal((1, 3, 16, 16)).astype(np.float32)}
    expected = run(model, feeds)["y"]
    artifact = compile_artifact(model, tmp_path)
    assert sorted(artifact.manifest.files) == ["model.onnx", "model.tflite"]
    assert artifact.manifest.entry == "model.tflite" and artifact.manifest.inputs[0].shape == [1, 3, 16, 16]
    details = artifact.manifest.details
    assert details["operators"]["CONV_2D"] == 1 and details["xnnpack"]["not_delegated"] == {}
    session = LiteRTBackend().load(load_artifact(tmp_path), threads=2)
    assert session.output_names == ["y"] and session.threads == 2
    np.testing.assert_allclose(session.run(feeds)["y"], expected, rtol=1e-4, atol=1e-5)
    assert set(session.run_raw(feeds)) == {"y"}


@pytest.mark.skipif("MatMul" not in CONVERTERS, reason="the TFLite writer has no MatMul converter yet")
def test_a_matmul_model_compiles_loads_and_matches_onnxruntime(tmp_path):
    model = model_from_text("""
        <ir_version: 9, opset_import: ["" : 17]>
        g (float[2, 16] x) => (float[2, 8] y) {
            m = MatMul(x, w)
            y = Add(m, b)
        }""", w=RNG.standard_normal((16, 8)).astype(np.float32), b=RNG.standard_normal(8).astype(np.float32))
    feeds = {"x": RNG.standard_normal((2, 16)).astype(np.float32)}
    expected = run(model, feeds)["y"]
    artifact = compile_artifact(model, tmp_path)
    session = LiteRTBackend().load(artifact)
    np.testing.assert_allclose(session.run(feeds)["y"], expected, rtol=1e-4, atol=1e-5)


def test_a_session_names_what_it_cannot_run(tmp_path):
    artifact = compile_artifact(conv_model(), tmp_path)
    session = LiteRTBackend().load(artifact)
    with pytest.raises(optimizer.errors.ModelRunError, match="LiteRT cannot run the optimized model: no value "
                       "for input"):
        session.run({})
    with pytest.raises(optimizer.errors.ModelRunError, match="LiteRT cannot run"):
        session.run({"x": np.zeros((1, 3, 16, 16), np.float64)})
    with pytest.raises(optimizer.errors.ModelRunError, match="LiteRT cannot load"):
        LiteRTSession(b"not a flatbuffer", label="model")


def test_optimize_for_rpi5_writes_a_verified_tflite_artifact(tmp_path):
    hir.save_model(conv_model(), tmp_path / "conv.onnx")
    out = tmp_path / "out"
    result = optimizer.optimize(tmp_path / "conv.onnx", target="rpi5", output_dir=out, threads=2)
    artifact = load_artifact(out)  # every file with its checksum
    assert artifact.manifest.runtime == "tflite" and artifact.manifest.entry == "model.tflite"
    assert result.verification.passed and result.verification.worst_cosine >= 0.9999
    report = json.loads((out / "report.json").read_text())
    assert report["runtime"] == "tflite" and report["latency_optimized"]["median_ms"] > 0
    assert report["optimized"]["size_bytes"] == artifact.manifest.files["model.tflite"].bytes
    assert sorted(p.name for p in out.iterdir()) == ["manifest.json", "model.onnx", "model.tflite", "report.json"]


def test_nhwc_io_gives_the_artifact_channels_last_inputs_and_outputs(tmp_path):
    hir.save_model(conv_model(), tmp_path / "conv.onnx")
    out = tmp_path / "out"
    result = optimizer.optimize(tmp_path / "conv.onnx", target="rpi5", output_dir=out, threads=2,
                                io_layout="nhwc", benchmark=False)
    manifest = load_artifact(out).manifest
    assert manifest.inputs[0].shape == [1, 16, 16, 3] and manifest.outputs[0].shape == [1, 8, 8, 8]
    assert manifest.details["io_layout"] == "nhwc" and result.verification.passed
    # The artifact takes NHWC as it is, and gives what ONNX Runtime gives the original, transposed.
    feeds = {"x": RNG.standard_normal((1, 3, 16, 16)).astype(np.float32)}
    session = LiteRTBackend().load(result.artifact)
    nhwc = session.run({"x": np.ascontiguousarray(feeds["x"].transpose(0, 2, 3, 1))})["y"]
    expected = run(hir.load_model(tmp_path / "conv.onnx"), feeds)["y"]
    np.testing.assert_allclose(nhwc.transpose(0, 3, 1, 2), expected, rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(session.outputs_to_onnx(session.run(session.feeds_from_onnx(feeds)))["y"],
                               expected, rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("precision", ["fp16", "int8-dynamic"])
def test_float_io_precisions_are_lowered_by_the_backend_and_verified(precision, tmp_path):
    pytest.importorskip("optimizer.backends.litert.precision", reason="the LiteRT precision passes are not here")
    hir.save_model(conv_model(), tmp_path / "conv.onnx")
    result = optimizer.optimize(tmp_path / "conv.onnx", target="rpi5", precision=precision, threads=2,
                                output_dir=tmp_path / "out", benchmark=False)
    manifest = load_artifact(tmp_path / "out").manifest
    assert (manifest.runtime, manifest.precision) == ("tflite", precision) and result.verification.passed
    assert result.report.quantization is None  # no QDQ in the ONNX model: the .tflite itself is lowered
    assert any(note.startswith(precision) for note in manifest.details["notes"])


def test_precisions_and_options_litert_cannot_do_are_usage_errors(tmp_path):
    hir.save_model(conv_model(), tmp_path / "conv.onnx")
    with pytest.raises(UsageError, match="tflite writes fp32, fp16, int8-dynamic, int8, not bf16"):
        optimizer.optimize(tmp_path / "conv.onnx", target="rpi5", precision="bf16", output_dir=tmp_path / "a")
    with pytest.raises(UsageError, match="--exclude and --max-accuracy-drop are not supported"):
        optimizer.optimize(tmp_path / "conv.onnx", target="rpi5", output_dir=tmp_path / "b",
                           quantization=QuantizationOptions(precision="int8", exclude=("Conv",)))
    assert not any(tmp_path.glob("[ab]"))


def test_full_int8_with_uint8_nhwc_io_is_verified_through_the_tensors_own_scales(tmp_path):
    pytest.importorskip("optimizer.backends.litert.precision", reason="the LiteRT precision passes are not here")
    hir.save_model(conv_model(), tmp_path / "conv.onnx")
    calibration = [{"x": RNG.random((1, 3, 16, 16), dtype=np.float32)} for _ in range(4)]
    out = tmp_path / "out"
    result = optimizer.optimize(tmp_path / "conv.onnx", target="rpi5", output_dir=out, threads=2,
                                calibration=calibration, io_layout="nhwc", io_dtype="uint8", benchmark=False)
    manifest = load_artifact(out).manifest
    assert manifest.precision == "int8" and result.verification.passed
    assert (manifest.inputs[0].dtype, manifest.inputs[0].shape) == ("uint8", [1, 16, 16, 3])
    assert manifest.outputs[0].dtype == "uint8"
    assert set(manifest.details["io_quantization"]) == {"x", "y"}
    assert any("full-integer INT8" in note and "4 calibration sample(s)" in note
               for note in result.report.plan_notes)


def test_io_options_are_for_tflite_and_integer_io_needs_full_integer_int8(tmp_path):
    hir.save_model(conv_model(), tmp_path / "conv.onnx")
    with pytest.raises(UsageError, match="--io-layout apply to the tflite runtime.*cpu plans onnxruntime"):
        optimizer.optimize(tmp_path / "conv.onnx", target="cpu", io_layout="nhwc", output_dir=tmp_path / "a")
    with pytest.raises(UsageError, match="--io-dtype int8 .*needs full-integer INT8.*the precision is fp32"):
        optimizer.optimize(tmp_path / "conv.onnx", target="rpi5", io_dtype="int8", output_dir=tmp_path / "b")
    with pytest.raises(UsageError, match="unknown I/O layout 'nchw'"):
        optimizer.optimize(tmp_path / "conv.onnx", target="rpi5", io_layout="nchw", output_dir=tmp_path / "c")
    assert not any(tmp_path.glob("[abc]"))


def test_the_cli_takes_io_layout_for_tflite_only(tmp_path, capsys):
    from optimizer.cli import main

    hir.save_model(conv_model(), tmp_path / "conv.onnx")
    assert main([str(tmp_path / "conv.onnx"), "-o", str(tmp_path / "cpu"), "--io-layout", "nhwc", "-q"]) == 2
    assert "apply to the tflite runtime" in capsys.readouterr().err
    assert main([str(tmp_path / "conv.onnx"), "-t", "rpi5", "-o", str(tmp_path / "pi"), "--io-layout", "nhwc",
                 "--no-benchmark", "-q"]) == 0
    assert load_artifact(tmp_path / "pi").manifest.inputs[0].shape == [1, 16, 16, 3]


def test_preflight_names_every_node_it_cannot_convert_and_nothing_is_written(tmp_path):
    model = model_from_text("""
        <ir_version: 9, opset_import: ["" : 17]>
        g (float[1, 4, 8, 8] x, int64 n) => (float[1, 4, 8, 8] y, float[1, 4] z, float[1, 4] s) {
            c = MaxPool <kernel_shape = [3, 3], dilations = [2, 2], pads = [2, 2, 2, 2]> (x)
            y = Relu(c)
            p = GlobalAveragePool(x)
            f = Flatten(p)
            h = Hardmax(f)
            z = Relu(h)
            t = Constant <value = bool {1}> ()
            s = Loop (n, t, f) <body = body (int64 i, bool cond, float[1, 4] acc) => (bool cond_out,
                                                                                     float[1, 4] acc_out) {
                cond_out = Identity(cond)
                acc_out = Hardmax(acc)
            }>
        }""")
    for index, node in enumerate(model.graph):
        node.name = f"{node.op_type.lower()}_{index}"
    hir.save_model(model, tmp_path / "bad.onnx")
    with pytest.raises(PreflightError, match=r"cannot run 4 node\(s\)") as caught:
        optimizer.optimize(tmp_path / "bad.onnx", target="rpi5", output_dir=tmp_path / "out")
    assert [(issue.node, issue.op) for issue in caught.value.issues] == [
        ("maxpool_0", "MaxPool"), ("hardmax_4", "Hardmax"), ("loop_7", "Loop"), ("(unnamed)", "Hardmax")]
    problems = {issue.op + ": " + issue.problem for issue in caught.value.issues}
    assert "MaxPool: dilated pooling is not converted" in problems  # an attribute, beside the missing ops
    assert "Hardmax: no TFLite conversion for Hardmax" in problems
    assert any(p.startswith("Loop: control flow") for p in problems)
    assert any(p.startswith("Hardmax: inside loop_7/body") for p in problems)
    assert not (tmp_path / "out").exists()


def test_check_on_rpi5_lists_a_custom_op_and_writes_nothing(tmp_path, capsys):
    import onnx
    from onnx import TensorProto, helper

    from optimizer.cli import main

    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 4])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 4])
    nodes = [helper.make_node("Frobnicate", ["x"], ["h"], name="my_frob", domain="acme"),
             helper.make_node("Hardmax", ["h"], ["y"], name="my_hardmax")]
    model = helper.make_model(helper.make_graph(nodes, "g", [x], [y]),
                              opset_imports=[helper.make_opsetid("", 17), helper.make_opsetid("acme", 1)])
    onnx.save(model, tmp_path / "custom.onnx")
    assert main(["check", str(tmp_path / "custom.onnx"), "--target", "rpi5"]) == 1
    printed = capsys.readouterr().out
    assert "tflite: cannot compile" in printed and "my_frob" in printed and "acme::Frobnicate" in printed
    assert sorted(p.name for p in tmp_path.iterdir()) == ["custom.onnx"]


def test_preflight_names_inputs_without_static_shapes():
    model = model_from_text("""
        <ir_version: 9, opset_import: ["" : 17]>
        g (float[N, 4] x) => (float[N, 4] y) { y = Relu(x) }""")
    issues = LiteRTBackend().preflight(model, RPI5, "fp32")
    assert [(i.node, i.op) for i in issues] == [("x", "graph input")] and "--shape x=" in issues[0].problem


def test_quantize_and_dequantize_use_the_tensor_scale_and_zero_point():
    detail = {"dtype": np.int8, "quantization": (0.5, -3)}
    values = np.array([-100.0, -1.0, 0.0, 0.74, 100.0], np.float32)
    quantized = quantize(values, detail)
    assert quantized.dtype == np.int8 and quantized.tolist() == [-128, -5, -3, -2, 127]
    np.testing.assert_allclose(dequantize(quantized, detail), [-62.5, -1.0, 0.0, 0.5, 65.0])
    float_detail = {"dtype": np.float32, "quantization": (0.0, 0)}
    assert quantize(values, float_detail) is values and dequantize(values, float_detail) is values


@pytest.mark.zoo
def test_silero_vad_on_rpi5_gets_a_preflight_error_naming_the_if_nodes(tmp_path):
    from optimizer.benchmarks.real_models import fetch

    path, feeds, _ = fetch("silero-vad")
    shapes = {name: array.shape for name, array in feeds.items() if array.ndim}
    with pytest.raises(PreflightError, match=r"If_0 \(If\): control flow") as caught:
        optimizer.optimize(path, target="rpi5", shapes=shapes, inputs=feeds, output_dir=tmp_path / "out")
    issues = caught.value.issues
    assert all(issue.node and issue.runtime == "tflite" for issue in issues)
    assert next(issue.node for issue in issues if issue.op == "If") == "If_0"
    assert any(issue.op == "LSTM" for issue in issues)  # what the branches hold is named too
    assert not (tmp_path / "out").exists()


@pytest.mark.zoo
@pytest.mark.slow
def test_yolov8n_on_rpi5_is_verified_in_litert_and_timed_next_to_onnxruntime(tmp_path, capsys):
    from optimizer.benchmarks.real_models import fetch
    from optimizer.cli import main

    path, _, _ = fetch("yolov8n")
    out = tmp_path / "out"
    assert main([str(path), "--target", "rpi5", "--shape", "images=1x3x320x320", "-o", str(out),
                 "--threads", "2"]) == 0
    printed = capsys.readouterr().out
    report = json.loads((out / "report.json").read_text())
    manifest = load_artifact(out).manifest
    assert manifest.runtime == "tflite" and report["verification"]["passed"]
    assert report["verification"]["outputs"][0]["cosine"] >= 0.9999
    assert "timed in" in printed and "tflite" in printed and "latency, median ms" in printed
    litert_ms, ort_ms = report["latency_optimized"]["median_ms"], report["latency_original"]["median_ms"]
    with capsys.disabled():
        print(f"\nyolov8n rpi5 fp32, 2 threads on this host: LiteRT (XNNPACK) {litert_ms:.2f} ms, ONNX Runtime "
              f"{ort_ms:.2f} ms on the original; model.tflite {report['optimized']['size_bytes'] / 1e6:.1f} MB; "
              f"XNNPACK left {manifest.details['xnnpack']['not_delegated']}")
