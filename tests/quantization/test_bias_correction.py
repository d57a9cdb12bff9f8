import numpy as np
import pytest

from optimizer.errors import UsageError
from optimizer.ir import infer_shapes, model_to_bytes
from optimizer.quantization.bias_correction import correct_biases
from optimizer.quantization.calibration.collect import collect_statistics
from optimizer.quantization.options import QuantizationOptions
from optimizer.quantization.quantize import quantize_model
from optimizer.quantization.schemes import ORT_X86
from optimizer.quantization.weights import constant_array
from optimizer.quantization.static_int8 import QuantizeStaticInt8, StaticInt8Config, plan_static_int8
from optimizer.testing import model_from_text
from optimizer.verify import run_reference

# Positive inputs (after a Relu) and weights whose int8 step is coarse: each output channel has one large weight,
# so the small ones round to a few levels and their errors add up, over 32 positive input channels, to a shift.
CONVS = """
<ir_version: 9, opset_import: ["" : 17]>
g (float[1, 32, 12, 12] x) => (float[1, 8, 12, 12] y) {
    r = Relu (x)
    c1 = Conv <pads = [1, 1, 1, 1]> (r, w1, b1)
    a1 = Relu (c1)
    c2 = Conv <pads = [1, 1, 1, 1]> (a1, w2)
    a2 = Relu (c2)
    y = Conv (a2, w3, b3)
}
"""


def _outputs(model_bytes, feeds):
    return run_reference(model_bytes, feeds, label="model")


def _coarse_weights(rng, shape):
    weights = (rng.standard_normal(shape) * 0.05 + 0.02).astype(np.float32)
    weights.reshape(shape[0], -1)[:, 0] = 4.0
    return weights


def _model(rng):
    model = model_from_text(CONVS, w1=_coarse_weights(rng, (32, 32, 3, 3)), b1=np.zeros(32, np.float32),
                            w2=_coarse_weights(rng, (32, 32, 3, 3)), w3=_coarse_weights(rng, (8, 32, 1, 1)),
                            b3=np.zeros(8, np.float32))
    infer_shapes(model)
    return model


def _samples(rng, count=16):
    return [{"x": rng.standard_normal((1, 32, 12, 12)).astype(np.float32)} for _ in range(count)]


def _config(model, samples):
    plan = plan_static_int8(model, ORT_X86)
    statistics = collect_statistics(model, plan.activations, samples)
    return StaticInt8Config(ranges={name: stats.range("minmax") for name, stats in statistics.items()})


def _channel_mean_error(float_bytes, quantized, samples):
    quantized_bytes = model_to_bytes(quantized)
    errors = [_outputs(quantized_bytes, s)["y"].mean(axis=(0, 2, 3))
              - _outputs(float_bytes, s)["y"].mean(axis=(0, 2, 3)) for s in samples]
    return float(np.abs(np.mean(errors, axis=0)).mean())


def test_corrected_biases_remove_the_mean_shift_of_int8_weights():
    rng = np.random.default_rng(0)
    calibration, held_out = _samples(rng), _samples(rng, 8)
    plain, corrected = _model(np.random.default_rng(1)), _model(np.random.default_rng(1))
    float_bytes = model_to_bytes(plain)
    config = _config(plain, calibration)
    shifts = correct_biases(corrected, config, calibration)
    assert set(shifts) == {"c1", "c2"}  # the int8 convs (the last one stays float); c2 had no bias, now has
    assert len(corrected.graph.node(3).inputs) == 3
    QuantizeStaticInt8(config)(plain)
    QuantizeStaticInt8(config)(corrected)
    before = _channel_mean_error(float_bytes, plain, held_out)
    after = _channel_mean_error(float_bytes, corrected, held_out)
    assert after < before / 3, (before, after)


def test_the_float_model_keeps_its_outputs_up_to_the_correction():
    rng = np.random.default_rng(2)
    model = _model(rng)
    samples = _samples(rng, 4)
    before = _outputs(model_to_bytes(model), samples[0])["y"]
    shifts = correct_biases(model, _config(model, samples), samples)
    after = _outputs(model_to_bytes(model), samples[0])["y"]
    # The shift is the int8 weights' error: a small fraction of the output's range, never a rewrite.
    assert 0 < max(shifts.values()) < 0.05
    assert np.abs(after - before).max() < 0.05 * np.abs(before).max()


def test_quantize_model_reports_the_correction_per_layer():
    rng = np.random.default_rng(3)
    model = _model(rng)
    report = quantize_model(model, QuantizationOptions(precision="int8", calibration=_samples(rng, 8),
                                                       bias_correction=True))
    assert report.layers["c1"] == "int8 (per-channel weights, bias corrected)"
    assert any(line.startswith("bias correction") for line in report.techniques)


def test_bias_correction_is_refused_for_other_precisions():
    with pytest.raises(UsageError, match="bias correction applies to static int8"):
        QuantizationOptions(precision="fp16", bias_correction=True)


GEMMS = """
<ir_version: 9, opset_import: ["" : 17]>
g (float[4, 64] x) => (float[4, 8] y) {
    r = Relu (x)
    g1 = Gemm <transB = 1, beta = 0.5> (r, w1, b1)
    a = Relu (g1)
    y = Gemm <transB = 1> (a, w2, b2)
}
"""


def test_a_gemm_bias_scaled_by_beta_and_shaped_1_by_n_is_corrected_in_full():
    rng = np.random.default_rng(4)
    model = model_from_text(GEMMS, w1=_coarse_weights(rng, (64, 64)), b1=np.zeros((1, 64), np.float32),
                            w2=_coarse_weights(rng, (8, 64)), b2=np.zeros(8, np.float32))
    infer_shapes(model)
    samples = [{"x": rng.standard_normal((4, 64)).astype(np.float32)} for _ in range(16)]
    float_bytes = model_to_bytes(model)
    config = _config(model, samples)
    trial = model.clone()
    QuantizeStaticInt8(config)(trial)

    def g1_error(quantized):
        data = model_to_bytes(quantized)
        return float(np.abs(np.mean([
            _outputs(data, s)["y"].mean(axis=0) - _outputs(float_bytes, s)["y"].mean(axis=0) for s in samples],
            axis=0)).mean())

    before = g1_error(trial)
    assert set(correct_biases(model, config, samples)) == {"g1"}
    assert constant_array(model.graph.node(1).inputs[2]).shape == (1, 64)
    QuantizeStaticInt8(config)(model)
    assert g1_error(model) < before / 3
