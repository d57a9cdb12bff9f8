import os

import numpy as np
import onnx_ir as ir
import pytest

from optimizer.errors import UsageError
from optimizer.ir import load_model, model_to_bytes, save_model, validate_model
from optimizer.quantization.float16 import ConvertToFloat16, Float16Config
from optimizer.testing import assert_equivalent, model_from_text, op_types, run
from optimizer.verify import run_reference

# float16 keeps 11 significant bits: about 3 decimal digits, less after a few ops.
FP16_TOLERANCE = {"rtol": 2e-2, "atol": 2e-2}

MATMUL_ADD_RELU = """
<ir_version: 9, opset_import: ["" : 17]>
g (float[N, 32] x) => (float[N, 16] y) {
    h = MatMul (x, w)
    b = Add (h, bias)
    y = Relu (b)
}
"""


def _matmul_add_relu(rng):
    return model_from_text(
        MATMUL_ADD_RELU,
        w=(rng.standard_normal((32, 16)) / 4).astype(np.float32),
        bias=rng.standard_normal(16).astype(np.float32),
    )


def _convert(model: ir.Model, **options) -> ConvertToFloat16:
    convert = ConvertToFloat16(Float16Config(**options))
    convert(model)
    _assert_casts_placed_once(model)
    return convert


def _assert_casts_placed_once(model: ir.Model) -> None:
    """No Cast reads a Cast's output, and no tensor is cast to the same type twice."""
    seen = set()
    for node in model.graph:
        if node.op_type != "Cast":
            continue
        source = node.inputs[0]
        assert source.producer() is None or source.producer().op_type != "Cast", f"{node.name} reads a Cast"
        key = (source, node.attributes["to"].as_int())
        assert key not in seen, f"{source.name} is cast twice to the same type"
        seen.add(key)


def _dtypes(model: ir.Model) -> dict[str, ir.DataType]:
    return {name: value.dtype for name, value in model.graph.initializers.items()}


def test_matmul_add_relu_runs_in_float16_with_casts_only_at_the_io():
    model = _matmul_add_relu(np.random.default_rng(0))
    original = model_to_bytes(model)

    convert = _convert(model)

    assert op_types(model) == ["Cast", "MatMul", "Add", "Relu", "Cast"]
    assert _dtypes(model) == {"w": ir.DataType.FLOAT16, "bias": ir.DataType.FLOAT16}
    assert set(convert.precisions.values()) == {"float16"}
    assert convert.casts_inserted == 2
    assert convert.compute_dtype == "float16" and convert.storage_dtype == "float16"
    assert [value.name for value in model.graph.outputs] == ["y"]
    assert model.graph.outputs[0].dtype == ir.DataType.FLOAT
    assert_equivalent(original, model, **FP16_TOLERANCE)


def test_layernorm_and_softmax_stay_float32_with_one_cast_each_way():
    rng = np.random.default_rng(1)
    model = model_from_text(
        """
        <ir_version: 9, opset_import: ["" : 17]>
        g (float[N, 16] x) => (float[N, 8] y) {
            n = LayerNormalization <axis = -1> (x, gamma, beta)
            h = MatMul (n, w)
            y = Softmax <axis = -1> (h)
        }
        """,
        gamma=rng.uniform(0.5, 1.5, 16).astype(np.float32),
        beta=rng.standard_normal(16).astype(np.float32),
        w=rng.standard_normal((16, 8)).astype(np.float32),
    )
    original = model_to_bytes(model)

    convert = _convert(model)

    assert op_types(model) == ["LayerNormalization", "Cast", "MatMul", "Cast", "Softmax"]
    assert _dtypes(model) == {"gamma": ir.DataType.FLOAT, "beta": ir.DataType.FLOAT, "w": ir.DataType.FLOAT16}
    assert convert.precisions == {
        "n": "float32 (numerically sensitive)",
        "h": "float16",
        "y": "float32 (numerically sensitive)",
    }
    assert_equivalent(original, model, **FP16_TOLERANCE)


