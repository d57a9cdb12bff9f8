"""Accuracy budget: quantize as much as possible while the accuracy drop stays within what the user allows.

The score of a model is the user's metric over the evaluation data (`metric(outputs, labels)`, higher is
better: top-1, F1, mAP...), or, without a metric, the agreement of its outputs with the float model's (mean
over samples of the worst output cosine). The search:

1. quantize everything that can be; if the drop is within budget, that is the answer;
2. otherwise measure each quantized layer's sensitivity: the score gained by keeping only that layer in float;
3. keep the most sensitive layers in float, one more at a time, until the budget holds.

Calibration runs once and every candidate reuses its ranges. Each candidate's score and latency go in the
report. The search always ends with a model: the first candidate within budget, or, if none is, the best one
found, with the report saying plainly that the budget was not met.
"""

from __future__ import annotations

import glob
import logging
import time
from collections.abc import Sequence
from dataclasses import replace

import numpy as np
import onnx_ir as ir

from optimizer.backends.onnxruntime import create_session, measure_latency
from optimizer.errors import UsageError
from optimizer.ir import from_proto, input_specs, model_to_bytes, to_proto
from optimizer.progress import report_progress
from optimizer.quantization.options import MAX_BUDGET_EVAL_SAMPLES, QuantizationOptions
from optimizer.quantization.quantize import (
    QuantizationReport,
    calibrate_static_int8,
    preprocessing,
    quantize_model,
    smooth_for_int8,
)
from optimizer.verify import cosine

logger = logging.getLogger("optimizer")

# Sensitivity probes cost one quantize + evaluation each; beyond this many layers, the first ones in graph order
# are probed.
MAX_PROBED_LAYERS = 96
LATENCY_RUNS = 20


def search_accuracy_budget(
    model: ir.Model, options: QuantizationOptions, *, runtime: str = "onnxruntime", threads: int | None = None,
) -> QuantizationReport:
    """Quantize `model` in place to the best candidate within `options.max_accuracy_drop`."""
    start = time.perf_counter()
    budget = float(options.max_accuracy_drop)
    scratch = QuantizationReport(precision=options.precision)
    if options.smooth_quant is not None and options.precision in ("int8", "int8-dynamic"):
        # Once, on the float model every candidate starts from (it changes no output).
        smooth_for_int8(model, options, threads, scratch)
        options = replace(options, smooth_quant=None)
    float_proto = to_proto(model)
    eval_feeds = _eval_feeds(options, model)
    labels = _first_labels(options.labels, len(eval_feeds))
    reference_outputs = _run(model_to_bytes(model), eval_feeds, threads)

    def score(outputs: list[dict[str, np.ndarray]]) -> float:
        if options.metric is not None:
            return float(options.metric(outputs, labels))
        return _mean_worst_cosine(outputs, reference_outputs)

    baseline = score(reference_outputs)
    if options.metric is not None and labels is not options.labels:
        scratch.warnings.append(f"accuracy budget: scored on the first {len(eval_feeds)} of "
                                f"{len(options.labels)} labeled samples")
    ranges = None
    if options.precision == "int8":
        ranges = calibrate_static_int8(from_proto(float_proto), options, runtime, threads, scratch)

    def options_keeping_float(float_layers: Sequence[str]) -> QuantizationOptions:
        exclude = tuple(options.exclude) + tuple(glob.escape(name) for name in float_layers)
        return replace(options, exclude=exclude, max_accuracy_drop=None)

    def quantized_and_scored(float_layers: Sequence[str]) -> tuple[bytes, float, QuantizationReport]:
        candidate = from_proto(float_proto)
        report = quantize_model(candidate, options_keeping_float(float_layers), runtime=runtime, threads=threads,
                                ranges=ranges)
        data = model_to_bytes(candidate)
        return data, score(_run(data, eval_feeds, threads)), report

    candidates: list[dict] = []

    def evaluate(name: str, float_layers: Sequence[str]) -> tuple[float, QuantizationReport]:
        data, value, report = quantized_and_scored(float_layers)
        latency = measure_latency(create_session(data, threads=threads, label="candidate"), eval_feeds[0],
                                  runs=LATENCY_RUNS).median_ms
        candidates.append({"name": name, "float_layers": list(float_layers), "score": value,
                           "drop": baseline - value, "latency_ms": latency})
        return value, report

    full_score, full_report = evaluate("all quantized", [])
    best: tuple[list[str], float] = ([], full_score)
    layers = full_report.quantized_layer_names
    if baseline - full_score > budget and layers:
        probed = layers[:MAX_PROBED_LAYERS]
        sensitivity = {}
        for index, layer in enumerate(probed):
            sensitivity[layer] = quantized_and_scored([layer])[1] - full_score
            report_progress("layer sensitivity", (index + 1) / len(probed))
        ranked = sorted(sensitivity, key=sensitivity.get, reverse=True)
        for count in range(1, len(ranked) + 1):
            report_progress("accuracy search", count / len(ranked))
            trial = ranked[:count]
            value, _ = evaluate(f"{count} most sensitive layer(s) float", trial)
            within = baseline - value <= budget
            if within or value > best[1]:
                best = (trial, value)
            if within:
                break
    chosen, final_score = best
    report = quantize_model(model, options_keeping_float(chosen), runtime=runtime, threads=threads, ranges=ranges)
    met = baseline - final_score <= budget
    report.calibration = scratch.calibration or report.calibration
    report.calibration_samples = scratch.calibration_samples or report.calibration_samples
    report.calibration_method = scratch.calibration_method or report.calibration_method
    report.warnings = scratch.warnings + report.warnings
    report.techniques = scratch.techniques + report.techniques
    report.candidates = candidates
    report.budget = {
        "metric": getattr(options.metric, "__name__", "metric") if options.metric else "output cosine",
        "max_drop": budget,
        "baseline": baseline,
        "score": final_score,
        "drop": baseline - final_score,
        "met": met,
        "float_layers": list(chosen),
        "eval_samples": len(eval_feeds),
    }
    if not met:
        report.warnings.append(
            f"accuracy budget not met: the best model found drops {baseline - final_score:.4g} "
            f"(budget {budget:.4g}) with {len(chosen)} layer(s) kept float")
    report.seconds = time.perf_counter() - start
    return report


