"""The Python API: `optimize`, `load` and `targets`.

    import optimizer
    result = optimizer.optimize("yolov8n.onnx", target="cpu", shapes={"images": (1, 3, 320, 320)},
                                output_dir="out")
    result.model_path, result.report.speedup, result.verification.worst_cosine

Every run verifies the optimized model against the original in ONNX Runtime before anything is written to
`output_dir`, and writes through a staging folder, so a failed run leaves no model behind.
"""

from __future__ import annotations

import dataclasses
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
from optimizer.backends.onnxruntime import (
    LatencyStats,
    compare_latency,
    create_session,
    runtime_version,
)
from optimizer.errors import HwoptError, ModelRunError, UsageError, VerificationError
from optimizer.importers.torch_module import export_module, is_torch_module
from optimizer.inputs import Feeds, check_feeds, generate_inputs, load_npz
from optimizer.pipeline import DEFAULT_OPT_LEVEL, pipeline_stages, run_pipeline
from optimizer.quantization.accuracy_budget import search_accuracy_budget
from optimizer.quantization.calibration import calibration_data
from optimizer.quantization.options import DEFAULT_MIN_COSINE, QuantizationOptions
from optimizer.quantization.quantize import QuantizationReport, preprocessing, quantize_model
from optimizer.report import ModelSummary, Report
from optimizer.targets import DEFAULT_TARGET, TargetProfile, all_targets, get_target
from optimizer.verify import OPTIMIZED, ORIGINAL, FidelityThresholds, Verification, verify

