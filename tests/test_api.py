import json

import numpy as np
import pytest

import optimizer
from optimizer.artifact import load_artifact
from optimizer.errors import UsageError, VerificationError
from optimizer.examples.make_demo_model import build_demo_model
from optimizer.ir import load_model, op_histogram, save_model


@pytest.fixture
def demo_path(tmp_path):
    path = tmp_path / "demo.onnx"
    save_model(build_demo_model(), path)
    return path


def test_optimize_writes_a_verified_faster_or_equal_model_and_a_report(demo_path, tmp_path):
    before = demo_path.read_bytes()
    result = optimizer.optimize(demo_path, target="cpu", output_dir=tmp_path / "out", threads=1)
    assert demo_path.read_bytes() == before
    assert result.model_path == tmp_path / "out" / "model.onnx"
    assert result.verification.passed and result.verification.worst_cosine >= 0.9999
    optimized = op_histogram(load_model(result.model_path))
    assert "BatchNormalization" not in optimized and "HardSwish" in optimized and "Gemm" in optimized
    report = json.loads((tmp_path / "out" / "report.json").read_text())
    assert report["schema_version"] == 4
    assert report["quantization"] is None
    assert report["original"]["nodes"] > report["optimized"]["nodes"]
    assert report["latency_original"]["median_ms"] > 0 and report["speedup"] > 0
    assert report["verification"]["outputs"][0]["name"] == "logits"
    written = sorted(p.name for p in (tmp_path / "out").iterdir())
    assert written == sorted([*result.artifact.manifest.files, "manifest.json", "report.json"])
    assert "model.onnx" in written
    assert load_artifact(tmp_path / "out").manifest.runtime == report["runtime"]


def test_shapes_fix_the_batch_and_fold_the_shape_arithmetic(demo_path, tmp_path):
    result = optimizer.optimize(demo_path, shapes={"image": (4, 3, 128, 128)}, output_dir=tmp_path / "o",
                                benchmark=False)
    ops = op_histogram(load_model(result.model_path))
    assert "Shape" not in ops and "Concat" not in ops
    assert result.report.verification.outputs[0].shape == [4, 10]


def test_user_inputs_are_used_for_verification(demo_path, tmp_path):
    inputs = tmp_path / "inputs.npz"
    np.savez(inputs, image=np.random.default_rng(1).random((2, 3, 128, 128), dtype=np.float32))
    result = optimizer.optimize(demo_path, inputs=inputs, output_dir=tmp_path / "o", benchmark=False)
    assert result.verification.inputs_source == "user"
    assert result.verification.outputs[0].shape == [2, 10]


def test_existing_output_needs_force_and_input_is_never_the_output(demo_path, tmp_path):
    out = tmp_path / "o"
    optimizer.optimize(demo_path, output_dir=out, benchmark=False)
    with pytest.raises(UsageError, match="already exists.*--force"):
        optimizer.optimize(demo_path, output_dir=out, benchmark=False)
    optimizer.optimize(demo_path, output_dir=out, benchmark=False, force=True)
    # The input itself sitting where the output would go is refused even with force.
    inside = tmp_path / "same"
    inside.mkdir()
    (inside / "model.onnx").write_bytes(demo_path.read_bytes())
    with pytest.raises(UsageError, match="is part of the input model"):
        optimizer.optimize(inside / "model.onnx", output_dir=inside, force=True)


def test_failed_verification_leaves_no_model(demo_path, tmp_path, monkeypatch):
    from optimizer import build

    def corrupting_compare(*args, **kwargs):
        raise VerificationError("the optimized model does not match the original")

    monkeypatch.setattr(build, "compare_runs", corrupting_compare)
    out = tmp_path / "never"
    with pytest.raises(VerificationError):
        optimizer.optimize(demo_path, output_dir=out)
    assert not out.exists()


def test_in_memory_model_is_not_changed(tmp_path):
    model = build_demo_model()
    nodes_before = len(model.graph)
    result = optimizer.optimize(model, output_dir=tmp_path / "o", benchmark=False)
    assert len(model.graph) == nodes_before
    assert result.report.source == "onnx_ir.Model"