def test_ops_after_a_float32_op_stay_float32_until_the_next_heavy_op():
    """The residual Add of a transformer block reads a LayerNorm output: it stays float32, and so does the
    LayerNorm after it, without a Cast pair around the Add."""
    rng = np.random.default_rng(2)
    model = model_from_text(
        """
        <ir_version: 9, opset_import: ["" : 17]>
        g (float[N, 16] x) => (float[N, 16] y) {
            n = LayerNormalization <axis = -1> (x, gamma, beta)
            h = MatMul (n, w)
            r = Add (h, n)
            y = LayerNormalization <axis = -1> (r, gamma, beta)
        }
        """,
        gamma=np.ones(16, np.float32), beta=np.zeros(16, np.float32),
        w=(rng.standard_normal((16, 16)) / 4).astype(np.float32),
    )
    original = model_to_bytes(model)

    convert = _convert(model)

    assert op_types(model) == ["LayerNormalization", "Cast", "MatMul", "Cast", "Add", "LayerNormalization"]
    assert convert.precisions["r"] == "float32 (follows a float32 input)"
    assert_equivalent(original, model, **FP16_TOLERANCE)


def test_if_bodies_stay_float32_and_read_one_cast_of_the_outer_value():
    rng = np.random.default_rng(3)
    model = model_from_text(
        """
        <ir_version: 9, opset_import: ["" : 17]>
        g (float[N, 8] x, bool c) => (float[N, 4] y) {
            h = MatMul (x, w)
            z = If (c) <
                then_branch = then_g () => (float[N, 4] t) {
                    one = Constant <value = float {1.0}> ()
                    t = Add (h, one)
                },
                else_branch = else_g () => (float[N, 4] e) {
                    two = Constant <value = float {2.0}> ()
                    e = Mul (h, two)
                }
            >
            y = MatMul (z, v)
        }
        """,
        w=rng.standard_normal((8, 4)).astype(np.float32),
        v=rng.standard_normal((4, 4)).astype(np.float32),
    )
    original = model_to_bytes(model)

    convert = _convert(model)

    assert op_types(model) == ["Cast", "MatMul", "Cast", "If", "Cast", "MatMul", "Cast"]
    body_inputs = {
        node.inputs[0]
        for attribute in model.graph.node(3).attributes.values()
        for node in attribute.as_graph()
        if node.op_type != "Constant"
    }
    assert len(body_inputs) == 1 and body_inputs.pop().dtype == ir.DataType.FLOAT
    assert convert.precisions["z"] == "float32 (control flow: the If bodies stay float32)"
    assert convert.precisions["t"] == "float32 (inside a control-flow body)"
    x = rng.standard_normal((2, 8)).astype(np.float32)
    for condition in (True, False):
        assert_equivalent(original, model, {"x": x, "c": np.array(condition)}, **FP16_TOLERANCE)


def test_without_keep_io_types_the_graph_takes_and_gives_float16():
    model = _matmul_add_relu(np.random.default_rng(4))
    original = model_to_bytes(model)

    _convert(model, keep_io_types=False)

    assert op_types(model) == ["MatMul", "Add", "Relu"]
    assert model.graph.inputs[0].dtype == model.graph.outputs[0].dtype == ir.DataType.FLOAT16
    validate_model(model)
    x = np.random.default_rng(5).standard_normal((3, 32)).astype(np.float32)
    expected = run_reference(original, {"x": x}, label="original")["y"]
    actual = run(model, {"x": x.astype(np.float16)})["y"]
    assert actual.dtype == np.float16
    np.testing.assert_allclose(actual.astype(np.float32), expected, **FP16_TOLERANCE)


def test_without_keep_io_types_a_float32_output_is_cast_and_keeps_its_name():
    model = model_from_text(
        """
        <ir_version: 9, opset_import: ["" : 17]>
        g (float[N, 16] x) => (float[N, 16] y) {
            h = MatMul (x, w)
            y = Softmax (h)
        }
        """,
        w=np.eye(16, dtype=np.float32),
    )

    _convert(model, keep_io_types=False)

    assert op_types(model) == ["MatMul", "Cast", "Softmax", "Cast"]
    assert [(value.name, value.dtype) for value in model.graph.outputs] == [("y", ir.DataType.FLOAT16)]
    validate_model(model)