MODEL_FILE = "model.onnx"
BUDGET_MIN_COSINE = 1e-6
DATA_FILE = f"{MODEL_FILE}.data"
REPORT_FILE = "report.json"
OUTPUT_FILES = (MODEL_FILE, DATA_FILE, REPORT_FILE)

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
    min_cosine: float | None = None,
    benchmark: bool = True,
    threads: int | None = None,
    force: bool = False,
    example_inputs: Any = None,
    precision: str | None = None,
    quantization: QuantizationOptions | None = None,
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
        min_cosine: the lowest cosine similarity per output that passes verification (default: by precision,
            0.9999 for fp32, 0.99 for int8; see optimizer.quantization.options.DEFAULT_MIN_COSINE).
        benchmark: time both models in ONNX Runtime (median of repeated runs).
        threads: ONNX Runtime intra-op threads for timing and verification (None: the runtime's default).
        force: overwrite an existing model.onnx / report.json in `output_dir`.
        example_inputs: example inputs for exporting a PyTorch module.
        precision: "fp32" (default), "int8", "int8-dynamic", "fp16", "bf16" or "int4"; shorthand for
            `quantization=QuantizationOptions(precision=...)`.
        quantization: every quantization option (calibration method, exclusions, accuracy budget...); its
            `calibration` defaults to the `calibration` argument.

    Raises:
        UsageError, ModelLoadError, InvalidModelError, PassError, VerificationError (all HwoptError).
    """
    started = time.perf_counter()
    profile = get_target(target)
    options = _quantization_options(precision, quantization, calibration)
    if min_cosine is None:
        # With an accuracy budget the budget is the criterion (its report says whether it held); verification
        # still runs and reports every output's fidelity, but does not reject the best model found.
        budgeted = options.max_accuracy_drop is not None
        min_cosine = BUDGET_MIN_COSINE if budgeted else DEFAULT_MIN_COSINE[options.precision]
    _check_options(min_cosine, threads)
    shapes = _normalize_shapes(shapes)
    stages = pipeline_stages(profile.pipeline, opt_level, shapes=shapes)
    temporary_output = output_dir is None
    output_dir = Path(tempfile.mkdtemp(prefix="hwopt-")) if temporary_output else Path(output_dir)
    created = _first_missing_ancestor(output_dir)
    try:
        with tempfile.TemporaryDirectory(prefix="hwopt-original-") as scratch:
            original_path, working, source = _import(model, example_inputs, Path(scratch))
            original_files = _files_of(original_path, working)
            _check_output(output_dir, original_files, force)
            specs = hir.input_specs(working)
            # Read or generate the inputs before the passes run, so a bad --inputs file fails fast.
            feeds, feeds_source = _feeds(specs, shapes, inputs, options) if verify_outputs or benchmark \
                else ({}, "none")
            original = _summary(working, original_path, original_files)
            import_seconds = time.perf_counter() - started
            pipeline_report = run_pipeline(working, stages)
            quantization_report = _quantize(working, options, profile, threads) if options.quantized else None
            pass_seconds = time.perf_counter() - started - import_seconds

            staging = _staging_folder(output_dir)
            try:
                staged_model = staging / MODEL_FILE
                staged_files = hir.save_model(working, staged_model)
                verification, latency_original, latency_optimized = _verify_and_time(
                    original_path, staged_model, feeds, feeds_source, verify_outputs, benchmark,
                    FidelityThresholds(min_cosine=min_cosine), threads, _fidelity_advice(options),
                )
                report = Report(
                    source=source,
                    target=profile.name,
                    runtime=profile.runtime,
                    runtime_version=runtime_version(),
                    opt_level=opt_level,
                    inputs=[str(spec) for spec in specs],
                    original=original,
                    optimized=_summary(working, output_dir / MODEL_FILE, staged_files),
                    pipeline=pipeline_report,
                    verification=verification,
                    latency_original=latency_original,
                    latency_optimized=latency_optimized,
                    threads=threads,
                    quantization=quantization_report,
                    seconds={"import": import_seconds, "passes": pass_seconds,
                             "total": time.perf_counter() - started},
                )
                report.write(staging / REPORT_FILE)
                files = _publish([*staged_files, staging / REPORT_FILE], output_dir)
            finally:
                shutil.rmtree(staging, ignore_errors=True)
    except BaseException:
        _remove_if_empty(output_dir if temporary_output else created)
        raise
    return Result(output_dir / MODEL_FILE, report, verification, files)


def _quantization_options(precision: str | None, options: QuantizationOptions | None,
                          calibration: Any) -> QuantizationOptions:
    if options is None:
        return QuantizationOptions(precision=precision or "fp32", calibration=calibration)
    if not isinstance(options, QuantizationOptions):
        raise UsageError(f"quantization must be a QuantizationOptions, not {type(options).__name__}")
    if precision is not None:
        options = dataclasses.replace(options, precision=precision)
    if options.calibration is None and calibration is not None:
        options = dataclasses.replace(options, calibration=calibration)
    return options


def _quantize(model: ir.Model, options: QuantizationOptions, profile: TargetProfile,
              threads: int | None) -> QuantizationReport:
    if options.max_accuracy_drop is not None:
        return search_accuracy_budget(model, options, runtime=profile.runtime, threads=threads)
    return quantize_model(model, options, runtime=profile.runtime, threads=threads)


def _fidelity_advice(options: QuantizationOptions) -> str:
    if not options.quantized:
        return ""
    advice = "; keep the sensitive layers float with --max-accuracy-drop, or --exclude them"
    if options.precision == "int8":
        advice += ", or try --precision int8-dynamic (transformers)"
    return advice + ", or accept it with --min-cosine"


def _check_options(min_cosine: float, threads: int | None) -> None:
    if not isinstance(min_cosine, (int, float)) or not 0.0 < min_cosine <= 1.0:
        raise UsageError(f"min_cosine must be a number in (0, 1], not {min_cosine!r}")
    if threads is not None and (not isinstance(threads, int) or threads <= 0):
        raise UsageError(f"threads must be a positive integer, not {threads!r}")


def _verify_and_time(
    original: Path, optimized: Path, feeds: Feeds, feeds_source: str, verify_outputs: bool, benchmark: bool,
    thresholds: FidelityThresholds, threads: int | None, advice: str = "",
) -> tuple[Verification | None, LatencyStats | None, LatencyStats | None]:
    verification = latency_original = latency_optimized = None
    try:
        if verify_outputs:
            verification = verify(original, optimized, feeds, inputs_source=feeds_source,
                                  thresholds=thresholds, threads=threads)
            if not verification.passed:
                raise VerificationError(verification.failure_message() + advice)
        if benchmark:
            latency_original, latency_optimized = compare_latency(
                create_session(original, threads=threads, label=ORIGINAL),
                create_session(optimized, threads=threads, label=OPTIMIZED),
                feeds,
            )
    except ModelRunError as error:
        if error.which == ORIGINAL and error.phase == "run" and feeds_source == "generated":
            raise ModelRunError(
                f"{error}; the generated inputs may not suit this model: give real ones with "
                "--inputs FILE.npz (inputs=...) or fix shapes with --shape (shapes=...)",
                which=error.which, phase=error.phase,
            ) from None
        raise
    return verification, latency_original, latency_optimized


def _first_missing_ancestor(folder: Path) -> Path | None:
    """The outermost folder of `folder`'s path that does not exist yet (what a failed run must clean up)."""
    missing = None
    for candidate in [folder, *folder.parents]:
        if candidate.exists():
            break
        missing = candidate
    return missing


def _remove_if_empty(folder: Path | None) -> None:
    """Remove a folder this run created if the run left nothing in it (empty subfolders aside)."""
    if folder is None or not folder.is_dir():
        return
    if all(path.is_dir() for path in folder.rglob("*")):
        shutil.rmtree(folder, ignore_errors=True)


def _staging_folder(output_dir: Path) -> Path:
    """A temporary folder inside `output_dir` (same file system, so publishing is a rename)."""
    try:
        output_dir.mkdir(parents=True, exist_ok=True)
        return Path(tempfile.mkdtemp(prefix=".hwopt-staging-", dir=output_dir))
    except (FileExistsError, NotADirectoryError):
        raise UsageError(f"{output_dir}: cannot be used as the output directory") from None
    except OSError as error:
        raise HwoptError(f"{output_dir}: cannot write there ({error.strerror or error})") from None


def _normalize_shapes(shapes: Mapping[str, Sequence[int]] | None) -> dict[str, tuple[int, ...]]:
    if shapes is not None and not isinstance(shapes, Mapping):
        raise UsageError(f"shapes must map input names to shapes, e.g. {{'images': (1, 3, 320, 320)}}, "
                         f"not {type(shapes).__name__}")
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
    # Weights the caller's model memory-maps are written out as external data rather than loaded into it,
    # so the caller's model is left exactly as it was.
    hir.save_model(working, path, external_data=hir.has_external_data(working) or None)
    label = "onnx_ir.Model" if isinstance(model, ir.Model) else type(model).__name__
    # Optimize a fresh copy: the caller's in-memory model stays as it was.
    return path, hir.load_model(path), label


def _check_output(output_dir: Path, original_files: Sequence[Path], force: bool) -> None:
    if output_dir.exists() and not output_dir.is_dir():
        raise UsageError(f"{output_dir}: exists and is not a directory")
    for name in OUTPUT_FILES:
        target = output_dir / name
        if not target.exists():
            continue
        if any(_same_file(target, original) for original in original_files):
            raise UsageError(f"{target}: is part of the input model; choose another output directory")
        if not force:
            raise UsageError(f"{target}: already exists; pass --force (force=True) to overwrite")


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


def _feeds(specs, shapes, inputs, options: QuantizationOptions) -> tuple[Feeds, str]:
    if inputs is not None:
        if isinstance(inputs, (str, os.PathLike)):
            return load_npz(inputs, specs), "user"
        return check_feeds(inputs, specs, source="inputs"), "user"
    if options.calibration is not None:
        data = calibration_data(options.calibration, specs, preprocessing=preprocessing(options), limit=1,
                                shapes=shapes)
        for sample in data:
            return sample, "calibration"
        raise UsageError("the calibration data holds no samples")
    return generate_inputs(specs, shapes), "generated"


def _publish(staged_files: Sequence[Path], output_dir: Path) -> list[Path]:
    """Move the verified files into place (data, model, report) and drop a stale data file of an older run."""
    published = []
    for staged in staged_files:
        destination = output_dir / staged.name
        os.replace(staged, destination)
        published.append(destination)
    stale = output_dir / DATA_FILE
    if stale.exists() and stale not in published:  # from an earlier run; _check_output required --force
        stale.unlink()
    return published
