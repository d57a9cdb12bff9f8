import numpy as np
import onnx
import onnxruntime as ort
import pytest

from optimizer.ir import infer_shapes, model_to_bytes
from optimizer.quantization.calibration.collect import collect_statistics
from optimizer.quantization.schemes import ORT_X86, TENSORRT
from optimizer.quantization.static_int8 import (
    QuantizeStaticInt8,
    StaticInt8Config,
    activation_params,
    plan_static_int8,
)
from optimizer.testing import model_from_text, op_types, run
from optimizer.verify import cosine

SMALL_CNN = """
<ir_version: 9, opset_import: ["" : 17]>
g (float[1, 4, 16, 16] x) => (float[1, 10] logits) {
    c1 = Conv <pads = [1, 1, 1, 1]> (x, w1, b1)
    r1 = Relu (c1)
    c2 = Conv <pads = [1, 1, 1, 1]> (r1, w2, b2)
    s2 = Sigmoid (c2)
    a2 = Mul (c2, s2)
    cat = Concat <axis = 1> (r1, a2)
    pool = MaxPool <kernel_shape = [2, 2], strides = [2, 2]> (cat)
    c3 = Conv <pads = [1, 1, 1, 1]> (pool, w4)
    gap = GlobalAveragePool (c3)
    flat = Flatten (gap)
    logits = Gemm <transB = 1> (flat, w3, b3)
}
"""


def _small_cnn(rng):
    model = model_from_text(
        SMALL_CNN,
        w1=(rng.standard_normal((8, 4, 3, 3)) * 0.3).astype(np.float32), b1=rng.standard_normal(8).astype(np.float32),
        w2=(rng.standard_normal((8, 8, 3, 3)) * 0.2).astype(np.float32), b2=rng.standard_normal(8).astype(np.float32),
        w3=rng.standard_normal((10, 32)).astype(np.float32), b3=rng.standard_normal(10).astype(np.float32),
        w4=(rng.standard_normal((32, 16, 3, 3)) * 0.1).astype(np.float32),
    )
    infer_shapes(model)
    return model


def _samples(rng, count=8):
    return [{"x": rng.standard_normal((1, 4, 16, 16)).astype(np.float32)} for _ in range(count)]


def _quantize(model, samples, scheme=ORT_X86, **config):
    plan = plan_static_int8(model, scheme, config.get("exclude", ()))
    statistics = collect_statistics(model, plan.activations, samples)
    ranges = {name: stats.range("minmax", symmetric=scheme.symmetric_activations)
              for name, stats in statistics.items()}
    quantize = QuantizeStaticInt8(StaticInt8Config(ranges=ranges, scheme=scheme, **config))
    quantize(model)
    return quantize


def _ort_optimized_ops(model, tmp_path):
    options = ort.SessionOptions()
    options.optimized_model_filepath = str(tmp_path / "ort.onnx")
    ort.InferenceSession(model_to_bytes(model), options, providers=["CPUExecutionProvider"])
    return [node.op_type for node in onnx.load(options.optimized_model_filepath).graph.node]


def test_plan_puts_no_qdq_between_conv_and_relu_and_shares_scales_through_moves():
    model = _small_cnn(np.random.default_rng(0))
    plan = plan_static_int8(model)
    assert "c1" not in plan.activations  # folded into the Relu's range
    assert {"x", "r1", "c2", "s2", "a2", "cat", "pool"} <= set(plan.activations)
    assert "logits" not in plan.activations  # graph outputs stay float
    assert "flat" not in plan.activations  # so does the tail after the last int8 layer
    assert any({"a2", "cat", "pool"} <= set(group) for group in plan.shared_groups)
    assert not any("r1" in group for group in plan.shared_groups)  # keeps zero point 0 for the Relu


def test_onnxruntime_fuses_every_int8_op_and_the_result_stays_close(tmp_path):
    rng = np.random.default_rng(1)
    model = _small_cnn(rng)
    samples = _samples(rng)
    expected = [run(model, sample)["logits"] for sample in samples]
    quantize = _quantize(model, samples)
    assert quantize.precisions["c1"].startswith("int8") and quantize.precisions["c2"].startswith("int8")
    assert quantize.precisions["logits"] == "float32 (final layer before the outputs)"
    fused = _ort_optimized_ops(model, tmp_path)
    assert fused.count("QLinearConv") == 3
    assert {"QLinearSigmoid", "QLinearMul", "QLinearConcat"} <= set(fused)
    assert "Conv" not in fused and "Sigmoid" not in fused
    # Only the graph input is quantized outside a fused kernel.
    assert fused.count("QuantizeLinear") == 1
    actual = [run(model, sample)["logits"] for sample in samples]
    assert cosine(np.stack(actual), np.stack(expected)) > 0.99


def test_weights_are_int8_per_channel_and_conv_bias_int32():
    rng = np.random.default_rng(2)
    model = _small_cnn(rng)
    _quantize(model, _samples(rng))
    initializers = model.graph.initializers
    assert initializers["c1_weight_quantized"].const_value.dtype.name == "INT8"
    assert initializers["c1_weight_scale"].const_value.shape == (8,)
    assert initializers["c1_bias_quantized"].const_value.dtype.name == "INT32"
    assert "w1" not in initializers or not list(initializers["w1"].uses())


