import os
import resource
import time

import numpy as np
import pytest

from optimizer.errors import UsageError
from optimizer.ir import infer_shapes, input_specs, load_model, model_to_bytes
from optimizer.quantization.calibration.collect import capture_tensors, collect_statistics
from optimizer.quantization.calibration.sources import ImagePreprocessing, calibration_data
from optimizer.testing import model_from_text

# Dynamic shapes and an If whose branches read main-graph tensors: what symbolic shape inference cannot type.
DYNAMIC_IF = """
<ir_version: 9, opset_import: ["" : 17]>
g (float[N, M] x, bool c) => (float[N, M] y) {
    a = Relu (x)
    b = Mul (a, x)
    s = Shape (b)
    w = Mul (x, scale)
    y = If (c) <
        then_branch = t () => (float[N, M] ty) { inner = Add (b, a)  ty = Identity (inner) },
        else_branch = e () => (float[N, M] ey) { ey = Sub (b, w) }
    >
}
"""
COUNTER_LOOP = """
<ir_version: 9, opset_import: ["" : 17]>
g (float[N] x, int64 trips) => (float[N] y) {
    start = Abs (x)
    cond = Constant <value = bool {1}> ()
    y = Loop (trips, cond, start) <
        body = step (int64 i, bool keep, float[N] carried) => (bool keep_out, float[N] next) {
            keep_out = Identity (keep)
            next = Add (carried, carried)
        }
    >
}
"""


def _dynamic_if_model():
    return model_from_text(DYNAMIC_IF, scale=np.array(3.0, np.float32))


def _samples(rng, shapes=((2, 3), (5, 7), (1, 1))):
    return [
        {"x": rng.standard_normal(shape).astype(np.float32), "c": np.array(index % 2 == 0)}
        for index, shape in enumerate(shapes)
    ]


def test_statistics_of_a_dynamic_shape_model_with_an_if():
    model = _dynamic_if_model()
    before = model_to_bytes(model)
    samples = _samples(np.random.default_rng(0))
    progress = []
    statistics = collect_statistics(model, ["x", "a", "b", "s", "w", "y", "scale"], samples,
                                    progress=lambda done, total: progress.append((done, total)))

    assert list(statistics) == ["x", "a", "b", "w", "y", "scale"]  # s is int64: left out
    assert progress == [(1, 3), (2, 3), (3, 3)]
    expected = {"x": [], "a": [], "b": [], "w": [], "y": []}
    for sample in samples:
        x = sample["x"]
        a, b, w = np.maximum(x, 0), np.maximum(x, 0) * x, x * 3
        for name, value in zip(expected, (x, a, b, w, b + a if sample["c"] else b - w)):
            expected[name].append(value.ravel())
    for name, values in expected.items():
        values = np.concatenate(values)
        assert statistics[name].count == values.size, name
        assert statistics[name].min == pytest.approx(values.min(), rel=1e-6), name
        assert statistics[name].max == pytest.approx(values.max(), rel=1e-6), name
    assert (statistics["scale"].min, statistics["scale"].max, statistics["scale"].count) == (3.0, 3.0, 1)

    # The caller's model is untouched: same graph, same outputs, no new types or shapes.
    assert model_to_bytes(model) == before
    assert [v.name for v in model.graph.outputs] == ["y"]


def test_typed_values_and_ranges_from_collected_statistics():
    model = _dynamic_if_model()
    infer_shapes(model)  # element types known: non-float tensors are dropped before running
    before = model_to_bytes(model)
    statistics = collect_statistics(model, ["s", "b", "y"], _samples(np.random.default_rng(1)), threads=1)
    assert list(statistics) == ["b", "y"]
    low, high = statistics["b"].range("minmax", symmetric=False)
    assert low >= 0.0 and high > 0.0  # b = relu(x) * x is never negative
    assert model_to_bytes(model) == before