def test_bfloat16_stores_weights_and_runs_in_onnxruntime():
    model = _matmul_add_relu(np.random.default_rng(6))
    original = model_to_bytes(model)

    convert = _convert(model, dtype="bfloat16")

    # ONNX Runtime's CPU EP has no bfloat16 MatMul: the weight is stored in bfloat16 and cast to float32.
    assert convert.compute_dtype == "float32" and convert.storage_dtype == "bfloat16"
    assert op_types(model) == ["Cast", "MatMul", "Add", "Relu"]
    assert _dtypes(model) == {"w": ir.DataType.BFLOAT16, "bias": ir.DataType.FLOAT}  # 16 values: too few
    assert convert.precisions["h"] == "bfloat16 weights, float32 compute"
    assert convert.precisions["b"] == "float32 (bfloat16 is storage only)"
    assert_equivalent(original, model, rtol=2e-2, atol=5e-2)


def test_excluded_nodes_stay_float32_and_so_does_what_follows_them():
    model = _matmul_add_relu(np.random.default_rng(7))
    original = model_to_bytes(model)

    convert = _convert(model, exclude_nodes=("b",))

    assert op_types(model) == ["Cast", "MatMul", "Cast", "Add", "Relu"]
    assert convert.precisions == {
        "h": "float16",
        "b": "float32 (excluded)",
        "y": "float32 (follows a float32 input)",
    }
    assert _dtypes(model) == {"w": ir.DataType.FLOAT16, "bias": ir.DataType.FLOAT}
    assert_equivalent(original, model, **FP16_TOLERANCE)


def test_a_tensor_made_by_a_cast_is_cast_from_its_source_never_twice():
    model = model_from_text(
        """
        <ir_version: 9, opset_import: ["" : 17]>
        g (int64[N, 8] ids) => (float[N, 4] y, float[N, 8] s, float[N, 4] z) {
            f = Cast <to = 1> (ids)
            y = MatMul (f, w)
            z = MatMul (f, w)
            s = Softmax (f)
        }
        """,
        w=np.random.default_rng(8).standard_normal((8, 4)).astype(np.float32),
    )
    original = model_to_bytes(model)

    _convert(model)

    casts = [node for node in model.graph if node.op_type == "Cast"]
    assert [(node.inputs[0].name, node.attributes["to"].as_int()) for node in casts[:2]] == [
        ("ids", ir.DataType.FLOAT), ("ids", ir.DataType.FLOAT16),
    ]
    assert op_types(model).count("Cast") == 4  # the model's, one for both MatMuls, one per MatMul output
    assert_equivalent(original, model, **FP16_TOLERANCE)


def test_a_cast_whose_readers_all_convert_is_retargeted():
    model = model_from_text(
        """
        <ir_version: 9, opset_import: ["" : 17]>
        g (int64[N, 8] ids) => (float[N, 4] y) {
            f = Cast <to = 1> (ids)
            y = MatMul (f, w)
        }
        """,
        w=np.random.default_rng(9).standard_normal((8, 4)).astype(np.float32),
    )
    original = model_to_bytes(model)

    _convert(model)

    assert op_types(model) == ["Cast", "MatMul", "Cast"]
    assert model.graph.node(0).attributes["to"].as_int() == ir.DataType.FLOAT16
    assert_equivalent(original, model, **FP16_TOLERANCE)


def test_resize_coordinates_and_scales_stay_float32():
    rng = np.random.default_rng(10)
    model = model_from_text(
        """
        <ir_version: 9, opset_import: ["" : 17]>
        g (float[1, 3, 8, 8] x) => (float[1, 4, 16, 16] y) {
            c = Conv <pads = [1, 1, 1, 1]> (x, w)
            y = Resize <mode = "nearest"> (c, roi, scales)
        }
        """,
        w=rng.standard_normal((4, 3, 3, 3)).astype(np.float32),
        roi=np.zeros(0, np.float32),
        scales=np.array([1, 1, 2, 2], np.float32),
    )
    original = model_to_bytes(model)

    convert = _convert(model)

    assert op_types(model) == ["Cast", "Conv", "Resize", "Cast"]
    assert convert.precisions["y"] == "float16"
    assert _dtypes(model) == {"w": ir.DataType.FLOAT16, "roi": ir.DataType.FLOAT, "scales": ir.DataType.FLOAT}
    assert_equivalent(original, model, **FP16_TOLERANCE)