def test_opt_level_zero_changes_nothing_but_still_verifies(demo_path, tmp_path):
    result = optimizer.optimize(demo_path, opt_level=0, output_dir=tmp_path / "o", benchmark=False)
    assert result.report.original.op_histogram == result.report.optimized.op_histogram
    assert result.verification.passed


def test_bad_options_are_usage_errors(demo_path, tmp_path):
    with pytest.raises(UsageError, match="unknown target"):
        optimizer.optimize(demo_path, target="toaster", output_dir=tmp_path / "o")
    with pytest.raises(UsageError, match="opt level"):
        optimizer.optimize(demo_path, opt_level=7, output_dir=tmp_path / "o")
    with pytest.raises(UsageError, match="unknown input"):
        optimizer.optimize(demo_path, shapes={"pixels": (1, 3, 32, 32)}, output_dir=tmp_path / "o")
    with pytest.raises(UsageError, match="cannot load"):
        optimizer.load(42)
    assert not (tmp_path / "o").exists()


def test_when_generated_inputs_do_not_fit_the_error_says_so(tmp_path):
    from optimizer.errors import ModelRunError
    from optimizer.testing import model_from_text

    model = model_from_text(
        """
        <ir_version: 9, opset_import: ["" : 17]>
        g (float[N, L] x) => (float[M, 100] y) { y = Reshape (x, shape) }
        """,
        shape=np.array([-1, 100], np.int64),
    )
    path = tmp_path / "needs_real_inputs.onnx"
    save_model(model, path)
    with pytest.raises(ModelRunError, match="original model.*generated inputs may not suit.*--inputs"):
        optimizer.optimize(path, output_dir=tmp_path / "o")
    result = optimizer.optimize(path, output_dir=tmp_path / "o", shapes={"x": (2, 200)}, benchmark=False)
    assert result.verification.passed


def test_the_input_models_external_data_in_the_output_folder_is_never_touched(tmp_path):
    folder = tmp_path / "d"
    model = build_demo_model()
    # The input's weights live in a file named like hwopt's own data file, in the folder used as output.
    save_model(model, folder / "abcde.onnx", external_data=True)
    (folder / "abcde.onnx.data").rename(folder / "model.onnx.data")
    # Same length, so the protobuf stays valid: the input now reads its weights from model.onnx.data.
    text = (folder / "abcde.onnx").read_bytes().replace(b"abcde.onnx.data", b"model.onnx.data")
    (folder / "abcde.onnx").write_bytes(text)
    before = (folder / "model.onnx.data").read_bytes()
    for force in (False, True):
        with pytest.raises(UsageError, match="part of the input model"):
            optimizer.optimize(folder / "abcde.onnx", output_dir=folder, force=force, benchmark=False)
    assert (folder / "model.onnx.data").read_bytes() == before
    assert sorted(p.name for p in folder.iterdir()) == ["abcde.onnx", "model.onnx.data"]


def test_output_folder_problems_are_one_line_errors_and_leave_nothing(demo_path, tmp_path):
    a_file = tmp_path / "afile"
    a_file.write_text("x")
    with pytest.raises(UsageError, match="cannot be used as the output directory|not a directory"):
        optimizer.optimize(demo_path, output_dir=a_file / "out", benchmark=False)
    nested = tmp_path / "new" / "deeper" / "out"
    with pytest.raises(UsageError):
        optimizer.optimize(demo_path, output_dir=nested, shapes={"image": (1, 3, 7, 7)}, benchmark=False)
    assert not (tmp_path / "new").exists()


def test_caller_objects_are_left_as_they_were(tmp_path):
    import onnx_ir as ir

    path = tmp_path / "ext.onnx"
    save_model(build_demo_model(), path, external_data=True)
    model = load_model(path)
    tensors = {name: value.const_value for name, value in model.graph.initializers.items()}
    assert any(isinstance(t, ir.ExternalTensor) for t in tensors.values())
    optimizer.optimize(model, output_dir=tmp_path / "o", benchmark=False)
    assert {name: value.const_value for name, value in model.graph.initializers.items()} == tensors


def test_api_arguments_are_checked(demo_path, tmp_path):
    for bad in ({"target": None}, {"shapes": "image=1x3x128x128"}, {"min_cosine": 2}, {"threads": 0}):
        with pytest.raises(UsageError):
            optimizer.optimize(demo_path, output_dir=tmp_path / "o", **bad)
