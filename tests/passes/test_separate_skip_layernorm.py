import numpy as np

from optimizer.ir import model_to_bytes
from optimizer.passes import SeparateSkipLayerNorm
from optimizer.testing import assert_equivalent, model_from_text, op_types

RESIDUAL_LAYERNORM = """
<ir_version: 9, opset_import: ["" : 17]>
g (float[1, 8, 16] x, float[1, 8, 16] r) => (float[1, 8, 16] y, float[1, 8, 16] s) {
    s = Add (x, r)
    y = LayerNormalization <axis = -1> (s, gamma, beta)
}
"""


def _model(text=RESIDUAL_LAYERNORM):
    rng = np.random.default_rng(0)
    return model_from_text(text, gamma=rng.uniform(0.5, 2, 16).astype(np.float32),
                           beta=rng.standard_normal(16).astype(np.float32))


def test_residual_add_becomes_sum_and_outputs_keep_names():
    model = _model()
    original = model_to_bytes(model)
    separate = SeparateSkipLayerNorm()
    separate(model)
    assert op_types(model) == ["Sum", "LayerNormalization"]
    assert separate.total_rewrites == 1
    assert [v.name for v in model.graph.outputs] == ["y", "s"]
    assert_equivalent(original, model, rtol=1e-5, atol=1e-5)


def _ops_after_ort_fusions(model, path):
    import onnx
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.optimized_model_filepath = str(path)
    ort.InferenceSession(model_to_bytes(model), options, providers=["CPUExecutionProvider"])
    return [node.op_type for node in onnx.load(path).graph.node]


def test_ort_no_longer_fuses_skip_layernorm(tmp_path):
    model = _model(RESIDUAL_LAYERNORM.replace(", float[1, 8, 16] s)", ")"))
    assert "SkipLayerNormalization" in _ops_after_ort_fusions(model, tmp_path / "before.onnx")
    SeparateSkipLayerNorm()(model)
    assert "SkipLayerNormalization" not in _ops_after_ort_fusions(model, tmp_path / "after.onnx")


def test_bias_add_with_a_constant_is_left_alone():
    model = model_from_text(
        """
<ir_version: 9, opset_import: ["" : 17]>
g (float[1, 8, 16] x) => (float[1, 8, 16] y) {
    s = Add (x, bias)
    y = LayerNormalization <axis = -1> (s, gamma, beta)
}
""",
        bias=np.ones(16, np.float32), gamma=np.ones(16, np.float32), beta=np.zeros(16, np.float32))
    SeparateSkipLayerNorm()(model)
    assert op_types(model) == ["Add", "LayerNormalization"]
