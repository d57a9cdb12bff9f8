import numpy as np
from channel_models import build

from optimizer.ir import model_to_bytes
from optimizer.pruning.channels import runtime
from optimizer.pruning.channels.groups import analyze
from optimizer.pruning.channels.recovery import compensate_biases, match_statistics
from optimizer.pruning.channels.shrink import shrink
from optimizer.testing import run
from optimizer.verify import cosine

# a: 1x1 conv whose channel 2 is a constant (zero filter, bias 3) -> Relu -> 3x3 conv without padding.
CONSTANT_CHANNEL = """
<ir_version: 9, opset_import: ["" : 17]>
g (float[1, 3, 6, 6] x) => (float[1, 2, 4, 4] y) {
    a = Conv (x, wa, ba)
    r = Relu (a)
    y = Conv (r, wy)
}
"""


def _constant_channel_model(rng):
    wa = rng.standard_normal((8, 3, 1, 1)).astype(np.float32)
    ba = rng.standard_normal(8).astype(np.float32)
    wa[2], ba[2] = 0, 3
    return build(CONSTANT_CHANNEL, wa=wa, ba=ba, wy=rng.standard_normal((2, 8, 3, 3)).astype(np.float32))


def test_bias_compensation_is_exact_for_a_constant_channel():
    rng = np.random.default_rng(0)
    model = _constant_channel_model(rng)
    x = {"x": rng.standard_normal((1, 3, 6, 6)).astype(np.float32)}
    expected = run(model, x)["y"]
    graph = analyze(model)
    masks = graph.keep_masks(graph.slots["a"][[2]])
    statistics = runtime.channel_statistics(model, ["r"], [x])
    np.testing.assert_allclose(statistics["r"].mean[2], 3.0, rtol=1e-6)
    assert compensate_biases(model, masks, {"r": statistics["r"].mean}) == 1
    shrink(model, masks)
    consumer = model.graph.node(2)
    assert consumer.inputs[2] is not None  # a bias was created for it
    np.testing.assert_allclose(run(model, x)["y"], expected, rtol=1e-5, atol=1e-4)


def test_statistics_matching_restores_the_original_channel_statistics():
    rng = np.random.default_rng(1)
    model = build("""
        <ir_version: 9, opset_import: ["" : 17]>
        g (float[1, 3, 8, 8] x) => (float[1, 4, 8, 8] y) {
            a = Conv (x, wa, ba)
            r = Relu (a)
            b = Conv (r, wb, bb)
            y = Relu (b)
        }
        """, wa=rng.standard_normal((16, 3, 1, 1)).astype(np.float32), ba=rng.standard_normal(16).astype(np.float32),
        wb=rng.standard_normal((4, 16, 1, 1)).astype(np.float32), bb=np.zeros(4, np.float32))
    samples = [{"x": rng.standard_normal((1, 3, 8, 8)).astype(np.float32)} for _ in range(4)]
    original = runtime.channel_statistics(model, ["b"], samples)
    reference = runtime.model_outputs(model, samples)
    graph = analyze(model)
    masks = graph.keep_masks(graph.slots["a"][:8])
    shrink(model, masks)
    drifted = runtime.channel_statistics(model, ["b"], samples)
    assert not np.allclose(drifted["b"].mean, original["b"].mean, atol=1e-3)
    before = runtime.output_cosine(reference, model, samples)
    assert match_statistics(model, original, masks, ["b"], samples) == 4
    matched = runtime.channel_statistics(model, ["b"], samples)
    np.testing.assert_allclose(matched["b"].mean, original["b"].mean, rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(matched["b"].std, original["b"].std, rtol=1e-4, atol=1e-4)
    assert runtime.output_cosine(reference, model, samples) > before


def test_output_cosine_is_one_for_the_same_model():
    rng = np.random.default_rng(2)
    model = _constant_channel_model(rng)
    samples = [{"x": rng.standard_normal((1, 3, 6, 6)).astype(np.float32)}]
    reference = runtime.model_outputs(model, samples)
    assert runtime.output_cosine(reference, model, samples) == 1.0
    assert cosine(run(model, samples[0])["y"], reference[0]["y"]) > 0.99999
    assert model_to_bytes(model)  # untouched and still serializable
