import json
import subprocess
import sys

import pytest

from optimizer.cli import main
from optimizer.examples.make_demo_model import build_demo_model
from optimizer.ir import save_model


@pytest.fixture
def demo_path(tmp_path):
    path = tmp_path / "demo.onnx"
    save_model(build_demo_model(), path)
    return path


def test_optimize_prints_the_table_and_writes_the_output(demo_path, tmp_path, capsys):
    out = tmp_path / "out"
    code = main([str(demo_path), "--target", "cpu", "-o", str(out), "--threads", "1"])
    printed = capsys.readouterr().out
    assert code == 0
    assert "latency, median ms" in printed and "PASS" in printed and "BatchNormalization" in printed
    assert (out / "model.onnx").is_file() and (out / "report.json").is_file()


def test_json_output_is_the_report(demo_path, tmp_path, capsys):
    code = main([str(demo_path), "-o", str(tmp_path / "o"), "--json", "--no-benchmark", "-O1"])
    assert code == 0
    report = json.loads(capsys.readouterr().out)
    assert report["opt_level"] == 1 and report["latency_original"] is None


@pytest.mark.parametrize(
    "argv, code, message",
    [
        (["missing.onnx"], 2, "no such file"),
        (["{demo}", "--target", "toaster"], 2, "unknown target 'toaster'"),
        (["{demo}", "--shape", "image=1x3xbad"], 2, "invalid --shape"),
        (["{demo}", "--shape", "nope=1x3x32x32"], 2, "unknown input"),
        (["{demo}", "-O", "9"], 2, "O0, O1, O2 or O3"),
        (["{demo}", "--threads", "0"], 2, "positive integer"),
        (["{demo}", "--frobnicate"], 2, "unrecognized arguments"),
        ([], 2, "the following arguments are required: model"),
        (["targets", "toaster"], 2, "unknown target"),
        (["{demo}", "--freeze-input", "rate"], 2, "invalid --freeze-input 'rate'"),
        (["{demo}", "--runtime", "tvm"], 2, "invalid choice: 'tvm'"),
        (["{demo}", "--target", "t4", "--precision", "bf16"], 2, "t4 does not compute bf16"),
    ],
)
def test_bad_usage_is_one_line_with_exit_code_2(demo_path, tmp_path, capsys, argv, code, message):
    argv = [a.replace("{demo}", str(demo_path)) for a in argv] + ["-o", str(tmp_path / "o")]
    if argv[0] == "targets":
        argv = argv[:2]
    assert main(argv) == code
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and err.startswith("optimize: error:") and message in err


def test_corrupt_model_fails_with_exit_code_1(tmp_path, capsys):
    bad = tmp_path / "bad.onnx"
    bad.write_bytes(b"\x08\x07\x12\x04junk" + bytes(100))
    assert main([str(bad), "-o", str(tmp_path / "o")]) == 1
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and str(bad) in err


def test_existing_output_without_force_is_refused(demo_path, tmp_path, capsys):
    out = tmp_path / "o"
    assert main([str(demo_path), "-o", str(out), "--no-benchmark", "-q"]) == 0
    assert main([str(demo_path), "-o", str(out), "--no-benchmark"]) == 2
    assert "--force" in capsys.readouterr().err
    assert main([str(demo_path), "-o", str(out), "--no-benchmark", "--force", "-q"]) == 0


