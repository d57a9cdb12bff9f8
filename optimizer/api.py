"""The Python API: `optimize`, `load` and `targets`.

    import optimizer
    result = optimizer.optimize("yolov8n.onnx", target="cpu", shapes={"images": (1, 3, 320, 320)},
                                output_dir="out")
    result.model_path, result.report.speedup, result.verification.worst_cosine

Every run verifies the optimized model against the original in ONNX Runtime before anything is written to
`output_dir`, and writes through a staging folder, so a failed run leaves no model behind.
"""

from __future__ import annotations

import os
import shutil
import tempfile
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import onnx_ir as ir

from optimizer import ir as hir
from optimizer.backends.onnxruntime import compare_latency, create_session, runtime_version
from optimizer.errors import ModelRunError, UsageError, VerificationError
from optimizer.importers.torch_module import export_module, is_torch_module
from optimizer.inputs import Feeds, check_feeds, first_sample, generate_inputs, load_npz
from optimizer.pipeline import DEFAULT_OPT_LEVEL, fix_shapes_stage, pipeline_stages, run_pipeline
from optimizer.report import ModelSummary, Report
from optimizer.targets import DEFAULT_TARGET, TargetProfile, all_targets, get_target
from optimizer.verify import DEFAULT_MIN_COSINE, FidelityThresholds, Verification, verify

MODEL_FILE = "model.onnx"
REPORT_FILE = "report.json"

ModelSource = str | os.PathLike | ir.Model | Any  # Any: a torch.nn.Module


@dataclass
class Result:
    """What `optimize` produced: the model file, the report, and the verification (None with verify=False)."""

    model_path: Path
    report: Report
    verification: Verification | None
    files: list[Path] = field(default_factory=list)


def targets() -> list[TargetProfile]:
    """The device profiles hwopt can optimize for."""
    return all_targets()


def load(model: ModelSource, *, example_inputs: Any = None, **export_options: Any) -> ir.Model:
    """Load an ONNX file, or export a PyTorch module (with `example_inputs`), into the onnx-ir IR."""
    if isinstance(model, ir.Model):
        return model
    if isinstance(model, (str, os.PathLike)):
        return hir.load_model(model)
    if is_torch_module(model):
        return export_module(model, example_inputs, **export_options)
    raise UsageError(f"cannot load a {type(model).__name__}: give an ONNX file path, an onnx_ir.Model "
                     "or a torch.nn.Module with example_inputs")


def optimize(
    model: ModelSource,
    target: str = DEFAULT_TARGET,
    *,
    shapes: Mapping[str, Sequence[int]] | None = None,
    calibration: Any = None,
    inputs: str | os.PathLike | Mapping[str, Any] | None = None,
    output_dir: str | os.PathLike | None = None,
    opt_level: int = DEFAULT_OPT_LEVEL,
    verify_outputs: bool = True,
    min_cosine: float = DEFAULT_MIN_COSINE,
    benchmark: bool = True,
    threads: int | None = None,
    force: bool = False,
    example_inputs: Any = None,
) -> Result:
    """Optimize `model` for `target` and write `model.onnx` and `report.json` into `output_dir`.

    Args:
        model: an ONNX file path, an onnx_ir.Model, or a torch.nn.Module (with `example_inputs`).
        target: a target name or alias (see `targets()`).
        shapes: input name -> full static shape, fixing dynamic dims (e.g. {"images": (1, 3, 320, 320)}).
        calibration: representative inputs (an .npz path, a dict of arrays, or an iterable of dicts); passes
            that calibrate use all of it, verification uses the first sample when `inputs` is not given.
        inputs: inputs for verification and timing (an .npz path or a dict of arrays); generated from the
            input specs when neither this nor `calibration` is given.
        output_dir: where to write; a new temporary folder when None.
        opt_level: 0 (verify and time only) to 3 (everything, including an opset upgrade).
        verify_outputs: run both models and compare outputs; False skips it (for huge models).
        min_cosine: the lowest cosine similarity per output that passes verification.
        benchmark: time both models in ONNX Runtime (median of repeated runs).
        threads: ONNX Runtime intra-op threads for timing and verification (None: the runtime's default).
        force: overwrite an existing model.onnx / report.json in `output_dir`.
        example_inputs: example inputs for exporting a PyTorch module.

    Raises:
        UsageError, ModelLoadError, InvalidModelError, PassError, VerificationError (all HwoptError).
    """
    started = time.perf_counter()
    profile = get_target(target)
    shapes = _normalize_shapes(shapes)
    stages = pipeline_stages(profile.pipeline, opt_level)
    if shapes:
        stages = (fix_shapes_stage(shapes), *stages)
    output_dir = Path(output_dir) if output_dir is not None else Path(tempfile.mkdtemp(prefix="hwopt-"))

    with tempfile.TemporaryDirectory(prefix="hwopt-original-") as scratch:
        original_path, working, source = _import(model, example_inputs, Path(scratch))
        output_path = output_dir / MODEL_FILE
        _check_output(output_dir, original_path, force)
        specs = hir.input_specs(working)
        original = _summary(working, original_path, _files_of(original_path, working))

        import_seconds = time.perf_counter() - started
        pipeline_report = run_pipeline(working, stages)
        pass_seconds = time.perf_counter() - started - import_seconds

        created_dir = not output_dir.exists()
        output_dir.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(prefix=".hwopt-staging-", dir=output_dir))
        try:
            staged_files = hir.save_model(working, staging / MODEL_FILE)
            verification = None
            if verify_outputs or benchmark:
                feeds, feeds_source = _feeds(specs, shapes, inputs, calibration)
            try:
                if verify_outputs:
                    verification = verify(
                        original_path, staging / MODEL_FILE, feeds, inputs_source=feeds_source,
                        thresholds=FidelityThresholds(min_cosine=min_cosine), threads=threads,
                    )
                    if not verification.passed:
                        raise VerificationError(verification.failure_message())
                latency_original = latency_optimized = None
                if benchmark:
                    latency_original, latency_optimized = compare_latency(
                        create_session(original_path, threads=threads, label="original model"),
                        create_session(staging / MODEL_FILE, threads=threads, label="optimized model"),
                        feeds,
                    )
            except ModelRunError as error:
                if error.model == "original model" and feeds_source == "generated":
                    raise ModelRunError(
                        f"{error}; the generated inputs may not suit this model: give real ones with "
                        "--inputs FILE.npz (inputs=...) or fix shapes with --shape", model=error.model,
                    ) from None
                raise
            files = _publish(staged_files, output_dir)
        except BaseException:
            shutil.rmtree(staging, ignore_errors=True)
            if created_dir and not any(output_dir.iterdir()):
                output_dir.rmdir()
            raise
        shutil.rmtree(staging, ignore_errors=True)

    report = Report(
        source=source,
        target=profile.name,
        runtime=profile.runtime,
        runtime_version=runtime_version(),
        opt_level=opt_level,
        inputs=[str(spec) for spec in specs],
        original=original,
        optimized=_summary(working, output_path, files),
        pipeline=pipeline_report,
        verification=verification,
        latency_original=latency_original,
        latency_optimized=latency_optimized,
        threads=threads,
        seconds={"import": import_seconds, "passes": pass_seconds,
                 "total": time.perf_counter() - started},
    )
    report.write(output_dir / REPORT_FILE)
    return Result(output_path, report, verification, [*files, output_dir / REPORT_FILE])


