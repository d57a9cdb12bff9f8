"""The default pipeline on the real models of shared/zoo.md: it succeeds and stays faithful on real inputs.

Speed is checked by benchmarks/bench_real_models.py, not here.
"""

import numpy as np
import pytest

import optimizer
from optimizer.benchmarks.real_models import REAL_MODELS, fetch
from optimizer.ir import load_model, op_histogram
from optimizer.verify import run_reference

pytestmark = pytest.mark.zoo


@pytest.mark.parametrize("name", list(REAL_MODELS))
def test_optimize_for_cpu_is_faithful_on_real_inputs(name, tmp_path):
    path, feeds, model = fetch(name)
    before = path.read_bytes()
    result = optimizer.optimize(path, target="cpu", shapes=model.shapes, inputs=feeds,
                                output_dir=tmp_path / name, benchmark=False, threads=2)
    assert path.read_bytes() == before
    assert result.verification.passed
    assert result.verification.worst_cosine >= 0.9999
    assert result.report.optimized.nodes <= result.report.original.nodes


def test_yolov8n_keeps_its_detections(tmp_path):
    path, feeds, model = fetch("yolov8n")
    result = optimizer.optimize(path, shapes=model.shapes, inputs=feeds, output_dir=tmp_path, benchmark=False)
    (original,) = run_reference(path, feeds, label="original").values()
    (optimized,) = run_reference(result.model_path, feeds, label="optimized").values()
    scores_original, scores_optimized = original[0, 4:].max(axis=0), optimized[0, 4:].max(axis=0)
    detected = scores_original > 0.25
    assert detected.any()
    np.testing.assert_array_equal(detected, scores_optimized > 0.25)
    np.testing.assert_array_equal(original[0, 4:].argmax(axis=0)[detected],
                                  optimized[0, 4:].argmax(axis=0)[detected])
    np.testing.assert_allclose(optimized[0, :4, detected], original[0, :4, detected], atol=1e-2)


def test_silero_vad_keeps_its_if_subgraph_and_lstm(tmp_path):
    path, feeds, _ = fetch("silero-vad")
    result = optimizer.optimize(path, inputs=feeds, output_dir=tmp_path, benchmark=False)
    ops = op_histogram(load_model(result.model_path))
    assert ops.get("If", 0) >= 1 and ops.get("LSTM", 0) >= 1


def test_yolov8n_at_o3_is_faithful(tmp_path):
    path, feeds, model = fetch("yolov8n")
    result = optimizer.optimize(path, shapes=model.shapes, inputs=feeds, output_dir=tmp_path, opt_level=3,
                                benchmark=False)
    assert result.verification.worst_cosine >= 0.9999
    assert result.report.optimized.opset == 21
