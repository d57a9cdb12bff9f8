import numpy as np
import onnx_ir as ir
import pytest

from optimizer.errors import HwoptError, InvalidModelError, ModelLoadError, UsageError
from optimizer.ir import (
    count_nodes,
    infer_shapes,
    input_specs,
    load_model,
    model_to_bytes,
    op_histogram,
    save_model,
    validate_model,
)
from optimizer.testing import model_from_text
from optimizer.verify import run_reference

SMALL = """
<ir_version: 9, opset_import: ["" : 17, "com.microsoft" : 1]>
g (float[N, 4] x, int64[N] ids) => (float[N, 4] y) {
    w2 = Mul (w, w)
    y = Add (x, w2)
}
"""


def _small_model():
    return model_from_text(SMALL, w=np.arange(4, dtype=np.float32))


def test_round_trip_keeps_graph_and_dynamic_dims(tmp_path):
    path = tmp_path / "m.onnx"
    save_model(_small_model(), path)
    loaded = load_model(path)
    assert op_histogram(loaded) == {"Mul": 1, "Add": 1}
    specs = input_specs(loaded)
    assert [(s.name, s.shape) for s in specs] == [("x", ("N", 4)), ("ids", ("N",))]
    assert specs[1].dtype == np.int64
    assert loaded.opset_imports["com.microsoft"] == 1


def test_external_data_is_written_beside_the_model_and_memory_mapped(tmp_path):
    model = model_from_text(
        """
        <ir_version: 9, opset_import: ["" : 17]>
        g (float[1024] x) => (float[1024] y) { y = Add (x, w) }
        """,
        w=np.linspace(0, 1, 1024, dtype=np.float32),
    )
    path = tmp_path / "out" / "model.onnx"
    written = save_model(model, path, external_data=True)
    assert [p.name for p in written] == ["model.onnx.data", "model.onnx"]
    assert (tmp_path / "out" / "model.onnx.data").stat().st_size >= 4096
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["model.onnx", "model.onnx.data"]
    loaded = load_model(path)
    assert isinstance(loaded.graph.initializers["w"].const_value, ir.ExternalTensor)
    x = np.ones(1024, np.float32)
    outputs = run_reference(path, {"x": x}, label="model")
    np.testing.assert_allclose(outputs["y"], x + np.linspace(0, 1, 1024, dtype=np.float32))
    with pytest.raises(ValueError, match="external data"):
        model_to_bytes(loaded)


def test_truncated_external_data_is_reported(tmp_path):
    model = model_from_text(
        """
        <ir_version: 9, opset_import: ["" : 17]>
        g (float[1024] x) => (float[1024] y) { y = Add (x, w) }
        """,
        w=np.ones(1024, dtype=np.float32),
    )
    path = tmp_path / "model.onnx"
    save_model(model, path, external_data=True)
    data = tmp_path / "model.onnx.data"
    data.write_bytes(data.read_bytes()[:100])
    with pytest.raises(ModelLoadError, match="truncated"):
        load_model(path)
    data.unlink()
    with pytest.raises(ModelLoadError, match="missing"):
        load_model(path)


@pytest.mark.parametrize(
    "content, error, message",
    [
        (b"", ModelLoadError, "empty file"),
        (b"this is not a model at all, just text\n" * 10, ModelLoadError, "not"),
        (b"\x89PNG\r\n\x1a\n" + bytes(range(256)), ModelLoadError, "not"),
    ],
)
def test_files_that_are_not_onnx_get_one_line_errors(tmp_path, content, error, message):
    path = tmp_path / "bad.onnx"
    path.write_bytes(content)
    with pytest.raises(error, match=message) as raised:
        load_model(path)
    assert "\n" not in str(raised.value)
    assert str(path) in str(raised.value)


def test_missing_file_and_directory_are_usage_errors(tmp_path):
    with pytest.raises(UsageError, match="no such file"):
        load_model(tmp_path / "nope.onnx")
    with pytest.raises(UsageError, match="directory"):
        load_model(tmp_path)


def test_invalid_graph_names_the_problem(tmp_path):
    model = _small_model()
    model.graph.node(0).op_type = "NoSuchOp"
    path = tmp_path / "m.onnx"
    save_model(model, path)
    with pytest.raises(InvalidModelError, match="NoSuchOp"):
        load_model(path)


def test_save_leaves_nothing_behind_when_it_fails(tmp_path, monkeypatch):
    def broken_save(*args, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr(ir, "save", broken_save)
    with pytest.raises(HwoptError, match="cannot write .*disk full"):
        save_model(_small_model(), tmp_path / "m.onnx")
    assert list(tmp_path.iterdir()) == []


def test_helpers_count_nodes_in_subgraphs():
    model = model_from_text(
        """
        <ir_version: 9, opset_import: ["" : 17]>
        g (bool c, float[2] x) => (float[2] y) {
            y = If (c) <
                then_branch = t () => (float[2] a) { a = Relu (x) },
                else_branch = e () => (float[2] b) { b = Neg (x) }
            >
        }
        """
    )
    assert count_nodes(model) == 3
    assert op_histogram(model) == {"If": 1, "Relu": 1, "Neg": 1}
    assert model_to_bytes(model)


def test_shape_inference_fills_intermediate_shapes():
    model = _small_model()
    infer_shapes(model)
    assert model.graph.node(1).outputs[0].shape is not None


def test_validate_model_checks_in_memory_models_and_leaves_them_unchanged():
    model = model_from_text(
        """
        <ir_version: 9, opset_import: ["" : 17]>
        g (float[4096] x) => (float[4096] y) { y = Add (x, w) }
        """,
        w=np.ones(4096, dtype=np.float32),
    )
    validate_model(model)
    model.graph.node(0).op_type = "NoSuchOp"
    with pytest.raises(InvalidModelError, match="NoSuchOp"):
        validate_model(model, source="edited model")
    assert [v.name for v in model.graph.inputs] == ["x"]
    assert model.graph.initializers["w"].const_value is not None