def _normalize_shapes(shapes: Mapping[str, Sequence[int]] | None) -> dict[str, tuple[int, ...]]:
    normalized = {}
    for name, dims in (shapes or {}).items():
        try:
            normalized[name] = tuple(int(d) for d in dims)
        except (TypeError, ValueError):
            raise UsageError(f"shape of '{name}' must be a sequence of integers, not {dims!r}") from None
    return normalized


def _import(model: ModelSource, example_inputs: Any, scratch: Path) -> tuple[Path, ir.Model, str]:
    """The model as a file ONNX Runtime can read (the user's own, never modified) and a working copy in IR."""
    if isinstance(model, (str, os.PathLike)):
        return Path(model), hir.load_model(model), str(model)
    working = load(model, example_inputs=example_inputs)
    path = scratch / "original.onnx"
    hir.save_model(working, path)
    label = "onnx_ir.Model" if isinstance(model, ir.Model) else type(model).__name__
    # Optimize a fresh copy: the caller's in-memory model stays as it was.
    return path, hir.load_model(path), label


def _check_output(output_dir: Path, original_path: Path, force: bool) -> None:
    if output_dir.exists() and not output_dir.is_dir():
        raise UsageError(f"{output_dir}: exists and is not a directory")
    for name in (MODEL_FILE, f"{MODEL_FILE}.data", REPORT_FILE):
        target = output_dir / name
        if target.exists() and _same_file(target, original_path):
            raise UsageError(f"{target}: is the input model; choose another output directory")
    for name in (MODEL_FILE, REPORT_FILE):
        if (output_dir / name).exists() and not force:
            raise UsageError(f"{output_dir / name}: already exists; pass --force (force=True) to overwrite")


def _same_file(a: Path, b: Path) -> bool:
    try:
        return a.samefile(b)
    except OSError:
        return False


def _files_of(model_path: Path, model: ir.Model) -> list[Path]:
    files = {model_path}
    for value in model.graph.initializers.values():
        if isinstance(value.const_value, ir.ExternalTensor):
            files.add(model_path.parent / value.const_value.location)
    return sorted(files)


def _summary(model: ir.Model, path: Path, files: Sequence[Path]) -> ModelSummary:
    return ModelSummary(
        path=str(path),
        size_bytes=sum(f.stat().st_size for f in files if f.exists()),
        nodes=hir.count_nodes(model),
        op_histogram=hir.op_histogram(model),
        opset=hir.default_opset_version(model),
    )


def _feeds(specs, shapes, inputs, calibration) -> tuple[Feeds, str]:
    if inputs is not None:
        if isinstance(inputs, (str, os.PathLike)):
            return load_npz(inputs, specs), "user"
        return check_feeds(inputs, specs, source="inputs"), "user"
    if calibration is not None:
        return first_sample(calibration, specs), "calibration"
    return generate_inputs(specs, shapes), "generated"


def _publish(staged_files: Sequence[Path], output_dir: Path) -> list[Path]:
    """Move the verified files into place, data before model, and drop a stale data file of an older run."""
    published = []
    for staged in staged_files:
        destination = output_dir / staged.name
        os.replace(staged, destination)
        published.append(destination)
    stale = output_dir / f"{MODEL_FILE}.data"
    if stale.exists() and stale not in published:
        stale.unlink()
    return published
