"""A realistic benchmark history for the dashboard tests (and docs/dashboard.png): two models, three candidates
(FP32, FP16, INT8) measured on the host, and the same three estimated for a Jetson Orin Nano.

The measured reports are built directly with figures of the size a 2-core x86 host gives for these models; the
estimates go through estimate_run on the real (tiny) ONNX models written here, so the dashboard is tested on
what `optimize dashboard --estimate` produces.
"""

from __future__ import annotations

import itertools
from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper
from optimizer.benchmarks.estimate import estimate_run
from optimizer.benchmarks.history import History
from optimizer.benchmarks.run_report import (
    BatchResult,
    Environment,
    LatencySummary,
    MemoryUsage,
    ModelInfo,
    OperatorTime,
    RunReport,
)

HOST = "AMD EPYC 7B13 (2 logical cores)"
JETSON = "jetson-orin-nano"
BATCHES = (1, 4, 16)
PRECISIONS = ("fp32", "fp16", "int8")
LATEST = "2026-03-16T09:30:00+00:00"

# model -> precision -> (batch-1 p50 ms, worst cosine, top-1 accuracy or None, peak RSS MB, operator shares %)
MEASURED = {
    "vision-cnn": {
        "fp32": (9.8, 1.0, 0.761, 182, {"Conv": 78.0, "Gemm": 9.0, "Relu": 7.5, "GlobalAveragePool": 2.5}),
        "fp16": (14.2, 0.99998, 0.761, 171, {"Conv": 71.0, "Cast": 12.0, "Gemm": 8.0, "Relu": 6.0}),
        "int8": (4.1, 0.99870, 0.754, 149, {"QLinearConv": 61.0, "QuantizeLinear": 12.0, "DequantizeLinear": 9.0,
                                            "QLinearMatMul": 8.0, "Relu": 4.0}),
    },
    "text-encoder": {
        "fp32": (6.1, 1.0, None, 164, {"MatMul": 82.0, "Add": 7.0, "Relu": 6.0}),
        "fp16": (9.0, 0.99999, None, 158, {"MatMul": 74.0, "Cast": 13.0, "Add": 6.0, "Relu": 4.0}),
        "int8": (2.9, 0.99810, None, 141, {"MatMulInteger": 58.0, "DynamicQuantizeLinear": 17.0, "Cast": 9.0,
                                           "Mul": 6.0, "Add": 4.0}),
    },
}
# Older runs of some candidates (date, p50 ms): the history plot's series. The FP32 vision model got faster
# after an update; the INT8 text encoder regressed once and recovered.
EARLIER = {
    ("vision-cnn", "fp32"): [("2026-02-23T10:00:00+00:00", 11.9), ("2026-03-02T10:00:00+00:00", 11.6),
                             ("2026-03-09T10:00:00+00:00", 9.9)],
    ("text-encoder", "int8"): [("2026-02-23T11:00:00+00:00", 3.0), ("2026-03-02T11:00:00+00:00", 3.9),
                               ("2026-03-09T11:00:00+00:00", 2.95)],
}


def write_models(folder: Path) -> dict[str, Path]:
    """The two models as .onnx files with a dynamic batch: a small convolutional classifier and an MLP encoder."""
    folder.mkdir(parents=True, exist_ok=True)
    paths = {"vision-cnn": folder / "vision-cnn.onnx", "text-encoder": folder / "text-encoder.onnx"}
    onnx.save(_vision_cnn(), paths["vision-cnn"])
    onnx.save(_text_encoder(), paths["text-encoder"])
    return paths


def realistic_runs(folder: Path) -> list[RunReport]:
    """Measured host runs (latest and earlier) and Jetson estimates of both models, oldest first."""
    paths = write_models(folder)
    runs = []
    for model, candidates in MEASURED.items():
        info = ModelInfo(model, str(paths[model]), "0" * 64, 0, _inputs(model))
        for precision, figures in candidates.items():
            for created, p50 in EARLIER.get((model, precision), []):
                runs.append(measured_run(info, precision, figures, created=created, p50=p50))
            runs.append(measured_run(info, precision, figures, created=LATEST))
            estimate = estimate_run(paths[model], JETSON, precision, batches=BATCHES, name=model,
                                    shapes=info.inputs)
            estimate.created = LATEST
            runs.append(estimate)
    return sorted(runs, key=lambda run: run.created)


def write_history(path: Path, runs: list[RunReport]) -> Path:
    with History(path) as history:
        for run in runs:
            history.add(run)
    return path


