"""`optimize bench`: load an artifact (or compile a plain model) and measure it on this machine.

One run measures, in this order: load (from the files to a session that has run once), then per batch size a
warm-up and timed runs until the median is known to within 1% or the time budget ends, the peak resident memory
over all of that, and last the time per operator type from the runtime's profiler (a separate profiled session,
after the timing, so profiling overhead never reaches the latency figures).
"""

from __future__ import annotations

import json
import os
import tempfile
import time
from collections.abc import Callable, Mapping, Sequence
from contextlib import ExitStack
from pathlib import Path

import numpy as np
import onnx_ir as ir

from optimizer import ir as hir
from optimizer.artifact import MANIFEST_FILE, Artifact, Manifest, load_artifact, model_io_specs, write_manifest
from optimizer.backends.base import CompileOptions, Session
from optimizer.backends.registry import get_backend
from optimizer.benchmarks import memory
from optimizer.benchmarks.environment import capture_environment
from optimizer.benchmarks.run_report import BatchResult, MemoryUsage, ModelInfo, OperatorTime, RunReport
from optimizer.benchmarks.timing import TimingBudget, time_runs
from optimizer.errors import HwoptError, RuntimeNotAvailableError, UsageError
from optimizer.inputs import Feeds, check_feeds, generate_inputs, read_npz
from optimizer.ir import InputSpec
from optimizer.targets.host_cpu import detect_host_cpu

Progress = Callable[[str, float], None]
"""progress(stage, fraction done of that stage)."""

OPERATOR_PROFILE_RUNS = 10


def bench(source: str | os.PathLike, *, target: str | None = None, runtime: str | None = None,
          batches: Sequence[int] = (1,), threads: int | None = None, runs: int | None = None,
          time_budget_s: float = 10.0, inputs: str | os.PathLike | None = None, name: str | None = None,
          label: str | None = None, profile_operators: bool = True, progress: Progress | None = None,
          shapes: Mapping[str, Sequence[int]] | None = None) -> RunReport:
    """Measure an artifact folder, or a plain .onnx model compiled unchanged (FP32) for `target`'s runtime.

    `batches`: batch sizes to time (the leading dim of every input); `runs`: exactly that many timed runs per
    batch instead of stopping on a tight interval or `time_budget_s` (seconds per batch size); `inputs`: an .npz
    of real inputs (else generated from the input specs, with dynamic dims from `shapes` where given).
    """
    batches = _check_batches(batches)
    if runs is not None and runs < 1:
        raise UsageError(f"--runs must be at least 1, not {runs}")
    if time_budget_s <= 0:
        raise UsageError(f"--time must be positive, not {time_budget_s}")
    source = Path(source)
    with ExitStack() as cleanup:
        compile_seconds = None
        if source.is_dir():
            if target is not None or runtime is not None:
                raise UsageError(f"{source}: an artifact is already compiled for its target and runtime; "
                                 "--target and --runtime apply to a plain .onnx model")
            artifact = load_artifact(source)
        elif source.is_file():
            folder = Path(cleanup.enter_context(tempfile.TemporaryDirectory(prefix="hwopt-bench-")))
            started = time.perf_counter()
            artifact = compile_plain_model(source, target or "cpu", runtime, threads, folder, shapes or {})
            compile_seconds = time.perf_counter() - started
        else:
            raise UsageError(f"{source}: no such model file or artifact folder")
        report = _measure(artifact, batches, threads, TimingBudget(time_budget_s, runs), inputs, shapes or {},
                          profile_operators, progress)
    report.compile_seconds = compile_seconds
    report.model = ModelInfo(name or model_name(source), str(source.resolve()),
                             report.model.sha256, report.model.size_bytes, report.model.inputs)
    report.label = label or f"{artifact.manifest.precision} {artifact.manifest.runtime}"
    report.fidelity = _fidelity(source)
    return report