def _eval_feeds(options: QuantizationOptions, model: ir.Model) -> list[dict[str, np.ndarray]]:
    from optimizer.quantization.calibration import calibration_data

    source = options.eval_data if options.eval_data is not None else options.calibration
    if options.metric is not None and options.eval_data is None:
        raise UsageError("an accuracy metric needs labeled evaluation data (eval_data and labels)")
    data = calibration_data(source, input_specs(model), preprocessing=preprocessing(options),
                            limit=MAX_BUDGET_EVAL_SAMPLES)
    feeds = list(data)  # calibration_data already stops at MAX_BUDGET_EVAL_SAMPLES
    if not feeds:
        raise UsageError("the accuracy budget needs at least one evaluation sample")
    return feeds


def _first_labels(labels, count: int):
    """The labels of the first `count` samples: evaluation stops at MAX_BUDGET_EVAL_SAMPLES, so the labels must too."""
    try:
        return labels[:count] if len(labels) > count else labels
    except TypeError:  # no length or no slicing: the metric gets them as given
        return labels


def _run(model_bytes: bytes, feeds: list[dict[str, np.ndarray]], threads: int | None) -> list[dict[str, np.ndarray]]:
    session = create_session(model_bytes, threads=threads, label="candidate")
    return [session.run(sample) for sample in feeds]


def _mean_worst_cosine(outputs: list[dict[str, np.ndarray]], reference: list[dict[str, np.ndarray]]) -> float:
    worst = []
    for candidate, expected in zip(outputs, reference):
        cosines = [cosine(candidate[name], expected[name]) for name in expected
                   if isinstance(expected[name], np.ndarray) and expected[name].dtype.kind == "f"]
        worst.append(min(cosines) if cosines else 1.0)
    return float(np.mean(worst))


