"""Time per operator type in ONNX Runtime, from ORT's own profiler.

Profiling is a session option, on for the session's whole life and a small cost on every kernel, so it gets a
session of its own, built like the one `load` gives (same threads, same optimization level). ORT writes a
Chrome-trace JSON when profiling ends: one "Node" event per kernel run, named "<node>_kernel_time", with the
op type in args.op_name, and one "model_run" event per run. The op types are what ORT ran after its graph
optimizations: Conv+Relu as one FusedConv, or at the "all" level a Conv in the NCHWc layout with the
ReorderInput/ReorderOutput nodes that convert to and from it.

The trace is written into a temporary folder (`profile_file_prefix`) and removed with it.
"""

from __future__ import annotations

import json
import os
import tempfile
from collections import Counter, defaultdict
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import onnxruntime as ort
from optimizer.backends.base import rank_operator_times
from optimizer.backends.onnxruntime.session import GraphOptimization, _brief, session_options
from optimizer.benchmarks.run_report import OperatorTime

from optimizer.errors import ModelRunError

WARMUP_RUNS = 1
CONTROL_FLOW = frozenset({"If", "Loop", "Scan"})
"""Ops whose kernel time is the time of their bodies' kernels, which the trace lists too: counting both would
count each body twice (silero-vad: its outer If alone is 85% of the run)."""


def profile_operators(
    model: str | os.PathLike,
    feeds: Mapping[str, np.ndarray],
    *,
    threads: int | None = None,
    optimization: GraphOptimization = "all",
    runs: int = 10,
    label: str = "model",
) -> list[OperatorTime]:
    """Time per operator type, hottest first, over `runs` runs after a warm-up."""
    feeds = dict(feeds)
    with tempfile.TemporaryDirectory(prefix="hwopt-ort-profile-") as scratch:
        session = _profiling_session(model, threads, optimization, Path(scratch) / "profile", label)
        try:
            for _ in range(WARMUP_RUNS + runs):
                _run(session, feeds, label)
        finally:
            trace_file = session.end_profiling()  # on failure too: ORT would write it at exit, folder gone
        trace = json.loads(Path(trace_file).read_text(encoding="utf-8"))
    return operator_times(trace, warmup_runs=WARMUP_RUNS)


def operator_times(trace: list[dict[str, Any]] | dict[str, Any], *, warmup_runs: int) -> list[OperatorTime]:
    """Kernel events of an ORT profile after the first `warmup_runs` runs, summed per op type."""
    events = trace.get("traceEvents", []) if isinstance(trace, dict) else trace
    starts = sorted(event["ts"] for event in events
                    if event.get("cat") == "Session" and event.get("name") == "model_run")
    measured = starts[warmup_runs:]
    if not measured:
        return []
    total_ms: dict[str, float] = defaultdict(float)
    calls: Counter[str] = Counter()
    for event in events:
        if event.get("cat") != "Node" or not event.get("name", "").endswith("_kernel_time"):
            continue
        op_type = event.get("args", {}).get("op_name", "?")
        if event["ts"] < measured[0] or op_type in CONTROL_FLOW:
            continue
        total_ms[op_type] += event["dur"] / 1000.0  # microseconds in the trace
        calls[op_type] += 1
    return rank_operator_times(total_ms, calls, len(measured))


def _profiling_session(model, threads: int | None, optimization: GraphOptimization, prefix: Path,
                       label: str) -> ort.InferenceSession:
    options = session_options(threads, optimization)  # as OrtSession builds it, plus the profiler
    options.enable_profiling = True
    options.profile_file_prefix = str(prefix)
    try:
        return ort.InferenceSession(os.fspath(model), options, providers=["CPUExecutionProvider"])
    except Exception as error:  # noqa: BLE001 - ORT's own exception types
        raise ModelRunError(f"ONNX Runtime cannot load the {label} for profiling: {_brief(error)}", which=label,
                            phase="load") from None


def _run(session: ort.InferenceSession, feeds: dict[str, np.ndarray], label: str) -> None:
    try:
        session.run(None, feeds)
    except Exception as error:  # noqa: BLE001 - ORT's own exception types
        raise ModelRunError(f"ONNX Runtime cannot run the {label}: {_brief(error)}", which=label,
                            phase="run") from None