def compile_plain_model(path: Path, target: str, runtime: str | None, threads: int | None,
                        folder: Path, shapes: Mapping[str, Sequence[int]] | None = None) -> Artifact:
    """`path` as it is (no passes, FP32) compiled by the target's runtime into `folder`: what the model costs
    before hwopt touches it. `shapes` fix dynamic input dims first (a runtime with static tensors needs them)."""
    from optimizer.targets import get_target
    from optimizer.targets.plan import make_plan

    profile = get_target(target)
    plan = make_plan(profile, "fp32", calibrated=False, runtime=runtime)
    backend_name = plan.backends[0]
    model = hir.load_model(path)
    if shapes:
        from optimizer.passes import FixInputShapes, FixInputShapesConfig

        FixInputShapes(FixInputShapesConfig(shapes={name: tuple(dims) for name, dims in shapes.items()}))(model)
    compiled = get_backend(backend_name).compile(
        model, CompileOptions(profile, "fp32", threads, plan.device), folder)
    inputs, outputs = model_io_specs(model)
    return write_manifest(folder, Manifest(
        target=profile.name, runtime=backend_name, runtime_version=compiled.runtime_version,
        device=compiled.device, precision="fp32", entry=compiled.entry,
        inputs=compiled.inputs if compiled.inputs is not None else inputs,
        outputs=compiled.outputs if compiled.outputs is not None else outputs,
        details=compiled.details, runs_here=compiled.runs_here))


def _measure(artifact: Artifact, batches: list[int], threads: int | None, budget: TimingBudget,
             inputs: str | os.PathLike | None, shapes: Mapping[str, Sequence[int]], profile_operators: bool,
             progress: Progress | None) -> RunReport:
    manifest = artifact.manifest
    if not manifest.runs_here:
        raise RuntimeNotAvailableError(
            f"{artifact.folder}: built for {manifest.device}, which this machine lacks; benchmark it on the "
            f"device with `optimize agent` there and `optimize bench {artifact.folder} --remote URL`, or "
            f"estimate it with `optimize bench MODEL.onnx --target {manifest.target} --estimate`")
    environment = capture_environment(threads)
    backend = get_backend(manifest.runtime)
    specs = input_specs_of(manifest)
    base_feeds = _base_feeds(specs, inputs, shapes)
    per_batch = {batch: with_batch(base_feeds, specs, batch) for batch in batches}

    # Reset first, then read: the new peak starts at the RSS of that instant, so it is never below `rss_before`
    # (read the other way round, memory freed in between made the peak smaller than the "before").
    peak_was_reset = memory.reset_peak_rss()
    rss_before = memory.current_rss_bytes()
    started = time.perf_counter()
    session = backend.load(artifact, threads=threads)
    session.run(per_batch[batches[0]])  # the first run finishes lazy initialization and names a failing model
    load_seconds = time.perf_counter() - started

    results = []
    for index, batch in enumerate(batches):
        feeds = per_batch[batch]
        if index:
            session.run(feeds)
        stage = f"timing batch {batch}"
        latency = time_runs(lambda feeds=feeds: session.run_raw(feeds), budget,
                            None if progress is None else lambda done, stage=stage: progress(stage, done))
        results.append(BatchResult(batch, latency, batch * 1e3 / latency.p50_ms))
        if progress is not None:
            progress(stage, 1.0)
    arena = getattr(session, "arena_bytes", None)
    usage = MemoryUsage(max(memory.peak_rss_bytes(), rss_before), rss_before, arena,
                        f"{manifest.runtime} reports it" if arena is not None else None)
    notes = [] if peak_was_reset else ["peak memory is the process's lifetime peak (no VmHWM reset here)"]
    operators = _operators(backend, artifact, per_batch[batches[0]], threads, notes, progress) \
        if profile_operators else []
    return RunReport(
        model=ModelInfo(artifact.folder.name, str(artifact.folder), manifest.files[manifest.entry].sha256,
                        artifact.runtime_bytes, {name: list(a.shape) for name, a in base_feeds.items()}),
        device=device_label(manifest.device),
        target=manifest.target,
        runtime=manifest.runtime,
        runtime_version=manifest.runtime_version,
        precision=manifest.precision,
        batches=results,
        threads=threads,
        memory=usage,
        load_seconds=load_seconds,
        operators=operators,
        environment=environment,
        notes=notes + _session_notes(session),
    )


def _operators(backend, artifact: Artifact, feeds: Feeds, threads: int | None, notes: list[str],
               progress: Progress | None) -> list[OperatorTime]:
    profile = getattr(backend, "profile_operators", None)
    if profile is None:
        notes.append(f"{backend.name} has no operator profiler in hwopt")
        return []
    if progress is not None:
        progress("profiling operators", 0.0)
    try:
        operators = profile(artifact, feeds, threads=threads, runs=OPERATOR_PROFILE_RUNS)
    except HwoptError as error:
        notes.append(f"operator profile unavailable: {error}")
        return []
    if not operators:
        notes.append(f"no operator times: {backend.name} has no operator profiler here")
    if progress is not None:
        progress("profiling operators", 1.0)
    return operators


