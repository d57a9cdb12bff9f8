"""Time per operator type in OpenVINO, from its performance counters.

The counters are a compile property (PERF_COUNT), so they get a model compiled for them, with the properties
a session is compiled with (threads, LATENCY, the inference precision). After each inference the request's
`profiling_info` lists every node of the compiled graph with the time of that inference alone: the plugin's
node types after its fusions (Convolution with its activation inside, FullyConnected for a MatMul on weights,
the Reorder nodes it adds to change layouts). Nodes fused into another one are listed too, NOT_RUN with no
time, as are Parameter, Result and Constant: only EXECUTED nodes count.
"""

from __future__ import annotations

import os
from collections import Counter, defaultdict
from collections.abc import Mapping
from typing import Any

import numpy as np
from optimizer.backends.base import rank_operator_times
from optimizer.backends.openvino.runtime import brief, core, openvino, require_device
from optimizer.backends.openvino.session import compile_config
from optimizer.benchmarks.run_report import OperatorTime

from optimizer.errors import ModelRunError

WARMUP_RUNS = 1
NOT_OPERATORS = frozenset({"Parameter", "Result", "Constant"})
"""Graph inputs, outputs and weights: the CPU plugin reports them NOT_RUN, other plugins may not."""


def profile_operators(
    model: str | os.PathLike,
    feeds: Mapping[str, np.ndarray],
    *,
    device: str = "CPU",
    inference_precision: str | None = None,
    threads: int | None = None,
    runs: int = 10,
    label: str = "model",
) -> list[OperatorTime]:
    """Time per node type, hottest first, over `runs` inferences after a warm-up."""
    require_device(device)
    executed = openvino().ProfilingInfo.Status.EXECUTED
    config = {**compile_config(inference_precision, threads), "PERF_COUNT": True}
    ov_core = core(model)  # with hwopt's extension if the model holds hwopt's custom ops
    try:
        request = ov_core.compile_model(os.fspath(model), device, config).create_infer_request()
    except Exception as error:  # noqa: BLE001 - OpenVINO's own RuntimeError subclasses
        raise ModelRunError(f"OpenVINO cannot compile the {label} for {device} with performance counters: "
                            f"{brief(error)}", which=label, phase="load") from None
    feeds = dict(feeds)
    for _ in range(WARMUP_RUNS):
        _infer(request, feeds, label)
    total_ms: dict[str, float] = defaultdict(float)
    calls: Counter[str] = Counter()
    for _ in range(runs):
        _infer(request, feeds, label)
        for node in request.profiling_info:  # this inference's counters only
            if node.status == executed and node.node_type not in NOT_OPERATORS:
                total_ms[node.node_type] += node.real_time.total_seconds() * 1000.0
                calls[node.node_type] += 1
    return rank_operator_times(total_ms, calls, runs)


def _infer(request: Any, feeds: dict[str, np.ndarray], label: str) -> None:
    try:
        request.infer(feeds, share_inputs=True)
    except Exception as error:  # noqa: BLE001 - OpenVINO's own RuntimeError subclasses, TypeError
        raise ModelRunError(f"OpenVINO cannot run the {label}: {brief(error)}", which=label, phase="run") from None
