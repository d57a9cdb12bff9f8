"""Estimated runs: a roofline figure for a device that is not here, written as a run report of kind "estimated".

The figure comes from optimizer.targets.roofline (the model's FLOPs and bytes against the profile's datasheet
peak and bandwidth). Wrapping it in a RunReport lets the history, `optimize compare` and the dashboard list it
beside measured runs, while `kind` keeps it apart: every place that shows it says it is an estimate.

Shapes: the first dimension of every input is the batch and is set to each batch asked for; other dynamic
dimensions are taken from `shapes` (e.g. a measured run's ModelInfo.inputs) where given, else count as 1 and
are named in the report's notes, since the estimate then undercounts.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from pathlib import Path

import onnx_ir as ir
from optimizer.benchmarks.run_report import BatchResult, LatencySummary, ModelInfo, RunReport

from optimizer.artifact import sha256_of
from optimizer.errors import UsageError
from optimizer.ir import clear_intermediate_shapes, load_model
from optimizer.targets import TargetProfile, get_target
from optimizer.targets.roofline import (
    BANDWIDTH_EFFICIENCY,
    COMPUTE_EFFICIENCY,
    PRECISION_BYTES,
    RooflineEstimate,
    estimate_latency_ms,
    model_cost,
)

BEST_PRECISION_ORDER = ("int8", "fp16", "bf16", "fp32")
"""The default precision is the first of these the device computes natively and has a datasheet peak for:
the fastest precision hwopt can deploy there without special quantization (fp8 and int4 are left out)."""

ESTIMATE_SOURCE = "roofline"
"""RunReport.source of an estimated run: it ran nowhere."""


def estimate_run(
    model: str | os.PathLike | ir.Model,
    target: str | TargetProfile,
    precision: str | None = None,
    *,
    batches: Sequence[int] = (1,),
    name: str | None = None,
    label: str | None = None,
    shapes: Mapping[str, Sequence[int]] | None = None,
) -> RunReport:
    """A roofline estimate of `model` on `target` at `precision`, one BatchResult per batch size.

    `model` is an .onnx path, or an onnx_ir Model (then give `name`; it is not modified). `precision` defaults
    to the target's best (see BEST_PRECISION_ORDER). Raises UsageError, naming the target and precision, when
    the profile has no datasheet figure to estimate from.
    """
    profile = target if isinstance(target, TargetProfile) else get_target(target)
    precision = precision or best_precision(profile)
    _check_can_estimate(profile, precision)
    if not batches or any(int(batch) <= 0 for batch in batches):
        raise UsageError(f"batch sizes must be positive integers, not {list(batches)}")
    source, info = _load(model, name)
    shapes = shapes or {}

    results, estimates, dynamic = [], [], set()
    for batch in sorted({int(batch) for batch in batches}):
        sized = source.clone()
        dynamic.update(_fix_input_shapes(sized, batch, shapes))
        flops, bytes_moved = model_cost(sized, precision=precision)
        estimate = estimate_latency_ms(flops, bytes_moved, profile, precision)
        if estimate is None:  # _check_can_estimate rules this out; kept so a changed roofline fails loudly
            raise UsageError(f"target '{profile.name}' cannot be estimated at {precision}")
        results.append(_batch_result(batch, estimate))
        estimates.append(estimate)
    info = _model_info(info, source, precision, shapes)

    return RunReport(
        model=info,
        device=profile.description,
        target=profile.name,
        runtime=profile.runtime,
        runtime_version="",
        precision=precision,
        batches=results,
        kind="estimated",
        label=label or f"{precision} {profile.runtime} (estimated)",
        estimate=_estimate_details(profile, precision, estimates),
        notes=_notes(profile, precision, sorted(dynamic)),
        source=ESTIMATE_SOURCE,
    )


def best_precision(profile: TargetProfile) -> str:
    """The first of BEST_PRECISION_ORDER the device computes natively and has a peak figure for."""
    for precision in BEST_PRECISION_ORDER:
        if precision in profile.precisions and profile.peak_tops.get(precision):
            return precision
    raise UsageError(f"target '{profile.name}' has no datasheet peak throughput, so it cannot be estimated; "
                     "roofline estimates need a profile with peak_tops and memory_bandwidth_gbs")


def can_estimate(profile: TargetProfile, precision: str) -> bool:
    """Whether the profile has the figures a roofline estimate at `precision` needs."""
    return (precision in PRECISION_BYTES and bool(profile.peak_tops.get(precision))
            and bool(profile.memory_bandwidth_gbs))


def _check_can_estimate(profile: TargetProfile, precision: str) -> None:
    if precision not in PRECISION_BYTES:
        raise UsageError(f"unknown precision '{precision}' for an estimate; known: {', '.join(PRECISION_BYTES)}")
    if not profile.peak_tops.get(precision):
        listed = ", ".join(profile.peak_tops) or "none"
        raise UsageError(f"target '{profile.name}' has no datasheet peak for {precision} (it lists: {listed}); "
                         f"cannot estimate {precision} there")
    if not profile.memory_bandwidth_gbs:
        raise UsageError(f"target '{profile.name}' has no datasheet memory bandwidth; cannot estimate {precision} "
                         "there")


def _load(model: str | os.PathLike | ir.Model, name: str | None) -> tuple[ir.Model, ModelInfo]:
    if isinstance(model, ir.Model):
        info = ModelInfo(name=name or model.graph.name or "model", path="", sha256="", size_bytes=0)
        return model, info
    path = Path(model)
    loaded = load_model(path)
    return loaded, ModelInfo(name=name or path.stem, path=str(path), sha256=sha256_of(path), size_bytes=0)


def _fix_input_shapes(model: ir.Model, batch: int, shapes: Mapping[str, Sequence[int]]) -> list[str]:
    """Set each input's first dim to `batch` and its other dynamic dims from `shapes`; return the dims left
    dynamic (as "input[axis]"), which model_cost counts as 1."""
    # Shapes inferred for a dynamic batch would otherwise stay in the graph and be kept over the new ones.
    clear_intermediate_shapes(model)
    left_dynamic = []
    for value in _real_inputs(model):
        if value.shape is None or len(value.shape) == 0:
            continue
        given = list(shapes.get(value.name, ()))
        dims: list[int | ir.SymbolicDim] = []
        for axis, dim in enumerate(value.shape):
            if isinstance(dim, int):
                if axis == 0 and batch != 1 and dim != batch:
                    raise UsageError(f"input '{value.name}' has a fixed first dimension of {dim}, so the model "
                                     f"takes no batch of {batch}")
                dims.append(dim)
            elif axis == 0:
                dims.append(batch)
            elif axis < len(given) and isinstance(given[axis], int) and given[axis] > 0:
                dims.append(given[axis])
            else:
                dims.append(dim)
                left_dynamic.append(f"{value.name}[{axis}]")
        value.shape = ir.Shape(dims)
    return left_dynamic


def _real_inputs(model: ir.Model) -> list[ir.Value]:
    return [value for value in model.graph.inputs if value.name not in model.graph.initializers]


def _model_info(info: ModelInfo, model: ir.Model, precision: str, shapes: Mapping[str, Sequence[int]]) -> ModelInfo:
    """`info` with the weights at `precision` (what the deployed model would weigh) and the batch-1 input shapes
    estimated (-1 for a dim left dynamic)."""
    at_batch_1 = model.clone()
    _fix_input_shapes(at_batch_1, 1, shapes)
    inputs = {value.name: [dim if isinstance(dim, int) else -1 for dim in value.shape]
              for value in _real_inputs(at_batch_1) if value.shape is not None}
    return ModelInfo(info.name, info.path, info.sha256, _weight_bytes(model, precision), inputs)


def _weight_bytes(model: ir.Model, precision: str) -> int:
    total = 0.0
    for graph in model.graphs():
        for value in graph.initializers.values():
            tensor = value.const_value
            if tensor is None:
                continue
            width = PRECISION_BYTES[precision] if tensor.dtype.is_floating_point() else tensor.dtype.itemsize
            total += tensor.size * width
    return int(total)


def _batch_result(batch: int, estimate: RooflineEstimate) -> BatchResult:
    ms = estimate.latency_ms
    latency = LatencySummary(p50_ms=ms, p90_ms=ms, p99_ms=ms, mean_ms=ms, std_ms=0.0, min_ms=ms, max_ms=ms,
                             runs=0, ci95_low_ms=ms, ci95_high_ms=ms, stopped_by="estimate")
    return BatchResult(batch=batch, latency=latency, throughput_per_s=batch / (ms / 1e3) if ms > 0 else 0.0)


def _estimate_details(profile: TargetProfile, precision: str, estimates: list[RooflineEstimate]) -> dict:
    """The smallest batch's bound, FLOPs and bytes at the top (the figures a table shows), every batch below."""
    first = estimates[0]
    return {
        "method": "roofline",
        "bound": first.bound,
        "flops": first.flops,
        "bytes": first.bytes,
        "peak_tops": profile.peak_tops[precision],
        "memory_bandwidth_gbs": profile.memory_bandwidth_gbs,
        "compute_efficiency": COMPUTE_EFFICIENCY,
        "bandwidth_efficiency": BANDWIDTH_EFFICIENCY,
        "per_batch": [{"bound": e.bound, "flops": e.flops, "bytes": e.bytes, "latency_ms": e.latency_ms}
                      for e in estimates],
    }


def _notes(profile: TargetProfile, precision: str, left_dynamic: list[str]) -> list[str]:
    unit = "TOPS" if precision.startswith("int") else "TFLOPS"
    notes = [
        (f"roofline estimate, not a measurement: {profile.peak_tops[precision]:g} {unit} {precision} at "
         f"{COMPUTE_EFFICIENCY:.0%} and {profile.memory_bandwidth_gbs:g} GB/s at {BANDWIDTH_EFFICIENCY:.0%} from "
         f"the {profile.name} datasheet"),
        "ignores launch and framework overhead, caches, fusion and every op that is not a matrix product",
    ]
    if left_dynamic:
        notes.append(f"dynamic dims counted as 1 (the estimate undercounts): {', '.join(left_dynamic)}")
    return notes