def test_a_loop_model_and_a_calibration_data_source():
    model = model_from_text(COUNTER_LOOP)
    specs = input_specs(model)
    data = calibration_data([{"x": np.array([1.0, -2.0], np.float32), "trips": np.array(3)},
                             {"x": np.array([0.5], np.float32), "trips": np.array(1)}], specs)
    statistics = collect_statistics(model, ["start", "y"], data)
    assert (statistics["start"].min, statistics["start"].max) == (0.5, 2.0)
    assert (statistics["y"].min, statistics["y"].max) == (1.0, 16.0)


def test_capture_tensors_returns_the_float_model_values():
    model = _dynamic_if_model()
    sample = _samples(np.random.default_rng(2))[0]
    captured = capture_tensors(model, ["b", "s", "x", "scale"], sample)
    x = sample["x"]
    np.testing.assert_allclose(captured["b"], np.maximum(x, 0) * x, rtol=1e-6)
    np.testing.assert_array_equal(captured["s"], [2, 3])
    np.testing.assert_array_equal(captured["x"], x)
    assert captured["scale"] == np.float32(3.0)


def test_unknown_and_subgraph_tensors_are_refused():
    model = _dynamic_if_model()
    with pytest.raises(UsageError, match="'inner' is inside a subgraph"):
        collect_statistics(model, ["a", "inner"], [])
    with pytest.raises(UsageError, match="no tensor named 'nope'"):
        collect_statistics(model, ["nope"], [])


@pytest.mark.zoo
def test_yolov8n_statistics_for_every_float_tensor_over_photos(tmp_path):
    from optimizer.benchmarks import zoo

    try:
        model_path, photos = zoo.yolov8n_path(), zoo.sample_photos()
    except zoo.ZooUnavailable as reason:
        pytest.skip(str(reason))
    model = load_model(model_path)
    samples = 64
    folder = tmp_path / "photos"
    folder.mkdir()
    for index in range(samples):  # the five photos, repeated
        photo = photos[index % len(photos)]
        os.symlink(photo, folder / f"{index:03d}-{photo.name}")
    data = calibration_data(folder, input_specs(model),
                            preprocessing=ImagePreprocessing.parse("size=320x320,resize=letterbox"))
    assert data.description == f"64 images from {folder}/ (letterbox 320x320, rgb, nchw)"
    # The same pixels as the zoo's own letterbox.
    np.testing.assert_allclose(next(iter(data))["images"], zoo.yolov8n_inputs(320, photos[0])["images"],
                               atol=1e-6)
    names = [value.name for node in model.graph for value in node.outputs]

    start = time.perf_counter()
    statistics = collect_statistics(model, names, data)
    seconds = time.perf_counter() - start
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"yolov8n: {len(statistics)} float tensors over {samples} photos at 320x320 in {seconds:.2f} s, "
          f"peak RSS {peak_mb:.0f} MB")

    assert len(statistics) > 250
    assert all(s.count > 0 for s in statistics.values())
    assert seconds < 30 and peak_mb < 2048
    for method in ("minmax", "percentile", "entropy", "mse"):
        for stats in statistics.values():
            low, high = stats.range(method, symmetric=False)
            assert stats.min <= low <= high <= stats.max


def test_a_model_with_external_weights(tmp_path):
    from optimizer.ir import has_external_data, save_model

    model = model_from_text(
        """
        <ir_version: 9, opset_import: ["" : 17]>
        g (float[N, 256] x) => (float[N, 256] y) {
            h = Mul (x, weight)
            y = Relu (h)
        }
        """,
        weight=np.linspace(-1, 1, 256, dtype=np.float32),
    )
    save_model(model, tmp_path / "external.onnx", external_data=True)
    model = load_model(tmp_path / "external.onnx")
    assert has_external_data(model)
    x = np.ones((2, 256), np.float32)
    statistics = collect_statistics(model, ["h", "y"], [{"x": x}])
    assert (statistics["h"].min, statistics["h"].max) == (-1.0, 1.0)
    assert (statistics["y"].min, statistics["y"].max) == (0.0, 1.0)
    assert has_external_data(model)  # still reads its weights from the file