def test_tensorrt_scheme_quantizes_only_compute_inputs_symmetrically():
    rng = np.random.default_rng(3)
    model = _small_cnn(rng)
    _quantize(model, _samples(rng), scheme=TENSORRT)
    quantizers = [node for node in model.graph if node.op_type == "QuantizeLinear"]
    assert sorted(node.inputs[0].name for node in quantizers) == ["pool", "r1", "x"]
    for node in quantizers:
        zero_point = node.inputs[2].const_value.numpy()
        assert zero_point.dtype == np.int8 and zero_point == 0
    assert "Sigmoid" in op_types(model) and "Concat" in op_types(model)


def test_excluded_op_type_stays_float_with_the_reason():
    rng = np.random.default_rng(4)
    model = _small_cnn(rng)
    quantize = _quantize(model, _samples(rng), exclude=("Conv",))
    assert quantize.precisions["c1"] == "float32 (excluded)" and quantize.precisions["c3"] == "float32 (excluded)"
    assert [node.inputs[1].name for node in model.graph if node.op_type == "Conv"] == ["w1", "w2", "w4"]


@pytest.mark.parametrize(("lo", "hi", "dtype", "symmetric"), [
    (-1.0, 3.0, np.uint8, False), (0.5, 2.0, np.uint8, False), (-4.0, -1.0, np.int8, False),
    (-2.0, 1.0, np.int8, True), (0.0, 0.0, np.uint8, False),
])
def test_activation_params_keep_zero_exact(lo, hi, dtype, symmetric):
    scale, zero_point = activation_params(lo, hi, dtype, symmetric)
    assert scale > 0
    info = np.iinfo(dtype)
    assert info.min <= int(zero_point) <= info.max
    # Zero quantizes to the zero point exactly, and the range's ends stay inside the integer grid.
    assert np.rint(0.0 / scale) + int(zero_point) == int(zero_point)
    for end in (min(lo, 0.0), max(hi, 0.0)):
        assert info.min - 0.5 <= end / scale + int(zero_point) <= info.max + 0.5
    if symmetric:
        assert int(zero_point) == 0


HEAD = """
<ir_version: 9, opset_import: ["" : 17]>
g (float[1, 32, 8, 8] x) => (float[1, 1, 8, 8] y) {
    c1 = Conv <pads = [1, 1, 1, 1]> (x, w1)
    c2 = Conv (c1, w2)
    p = Softmax <axis = 1> (c2)
    y = Conv (p, dfl)
}
"""


def _head(rng):
    model = model_from_text(HEAD, w1=(rng.standard_normal((32, 32, 3, 3)) * 0.1).astype(np.float32),
                            w2=(rng.standard_normal((16, 32, 1, 1)) * 0.1).astype(np.float32),
                            dfl=np.arange(16, dtype=np.float32).reshape(1, 16, 1, 1))
    infer_shapes(model)
    return model


def test_a_layer_feeding_only_a_float_dfl_conv_is_a_final_layer():
    plan = plan_static_int8(_head(np.random.default_rng(0)), ORT_X86)
    assert plan.float_reasons["y"].startswith("sums over 16 inputs")
    assert plan.float_reasons["c2"] == "final layer before the outputs"
    assert [node.outputs[0].name for node in plan.nodes] == ["c1"]


def test_excluding_the_last_int8_layer_keeps_the_one_before_it_int8():
    plan = plan_static_int8(_head(np.random.default_rng(0)), ORT_X86, exclude=("*",))
    assert plan.nodes == []
    model = _head(np.random.default_rng(0))
    model.graph.node(1).name = "last"
    plan = plan_static_int8(model, ORT_X86, exclude=("last",))
    assert plan.float_reasons["last"] == "excluded"
    assert [node.outputs[0].name for node in plan.nodes] == ["c1"]


def test_the_activation_after_a_float_layer_stays_float_and_is_quantized_once_after_it():
    model = model_from_text("""
<ir_version: 9, opset_import: ["" : 17]>
g (float[1, 3, 16, 16] x) => (float[1, 8, 16, 16] y) {
    stem = Conv <pads = [1, 1, 1, 1]> (x, w0)
    s = Sigmoid (stem)
    a = Mul (stem, s)
    c1 = Conv <pads = [1, 1, 1, 1]> (a, w1)
    s1 = Sigmoid (c1)
    a1 = Mul (c1, s1)
    y = Conv <pads = [1, 1, 1, 1]> (a1, w2)
}
""", w0=np.full((16, 3, 3, 3), 0.1, np.float32), w1=np.full((16, 16, 3, 3), 0.01, np.float32),
        w2=np.full((8, 16, 3, 3), 0.01, np.float32))
    infer_shapes(model)
    plan = plan_static_int8(model, ORT_X86)
    assert plan.float_reasons["stem"].startswith("sums over 27 inputs")
    assert [node.outputs[0].name for node in plan.nodes] == ["c1"]  # y is final: its SiLU input stays float
    assert "a" in plan.activations and "stem" not in plan.activations
