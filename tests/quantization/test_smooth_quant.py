import numpy as np
import pytest

from optimizer.errors import UsageError
from optimizer.ir import infer_shapes, model_to_bytes
from optimizer.quantization.options import QuantizationOptions
from optimizer.quantization.quantize import quantize_model
from optimizer.quantization.smooth_quant import smooth_activations
from optimizer.testing import model_from_text, op_types
from optimizer.verify import cosine, run_reference

# A transformer block's first half: LayerNorm whose scale has two outlier channels, read by two projections.
BLOCK = """
<ir_version: 9, opset_import: ["" : 17]>
g (float[1, 16, 128] x) => (float[1, 16, 64] y) {
    n = LayerNormalization <axis = -1> (x, gamma, beta)
    q = MatMul (n, wq)
    k = MatMul (n, wk)
    s = Add (q, k)
    y = MatMul (s, wo)
}
"""


def _outputs(model_bytes, feeds):
    return run_reference(model_bytes, feeds, label="model")


def _model(rng):
    # As in real transformers, the outlier channels carry no more of the output than the others: their weights
    # are small in proportion.
    outliers = [3, 100]
    gamma = np.ones(128, np.float32)
    gamma[outliers] = 60.0
    wq, wk = ((rng.standard_normal((128, 64)) * 0.1).astype(np.float32) for _ in range(2))
    wq[outliers] /= 60.0
    wk[outliers] /= 60.0
    model = model_from_text(BLOCK, gamma=gamma, beta=(rng.standard_normal(128) * 0.1).astype(np.float32),
                            wq=wq, wk=wk, wo=(rng.standard_normal((64, 64)) * 0.1).astype(np.float32))
    infer_shapes(model)
    return model


def _samples(rng, count=8):
    return [{"x": rng.standard_normal((1, 16, 128)).astype(np.float32)} for _ in range(count)]


def test_smoothing_changes_no_output_and_shrinks_the_outliers():
    rng = np.random.default_rng(0)
    model = _model(rng)
    samples = _samples(rng)
    before = [_outputs(model_to_bytes(model), s)["y"] for s in samples]
    shrink = smooth_activations(model, samples)
    assert list(shrink) == ["n"] and shrink["n"] > 4
    assert op_types(model) == ["LayerNormalization", "MatMul", "MatMul", "Add", "MatMul"]
    after = [_outputs(model_to_bytes(model), s)["y"] for s in samples]
    for a, b in zip(before, after):
        np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("precision", ["int8", "int8-dynamic"])
def test_smoothing_makes_int8_more_faithful(precision):
    rng = np.random.default_rng(1)
    samples, held_out = _samples(rng), _samples(rng, 4)

    def worst_cosine(smooth_quant):
        model = _model(np.random.default_rng(2))
        reference = model_to_bytes(model)
        report = quantize_model(model, QuantizationOptions(precision=precision, calibration=samples,
                                                           calibration_method="minmax", smooth_quant=smooth_quant))
        quantized = model_to_bytes(model)
        return min(cosine(_outputs(quantized, s)["y"], _outputs(reference, s)["y"]) for s in held_out), report

    plain, _ = worst_cosine(None)
    smoothed, report = worst_cosine(0.5)
    print(f"{precision}: worst cosine {plain:.5f} plain, {smoothed:.5f} smoothed")
    assert smoothed > plain and 1 - smoothed < (1 - plain) / 2, (plain, smoothed)
    assert any(line.startswith("SmoothQuant (alpha 0.5") for line in report.techniques)


def test_other_readers_of_the_normalized_tensor_get_it_back_unsmoothed():
    """Post-LN (BERT): the normalized tensor is also the residual stream and a graph output here."""
    rng = np.random.default_rng(3)
    gamma = np.ones(128, np.float32)
    gamma[7] = 50.0
    model = model_from_text("""
<ir_version: 9, opset_import: ["" : 17]>
g (float[1, 16, 128] x) => (float[1, 16, 32] y, float[1, 16, 128] r, float[1, 16, 128] n) {
    n = LayerNormalization <axis = -1> (x, gamma, beta)
    y = MatMul (n, w)
    r = Add (n, x)
}
""", gamma=gamma, beta=np.zeros(128, np.float32), w=rng.standard_normal((128, 32)).astype(np.float32))
    samples = _samples(rng, 2)
    before = _outputs(model_to_bytes(model), samples[0])
    assert list(smooth_activations(model, samples)) == ["n"]
    assert op_types(model) == ["LayerNormalization", "Mul", "MatMul", "Add"]
    assert [v.name for v in model.graph.outputs] == ["y", "r", "n"]
    after = _outputs(model_to_bytes(model), samples[0])
    for name in ("y", "r", "n"):
        np.testing.assert_allclose(after[name], before[name], rtol=1e-4, atol=1e-4)


def test_static_int8_keeps_the_restoring_factors_float():
    """One uint8 scale cannot hold factors spanning 1-20 within 2% each: that Mul stays float."""
    rng = np.random.default_rng(5)
    gamma = np.ones(128, np.float32)
    gamma[[7, 90]] = 400.0
    model = model_from_text("""
<ir_version: 9, opset_import: ["" : 17]>
g (float[1, 16, 128] x) => (float[1, 16, 64] y) {
    n = LayerNormalization <axis = -1> (x, gamma, beta)
    q = MatMul (n, wq)
    r = Add (n, x)
    m = MatMul (r, wo)
    y = MatMul (m, w3)
}
""", gamma=gamma, beta=np.zeros(128, np.float32), wq=rng.standard_normal((128, 64)).astype(np.float32),
        wo=rng.standard_normal((128, 64)).astype(np.float32), w3=rng.standard_normal((64, 64)).astype(np.float32))
    model.graph.outputs.append(next(node.outputs[0] for node in model.graph if node.outputs[0].name == "q"))
    quantize_model(model, QuantizationOptions(precision="int8", calibration=_samples(rng, 4), smooth_quant=0.5))
    restore = next(node for node in model.graph if node.op_type == "Mul")
    assert restore.inputs[1].const_value is not None  # the float factors, not a DequantizeLinear


def test_a_layernorm_read_by_no_matmul_is_left_alone():
    rng = np.random.default_rng(4)
    model = model_from_text("""
<ir_version: 9, opset_import: ["" : 17]>
g (float[1, 16, 128] x) => (float[1, 16, 128] r) {
    n = LayerNormalization <axis = -1> (x, gamma, beta)
    r = Relu (n)
}
""", gamma=np.ones(128, np.float32), beta=np.zeros(128, np.float32))
    assert smooth_activations(model, _samples(rng, 2)) == {}
    assert op_types(model) == ["LayerNormalization", "Relu"]


def test_alpha_outside_zero_one_is_a_usage_error():
    with pytest.raises(UsageError, match="SmoothQuant alpha must be in"):
        QuantizationOptions(precision="int8", smooth_quant=1.5)


def test_calibration_from_a_generator_serves_smoothing_calibration_and_bias_correction():
    rng = np.random.default_rng(6)
    samples = _samples(rng, 6)
    model = _model(np.random.default_rng(2))
    report = quantize_model(model, QuantizationOptions(precision="int8", calibration=(s for s in samples),
                                                       smooth_quant=0.5, bias_correction=True))
    assert report.calibration_samples == 6
    assert [line.split(" ")[0] for line in report.techniques] == ["SmoothQuant", "bias"]