def test_weights_beyond_the_float16_range_are_clipped_and_tiny_ones_kept_nonzero():
    model = model_from_text(
        """
        <ir_version: 9, opset_import: ["" : 17]>
        g (float[1, 4] x) => (float[1, 4] y) {
            h = MatMul (x, w)
            y = Add (h, mask)
        }
        """,
        w=np.eye(4, dtype=np.float32),
        mask=np.array([0.0, -3.4028235e38, 1e6, 1e-10], np.float32),
    )

    convert = _convert(model)

    mask = model.graph.initializers["mask"].const_value.numpy()
    np.testing.assert_array_equal(mask[:3], np.array([0, -65504, 65504], np.float16))
    assert 0 < mask[3] < 1e-7
    assert (convert.clipped_values, convert.underflowed_values) == (2, 1)
    outputs = run(model, {"x": np.ones((1, 4), np.float32)})
    assert np.isfinite(outputs["y"]).all()


def test_a_second_run_changes_nothing():
    model = _matmul_add_relu(np.random.default_rng(11))
    _convert(model)
    before = op_types(model)

    assert not ConvertToFloat16()(model).modified
    assert op_types(model) == before


def test_external_weights_are_converted_lazily_when_saved(tmp_path):
    model = _matmul_add_relu(np.random.default_rng(12))
    original = model_to_bytes(model)
    save_model(model, tmp_path / "fp32.onnx", external_data=True)
    model = load_model(tmp_path / "fp32.onnx")

    _convert(model)

    assert isinstance(model.graph.initializers["w"].const_value, ir.LazyTensor)
    save_model(model, tmp_path / "fp16.onnx", external_data=True)
    reloaded = load_model(tmp_path / "fp16.onnx")
    assert _dtypes(reloaded)["w"] == ir.DataType.FLOAT16
    x = np.random.default_rng(13).standard_normal((2, 32)).astype(np.float32)
    expected = run_reference(original, {"x": x}, label="original")["y"]
    actual = run_reference(tmp_path / "fp16.onnx", {"x": x}, label="converted")["y"]
    np.testing.assert_allclose(actual, expected, **FP16_TOLERANCE)


def test_config_rejects_an_unknown_dtype():
    with pytest.raises(UsageError, match="float16, bfloat16"):
        Float16Config(dtype="float8")


@pytest.mark.zoo
def test_minilm_in_float16_and_bfloat16_keeps_its_embeddings_at_half_the_size(tmp_path):
    from optimizer.benchmarks import zoo

    try:
        path = zoo.minilm_path()
        feeds = zoo.minilm_inputs(128, zoo.EVERYDAY_SENTENCES[:4])
    except zoo.ZooUnavailable as reason:
        pytest.skip(str(reason))
    expected = run_reference(path, feeds, label="float32")["sentence_embedding"]
    fp32_bytes = os.path.getsize(path)

    for dtype, min_cosine in (("float16", 0.999), ("bfloat16", 0.99)):
        model = load_model(path)
        convert = _convert(model, dtype=dtype)
        destination = tmp_path / f"minilm-{dtype}.onnx"
        save_model(model, destination)
        actual = run_reference(destination, feeds, label=dtype)["sentence_embedding"]

        cosines = np.sum(actual * expected, axis=1) / (
            np.linalg.norm(actual, axis=1) * np.linalg.norm(expected, axis=1)
        )
        size = os.path.getsize(destination)
        print(f"minilm {dtype}: min cosine {cosines.min():.7f}, {size} bytes of {fp32_bytes} "
              f"({size / fp32_bytes:.1%}), {convert.casts_inserted} casts, {convert.clipped_values} clipped")
        assert cosines.min() >= min_cosine
        assert size < 0.6 * fp32_bytes