def measured_run(info: ModelInfo, precision: str, figures: tuple, *, created: str, p50: float | None = None
                 ) -> RunReport:
    base_p50, cosine, accuracy, rss_mb, shares = figures
    p50 = p50 or base_p50
    # Batching amortizes per-call overhead: batch 4 costs about 3.5x batch 1, batch 16 about 13x.
    batches = [_batch(batch, p50 * cost) for batch, cost in zip(BATCHES, (1.0, 3.5, 13.0))]
    operators = [OperatorTime(op, p50 * share / 100, share, 12 if op in ("Conv", "QLinearConv", "MatMul") else 4)
                 for op, share in shares.items()]
    size = {"fp32": 1_450_000, "fp16": 730_000, "int8": 390_000}[precision]
    return RunReport(
        model=ModelInfo(info.name, info.path, info.sha256, size, info.inputs), device=HOST, target="cpu",
        runtime="onnxruntime", runtime_version="1.20.1", precision=precision, batches=batches,
        label=f"{precision} onnxruntime", threads=2,
        memory=MemoryUsage(rss_mb * 1_000_000, 96_000_000), load_seconds=0.21, operators=operators,
        environment=Environment("bench-host", "Linux 6.1", "3.11.9", "x86_64", "AMD EPYC 7B13", ["avx2", "fma"],
                                2, 2, {"onnxruntime": "1.20.1"}, [0.4, 0.3, 0.2]),
        fidelity=None if precision == "fp32" else {"worst_cosine": cosine, "min_cosine": 0.99},
        accuracy=accuracy, created=created)


def _batch(batch: int, p50: float) -> BatchResult:
    latency = LatencySummary(p50_ms=p50, p90_ms=p50 * 1.06, p99_ms=p50 * 1.18, mean_ms=p50 * 1.02,
                             std_ms=p50 * 0.04, min_ms=p50 * 0.95, max_ms=p50 * 1.3, runs=240,
                             ci95_low_ms=p50 * 0.995, ci95_high_ms=p50 * 1.005)
    return BatchResult(batch, latency, batch / (p50 / 1e3))


def _inputs(model: str) -> dict[str, list[int]]:
    return {"vision-cnn": {"image": [1, 3, 224, 224]}, "text-encoder": {"tokens": [1, 128, 256]}}[model]


def _weight(name: str, *shape: int) -> onnx.TensorProto:
    rng = np.random.default_rng(len(name))
    return numpy_helper.from_array((rng.standard_normal(shape) * 0.05).astype(np.float32), name)


def _vision_cnn() -> onnx.ModelProto:
    channels = [3, 32, 64, 128, 256]
    nodes, weights, previous = [], [], "image"
    for i, (c_in, c_out) in enumerate(itertools.pairwise(channels)):
        weights.append(_weight(f"conv{i}.w", c_out, c_in, 3, 3))
        nodes.append(helper.make_node("Conv", [previous, f"conv{i}.w"], [f"conv{i}"], pads=[1, 1, 1, 1],
                                      strides=[2, 2]))
        nodes.append(helper.make_node("Relu", [f"conv{i}"], [f"relu{i}"]))
        previous = f"relu{i}"
    weights.append(_weight("fc.w", 1000, 256))
    nodes += [helper.make_node("GlobalAveragePool", [previous], ["pooled"]),
              helper.make_node("Flatten", ["pooled"], ["flat"]),
              helper.make_node("Gemm", ["flat", "fc.w"], ["logits"], transB=1)]
    graph = helper.make_graph(nodes, "vision-cnn",
                              [helper.make_tensor_value_info("image", TensorProto.FLOAT, ["N", 3, 224, 224])],
                              [helper.make_tensor_value_info("logits", TensorProto.FLOAT, ["N", 1000])], weights)
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])


def _text_encoder() -> onnx.ModelProto:
    nodes, weights, previous = [], [], "tokens"
    for i in range(2):
        weights += [_weight(f"up{i}.w", 256, 1024), _weight(f"down{i}.w", 1024, 256)]
        nodes += [helper.make_node("MatMul", [previous, f"up{i}.w"], [f"up{i}"]),
                  helper.make_node("Relu", [f"up{i}"], [f"act{i}"]),
                  helper.make_node("MatMul", [f"act{i}", f"down{i}.w"], [f"down{i}"]),
                  helper.make_node("Add", [previous, f"down{i}"], [f"block{i}"])]
        previous = f"block{i}"
    graph = helper.make_graph(nodes, "text-encoder",
                              [helper.make_tensor_value_info("tokens", TensorProto.FLOAT, ["N", "T", 256])],
                              [helper.make_tensor_value_info(previous, TensorProto.FLOAT, ["N", "T", 256])], weights)
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