def _session_notes(session: Session) -> list[str]:
    precision = getattr(session, "inference_precision", None)
    return [f"inference precision: {precision} (as the runtime reports it)"] if precision else []


def input_specs_of(manifest: Manifest) -> list[InputSpec]:
    specs = []
    for spec in manifest.inputs:
        try:
            dtype = np.dtype(ir.DataType[spec.dtype.upper()].numpy())
        except (KeyError, TypeError):
            raise HwoptError(f"input '{spec.name}' has type {spec.dtype}, which hwopt cannot generate data "
                             "for; pass --inputs FILE.npz") from None
        specs.append(InputSpec(spec.name, dtype, None if spec.shape is None else tuple(spec.shape)))
    return specs


def _base_feeds(specs: list[InputSpec], inputs: str | os.PathLike | None,
                shapes: Mapping[str, Sequence[int]]) -> Feeds:
    unknown = sorted(set(shapes) - {spec.name for spec in specs})
    if unknown:
        raise UsageError(f"--shape names unknown input(s) {', '.join(unknown)}; the model has "
                         f"{', '.join(spec.name for spec in specs)}")
    if inputs is None:
        return generate_inputs(specs, shapes)
    if shapes:
        raise UsageError("--shape is for generated inputs; --inputs already gives every input's shape")
    if not Path(inputs).is_file():
        raise UsageError(f"{inputs}: no such inputs file")
    return check_feeds(read_npz(inputs), specs, source=str(inputs))


def with_batch(feeds: Mapping[str, np.ndarray], specs: Sequence[InputSpec], batch: int) -> Feeds:
    """`feeds` with every input's leading dim set to `batch`: repeated rows, or the first `batch` rows."""
    resized = {}
    for spec in specs:
        array = feeds[spec.name]
        if array.ndim == 0 or array.shape[0] == batch:
            resized[spec.name] = array
            continue
        leading = spec.shape[0] if spec.shape else None
        if isinstance(leading, int) and leading >= 0:
            raise UsageError(f"--batch {batch}: input '{spec.name}' has a fixed batch dimension of {leading}; "
                             "keep it dynamic (in the export, and in `optimize --shape`) to time other batch sizes")
        resized[spec.name] = np.resize(array, (batch, *array.shape[1:]))
    return resized


def _check_batches(batches: Sequence[int]) -> list[int]:
    batches = list(dict.fromkeys(int(b) for b in batches))
    if not batches or any(b < 1 for b in batches):
        raise UsageError(f"--batch needs positive batch sizes, not {','.join(map(str, batches)) or 'none'}")
    return batches


def device_label(device: str) -> str:
    """The host CPU's model name for CPU runs (what a reader compares), the runtime's device name otherwise."""
    if device.upper().startswith("CPU"):
        return detect_host_cpu().model_name
    return device


def model_name(source: Path) -> str:
    """The model's name for tables: the source of the optimize run that made the artifact, else the file's."""
    if source.is_file():
        return source.stem
    report = _optimize_report(source)
    if report and report.get("source"):
        return Path(str(report["source"])).stem
    return source.name.removesuffix("-hwopt")


def _fidelity(source: Path) -> dict[str, float] | None:
    report = _optimize_report(source) if source.is_dir() else None
    verification = (report or {}).get("verification")
    if not verification or not verification.get("outputs"):
        return None
    # The outputs that decided verification (`--fidelity-output`); the others were reported, not judged.
    deciding = [o for o in verification["outputs"] if o.get("decides", True)] or verification["outputs"]
    fidelity = {"worst_cosine": min(float(o["cosine"]) for o in deciding)}
    threshold = (verification.get("thresholds") or {}).get("min_cosine")
    if threshold is not None:
        fidelity["min_cosine"] = float(threshold)
    return fidelity


def _optimize_report(folder: Path) -> dict | None:
    path = folder / "report.json"
    if not path.is_file() or not (folder / MANIFEST_FILE).is_file():
        return None
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
