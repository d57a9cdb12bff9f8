"""Time per layer in TensorRT, from an IProfiler on the engine's execution context.

Untested on hardware: written on a machine without an NVIDIA GPU, against TensorRT's documented Python API
(IProfiler.report_layer_time, IExecutionContext.profiler, ICudaEngine.create_engine_inspector). Only the
grouping below is exercised by tests here.

TensorRT reports the time of each engine layer by name, once per inference. A layer is what TensorRT made of
the network after its fusions ("/model.0/conv/Conv + /model.0/act/Sigmoid + /model.0/act/Mul", a "Reformatting
CopyNode"...), and it has no ONNX op type. The engine inspector gives each layer's type ("CaskConvolution",
"Reformat", "PointWiseV2"...) only for an engine built with ProfilingVerbosity.DETAILED; build_engine.py builds
with TensorRT's default, which keeps layer names only. So layers are grouped by their type where the engine
tells it, and otherwise each layer is reported on its own: the op_type of those rows is a layer name.
"""

from __future__ import annotations

import json
from collections import Counter, defaultdict
from collections.abc import Iterable, Mapping
from typing import Any

import numpy as np
from optimizer.backends.base import rank_operator_times
from optimizer.benchmarks.run_report import OperatorTime

WARMUP_RUNS = 1


def profile_engine(runner: Any, feeds: Mapping[str, np.ndarray], *, runs: int = 10) -> list[OperatorTime]:
    """Time per layer type (or layer name), hottest first, over `runs` runs of an EngineRunner after a warm-up.

    The profiler stays on `runner`'s context afterwards (a profiler slows every run): give this a runner of its
    own, not the one a timed session uses."""
    trt = runner.trt
    runner.set_inputs(dict(feeds))
    for _ in range(WARMUP_RUNS):
        runner.execute()
    timer = _layer_timer(trt)
    runner.context.profiler = timer  # reported as each run ends (enqueue_emits_profile, TensorRT's default)
    for _ in range(runs):
        runner.execute()
    return group_layer_times(timer.times, layer_types(_engine_information(trt, runner.engine)), runs)


def group_layer_times(times: Iterable[tuple[str, float]], types: Mapping[str, str], runs: int) -> list[OperatorTime]:
    """(layer name, ms) reports of `runs` runs summed per layer type, or per name for a layer of unknown type."""
    total_ms: dict[str, float] = defaultdict(float)
    calls: Counter[str] = Counter()
    for name, ms in times:
        key = types.get(name, name)
        total_ms[key] += ms
        calls[key] += 1
    return rank_operator_times(total_ms, calls, runs)


def layer_types(information: str | None) -> dict[str, str]:
    """Layer name -> layer type from the inspector's JSON; empty where it lists names only (the default
    ProfilingVerbosity.LAYER_NAMES_ONLY: "Layers" is a list of strings)."""
    try:
        layers = json.loads(information or "{}").get("Layers", [])
    except (ValueError, AttributeError):
        return {}
    return {layer["Name"]: str(layer["LayerType"]) for layer in layers
            if isinstance(layer, dict) and "Name" in layer and "LayerType" in layer}


def _engine_information(trt: Any, engine: Any) -> str | None:
    try:
        return engine.create_engine_inspector().get_engine_information(trt.LayerInformationFormat.JSON)
    except (AttributeError, RuntimeError, TypeError):  # an older TensorRT, or an engine that says nothing
        return None


def _layer_timer(trt: Any) -> Any:
    """An IProfiler that keeps every (layer name, ms) report. Defined here because TensorRT is imported only
    where it runs; pybind11 needs the base class's __init__ called explicitly."""

    class LayerTimer(trt.IProfiler):
        def __init__(self) -> None:
            trt.IProfiler.__init__(self)
            self.times: list[tuple[str, float]] = []

        def report_layer_time(self, layer_name: str, ms: float) -> None:
            self.times.append((layer_name, float(ms)))

    return LayerTimer()
