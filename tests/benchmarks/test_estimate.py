"""Estimated runs: a roofline figure wrapped as a run report, labelled as an estimate everywhere it goes."""

import dataclasses

import numpy as np
import onnx_ir as ir
import pytest
from optimizer.benchmarks.estimate import best_precision, estimate_run
from optimizer.benchmarks.history import History
from optimizer.benchmarks.run_report import RunReport

from optimizer.errors import UsageError
from optimizer.targets import get_target
from optimizer.targets.roofline import BANDWIDTH_EFFICIENCY, COMPUTE_EFFICIENCY

JETSON = "jetson-orin-nano"


def matmul_model(rows: str = "N") -> ir.Model:
    """y = x @ w with x [rows..., 64] and w 64x32: 64 x 32 multiply-accumulates per row of x."""
    weight = ir.tensor(np.ones((64, 32), np.float32), name="w")
    return ir.from_onnx_text(f"""
        <ir_version: 8, opset_import: ["" : 17]>
        tiny (float[{rows}, 64] x) => (float[{rows}, 32] y) <float[64, 32] w> {{
            y = MatMul(x, w)
        }}
    """, initializers=[weight])


def sequence_model() -> ir.Model:
    """x [N, T, 64] @ w: the sequence length T is dynamic too."""
    return matmul_model("N, T")


@pytest.fixture
def tiny_path(tmp_path):
    path = tmp_path / "tiny.onnx"
    ir.save(matmul_model(), path)
    return path


def test_an_estimate_is_a_run_report_of_kind_estimated_on_the_profiles_device(tiny_path):
    report = estimate_run(tiny_path, JETSON, "fp16", batches=(1, 8))
    profile = get_target(JETSON)

    assert report.kind == "estimated"
    assert report.device == profile.description and report.target == JETSON
    assert report.precision == "fp16" and report.runtime == profile.runtime
    assert report.model.name == "tiny" and report.model.path == str(tiny_path) and len(report.model.sha256) == 64
    assert "estimated" in report.label
    assert "roofline estimate" in report.notes[0] and "not a measurement" in report.notes[0]
    assert report.source == "roofline" and report.environment is None and report.memory is None
    assert [b.batch for b in report.batches] == [1, 8]
    for batch in report.batches:
        latency = batch.latency
        figures = {latency.p50_ms, latency.p90_ms, latency.p99_ms, latency.mean_ms, latency.min_ms,
                   latency.max_ms, latency.ci95_low_ms, latency.ci95_high_ms}
        assert len(figures) == 1 and latency.p50_ms > 0  # one figure, no spread
        assert latency.runs == 0 and latency.std_ms == 0 and latency.stopped_by == "estimate"
        assert batch.throughput_per_s == pytest.approx(batch.batch / (latency.p50_ms / 1e3))


def test_the_batch_dimension_is_fixed_per_batch_size(tiny_path):
    report = estimate_run(tiny_path, JETSON, "fp32", batches=(8, 1))

    per_batch = report.estimate["per_batch"]
    assert [entry["flops"] for entry in per_batch] == [2 * 1 * 64 * 32, 2 * 8 * 64 * 32]
    assert report.estimate["flops"] == 2 * 64 * 32  # the top-level figures are the smallest batch's
    assert report.batches[1].latency.p50_ms > report.batches[0].latency.p50_ms
    assert report.model.inputs == {"x": [1, 64]}


def test_the_figures_are_the_rooflines(tiny_path):
    profile = get_target(JETSON)
    report = estimate_run(tiny_path, profile, "int8")

    estimate = report.estimate
    assert estimate["bound"] in ("compute", "memory")
    assert estimate["compute_efficiency"] == COMPUTE_EFFICIENCY
    assert estimate["bandwidth_efficiency"] == BANDWIDTH_EFFICIENCY
    assert estimate["peak_tops"] == profile.peak_tops["int8"]
    compute_ms = estimate["flops"] / (profile.peak_tops["int8"] * 1e12 * COMPUTE_EFFICIENCY) * 1e3
    memory_ms = estimate["bytes"] / (profile.memory_bandwidth_gbs * 1e9 * BANDWIDTH_EFFICIENCY) * 1e3
    assert report.p50_ms == pytest.approx(max(compute_ms, memory_ms))


def test_the_size_is_the_weights_at_the_precision(tiny_path):
    assert estimate_run(tiny_path, JETSON, "fp32").model.size_bytes == 64 * 32 * 4
    assert estimate_run(tiny_path, JETSON, "fp16").model.size_bytes == 64 * 32 * 2
    assert estimate_run(tiny_path, JETSON, "int8").model.size_bytes == 64 * 32


def test_the_default_precision_is_the_fastest_the_device_has_a_peak_for():
    jetson = get_target(JETSON)
    assert best_precision(jetson) == "int8"
    assert best_precision(dataclasses.replace(jetson, peak_tops={"fp32": 2.0, "fp16": 16.0})) == "fp16"
    assert best_precision(dataclasses.replace(jetson, peak_tops={"fp32": 2.0})) == "fp32"
    assert estimate_run(matmul_model(), jetson, name="tiny").precision == "int8"


def test_a_precision_without_a_datasheet_peak_is_an_error_naming_target_and_precision(tiny_path):
    with pytest.raises(UsageError, match=r"target 'rpi4' has no datasheet peak for fp16"):
        estimate_run(tiny_path, "rpi4", "fp16")
    with pytest.raises(UsageError, match=r"target 'cpu' has no datasheet peak throughput"):
        estimate_run(tiny_path, "cpu")
    with pytest.raises(UsageError, match=r"unknown precision 'fp64'"):
        estimate_run(tiny_path, JETSON, "fp64")
    with pytest.raises(UsageError, match="batch sizes must be positive"):
        estimate_run(tiny_path, JETSON, batches=(0,))


def test_other_dynamic_dims_come_from_shapes_or_are_named_in_the_notes():
    with_shapes = estimate_run(sequence_model(), JETSON, "fp16", name="seq", shapes={"x": [1, 128, 64]})
    assert with_shapes.estimate["flops"] == 2 * 128 * 64 * 32
    assert with_shapes.model.inputs == {"x": [1, 128, 64]}
    assert not any("dynamic" in note for note in with_shapes.notes)

    without = estimate_run(sequence_model(), JETSON, "fp16", name="seq")
    assert without.estimate["flops"] == 2 * 64 * 32  # T counted as 1
    assert any("x[1]" in note and "undercounts" in note for note in without.notes)


def test_a_fixed_batch_cannot_be_estimated_at_another_batch(tmp_path):
    path = tmp_path / "fixed.onnx"
    ir.save(matmul_model("1"), path)
    assert estimate_run(path, JETSON, batches=(1,)).batches[0].batch == 1
    with pytest.raises(UsageError, match="input 'x' has a fixed first dimension of 1"):
        estimate_run(path, JETSON, batches=(1, 4))


def test_an_in_memory_model_is_left_as_it_was():
    model = matmul_model()
    report = estimate_run(model, JETSON, "fp16", batches=(4,), name="mine", label="fp16 guess")

    assert report.model.name == "mine" and report.label == "fp16 guess" and report.model.path == ""
    assert not model.graph.inputs[0].shape.is_static()


def test_an_estimate_goes_through_the_history_unchanged(tiny_path, tmp_path):
    report = estimate_run(tiny_path, JETSON, batches=(1, 4))
    assert RunReport.from_json(report.to_json()) == report
    with History(tmp_path / "h.sqlite") as history:
        history.add(report)
        assert history.runs(kind="estimated") == [report]
