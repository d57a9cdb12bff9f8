import numpy as np

from optimizer.ir import model_to_bytes
from optimizer.quantization.dynamic_int8 import DynamicInt8Config, QuantizeDynamicInt8
from optimizer.testing import model_from_text, op_types, run
from optimizer.verify import cosine

ATTENTION_PROJECTIONS = """
<ir_version: 9, opset_import: ["" : 17]>
g (float[1, 16, 64] x) => (float[1, 16, 64] q, float[1, 16, 64] k, float[1, 16, 16] scores) {
    qm = MatMul (x, wq)
    q = Add (qm, bq)
    km = MatMul (x, wk)
    k = Add (km, bk)
    kt = Transpose <perm = [0, 2, 1]> (k)
    scores = MatMul (q, kt)
}
"""


def _weights(rng):
    return {
        "wq": rng.standard_normal((64, 64)).astype(np.float32), "bq": rng.standard_normal(64).astype(np.float32),
        "wk": rng.standard_normal((64, 64)).astype(np.float32), "bk": rng.standard_normal(64).astype(np.float32),
    }


def _feeds(rng):
    return {"x": rng.standard_normal((1, 16, 64)).astype(np.float32)}


def test_projections_sharing_an_input_are_packed_with_their_biases():
    rng = np.random.default_rng(0)
    model = model_from_text(ATTENTION_PROJECTIONS, **_weights(rng))
    feeds = _feeds(rng)
    expected = run(model, feeds)
    quantize = QuantizeDynamicInt8(DynamicInt8Config(min_weight_elements=0))
    quantize(model)
    assert op_types(model) == ["DynamicQuantizeMatMul", "Split", "Transpose", "MatMul"]
    assert quantize.total_rewrites == 2
    assert model.opset_imports["com.microsoft"] == 1
    actual = run(model, feeds)
    assert list(actual) == ["q", "k", "scores"]
    for name in ("q", "k", "scores"):
        assert cosine(actual[name], expected[name]) > 0.999, name


def test_activation_matmul_stays_float_and_is_reported_by_omission():
    rng = np.random.default_rng(1)
    model = model_from_text(ATTENTION_PROJECTIONS, **_weights(rng))
    quantize = QuantizeDynamicInt8(DynamicInt8Config(min_weight_elements=0, pack_shared_inputs=False))
    quantize(model)
    assert op_types(model).count("DynamicQuantizeMatMul") == 2
    assert op_types(model)[-1] == "MatMul"


def test_excluded_and_small_matmuls_stay_float_with_reasons():
    rng = np.random.default_rng(2)
    model = model_from_text(ATTENTION_PROJECTIONS.replace("qm = MatMul", "qm = MatMul"), **_weights(rng))
    model.graph.node(0).name = "attention/query"
    quantize = QuantizeDynamicInt8(DynamicInt8Config(exclude=("attention/*",), min_weight_elements=0))
    quantize(model)
    assert quantize.precisions["attention/query"] == "float32 (excluded)"
    small = QuantizeDynamicInt8(DynamicInt8Config(min_weight_elements=10**6))
    tiny = model_from_text(ATTENTION_PROJECTIONS, **_weights(rng))
    small(tiny)
    assert small.total_rewrites == 0
    assert any("only 4096 weights" in reason for reason in small.precisions.values())


def test_per_column_scales_beat_one_scale_on_uneven_columns():
    """One large column would flatten the others under a per-tensor scale; per-column keeps them."""
    rng = np.random.default_rng(3)
    weights = _weights(rng)
    weights["wq"][:, 0] *= 100.0
    model = model_from_text(ATTENTION_PROJECTIONS, **weights)
    feeds = _feeds(rng)
    expected = run(model, feeds)["q"][..., 1:]
    QuantizeDynamicInt8(DynamicInt8Config(min_weight_elements=0))(model)
    actual = run(model, feeds)["q"][..., 1:]
    assert cosine(actual, expected) > 0.999
    assert model_to_bytes(model)