def test_targets_lists_and_shows(capsys):
    assert main(["targets"]) == 0
    assert "cpu" in capsys.readouterr().out
    assert main(["targets", "host", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["name"] == "cpu"


def test_targets_lists_every_family_and_shows_one_in_full(capsys):
    assert main(["targets"]) == 0
    listing = capsys.readouterr().out
    for name in ("x86-64", "intel-npu", "t4", "h100", "jetson-orin-nano", "jetson-agx-orin", "rpi5", "android-arm64"):
        assert name in listing
    assert main(["targets", "jetson"]) == 0
    shown = capsys.readouterr().out
    assert "jetson-orin-nano" in shown and "sm 8.7" in shown


def test_check_names_the_node_and_exits_1_without_writing(tmp_path, capsys):
    import onnx
    from onnx import TensorProto, helper

    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 4])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 4])
    node = helper.make_node("Frobnicate", ["x"], ["y"], name="my_frob", domain="acme")
    model = helper.make_model(helper.make_graph([node], "g", [x], [y]),
                              opset_imports=[helper.make_opsetid("", 17), helper.make_opsetid("acme", 1)])
    onnx.save(model, tmp_path / "custom.onnx")
    assert main(["check", str(tmp_path / "custom.onnx"), "--runtime", "onnxruntime"]) == 1
    printed = capsys.readouterr().out
    assert "cannot compile" in printed and "my_frob" in printed and "acme::Frobnicate" in printed
    assert sorted(p.name for p in tmp_path.iterdir()) == ["custom.onnx"]


def test_check_of_a_clean_model_exits_0(demo_path, capsys):
    assert main(["check", str(demo_path), "--target", "t4", "--json"]) == 0
    found = json.loads(capsys.readouterr().out)
    assert found["ok"] and found["precision"] == "fp16" and "tensorrt" in found["issues"]


def test_console_script_runs_as_a_module(demo_path, tmp_path):
    done = subprocess.run(
        [sys.executable, "-m", "optimizer", str(demo_path), "-o", str(tmp_path / "o"), "--no-benchmark", "-q"],
        capture_output=True, text=True, timeout=120,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout == "" and done.stderr == ""


def test_int8_without_calibration_warns_loudly_and_reports_layers(demo_path, tmp_path, capsys):
    out = tmp_path / "int8"
    code = main([str(demo_path), "-o", str(out), "--precision", "int8", "--no-benchmark", "--threads", "1"])
    captured = capsys.readouterr()
    assert code == 0
    assert "warning: no calibration data given" in captured.err
    assert "precision: int8" in captured.out and "int8" in captured.out
    report = json.loads((out / "report.json").read_text())
    assert report["quantization"]["precision"] == "int8"
    assert any(p.startswith("int8") for p in report["quantization"]["layers"].values())


def test_smooth_quant_and_bias_correction_flags_before_the_model(demo_path, tmp_path, capsys):
    out = tmp_path / "int8"
    code = main(["--smooth-quant", "--bias-correction", str(demo_path), "-o", str(out), "--precision", "int8",
                 "--no-benchmark", "--threads", "1", "--target", "cpu", "--runtime", "onnxruntime"])
    assert code == 0, capsys.readouterr().err
    techniques = json.loads((out / "report.json").read_text())["quantization"]["techniques"]
    assert any(line.startswith("bias correction") for line in techniques), techniques


@pytest.mark.parametrize("argv, message", [
    (["--precision", "int3"], "invalid choice: 'int3'"),
    (["--precision", "int8", "--metric", "top1"], "--metric needs --eval-data"),
    (["--precision", "int8", "--calibration", "nowhere/"], "no such calibration file or folder"),
    (["--precision", "fp16", "--bias-correction"], "bias correction applies to static int8, not fp16"),
    (["--precision", "int8", "--smooth-quant-alpha", "0.7"], "--smooth-quant-alpha is only used with --smooth-quant"),
    (["--precision", "int8", "--smooth-quant", "--smooth-quant-alpha", "1.5"], "alpha must be in (0, 1)"),
    (["--target", "cpu", "--smooth-quant"], "--smooth-quant needs an int8 precision, but target 'cpu' planned fp32"),
    (["--target", "rpi4", "--precision", "int8", "--bias-correction"], "--bias-correction and --smooth-quant are "
     "not supported for it"),
])
def test_bad_quantization_options_are_usage_errors(demo_path, tmp_path, capsys, argv, message):
    code = main([str(demo_path), "-o", str(tmp_path / "bad"), "--no-benchmark", *argv])
    assert code == 2
    assert message in capsys.readouterr().err
    assert not (tmp_path / "bad").exists()
