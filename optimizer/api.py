"""The Python API: `optimize`, `check`, `load` and `targets`.

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
from optimizer.artifact import MANIFEST_FILE, Artifact, load_artifact
from optimizer.backends.base import PreflightIssue
from optimizer.build import BuildInputs, Candidate, build_candidate, choose, prepare_candidate
from optimizer.errors import HwoptError, ModelRunError, RuntimeNotAvailableError, UsageError
from optimizer.importers.torch_module import export_module, is_torch_module
from optimizer.inputs import Feeds, check_feeds, generate_inputs, load_npz
from optimizer.passes.block_sparse_matmul import DEFAULT_BLOCK_SHAPE
from optimizer.passes.freeze_inputs import freeze_value
from optimizer.pipeline import DEFAULT_OPT_LEVEL, pipeline_stages
from optimizer.preflight import PreflightError, errors_of
from optimizer.pruning.options import PruningOptions
from optimizer.pruning.stage import fine_tune_module, prune_imported, record_pruning_cost
from optimizer.quantization.calibration import calibration_data
from optimizer.quantization.options import DEFAULT_MIN_COSINE, QuantizationOptions
from optimizer.quantization.quantize import preprocessing
from optimizer.report import ModelSummary, Report
from optimizer.targets import DEFAULT_TARGET, TargetProfile, all_targets, get_target
from optimizer.targets.plan import Plan, check_precision, make_plan
from optimizer.verify import ORIGINAL, FidelityThresholds, Verification, run_reference

MODEL_FILE = "model.onnx"
BUDGET_MIN_COSINE = 1e-6
DATA_FILE = f"{MODEL_FILE}.data"
REPORT_FILE = "report.json"
# Files whose presence means a previous run wrote here (overwriting them needs force=True).
OUTPUT_FILES = (MODEL_FILE, DATA_FILE, REPORT_FILE, MANIFEST_FILE)

ModelSource = str | os.PathLike | ir.Model | Any  # Any: a torch.nn.Module


@dataclass
class Result:
    """What `optimize` produced: the ONNX model, the report, the verification (None with verify=False), every
    file written, and the artifact (the runtime's files and manifest.json, in the same folder)."""

    model_path: Path
    report: Report
    verification: Verification | None
    files: list[Path] = field(default_factory=list)
    artifact: Artifact | None = None


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
    runtime: str | None = None,
    freeze_inputs: Mapping[str, Any] | None = None,
    fidelity_outputs: Sequence[str] | None = None,
    io_layout: str | None = None,
    io_dtype: str | None = None,
    pruning: PruningOptions | None = None,
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
        precision: "fp32", "int8", "int8-dynamic", "fp16", "bf16" or "int4"; None lets the target's plan
            choose (e.g. INT8 on the CPU when calibration data is given, FP16 on NVIDIA GPUs).
        quantization: every quantization option (calibration method, exclusions, accuracy budget...); its
            `calibration` defaults to the `calibration` argument.
        runtime: force one runtime ("onnxruntime", "openvino", "tensorrt", "tflite") instead of the target's
            plan (the host CPU otherwise measures ONNX Runtime and OpenVINO and keeps the faster).
        freeze_inputs: input name -> constant value (e.g. {"sr": 16000}): configuration inputs become constants,
            the branches they select fold away, and they leave the artifact's inputs.
        fidelity_outputs: the outputs whose fidelity decides (default: all); the others are still reported.
        io_layout: LiteRT (tflite) only: "nhwc" gives the .tflite channels-last image inputs and outputs;
            "onnx" (the default) keeps the model's own layout.
        io_dtype: LiteRT only: "int8" or "uint8" gives a full-integer INT8 .tflite integer inputs and outputs
            (their scale and zero point are in the manifest); "float32" (the default) keeps them float.
            Verification quantizes and transposes the original's inputs as a deployment would.
        pruning: prune first (optimizer.pruning.PruningOptions: unstructured, N:M, block or channels), with
            label-free recovery on `calibration` data; the artifact is verified against the pruned model and
            report.pruning says what pruning cost against the original. Block-sparse MatMuls run on hwopt's
            kernel in runtimes that have it (OpenVINO) where the whole model measures faster (report.kernels).
            For a torch.nn.Module with `pruning.fine_tune_steps`, it is pruned and fine-tuned against its own
            outputs before export, on `pruning.calibration` (the module's inputs as it takes them) or
            `example_inputs`.

    Raises:
        UsageError, ModelLoadError, InvalidModelError, PassError, VerificationError (all HwoptError).
    """
    started = time.perf_counter()
    profile = get_target(target)
    plan, options = _plan(profile, precision, quantization, calibration, runtime)
    if min_cosine is None:
        # With an accuracy budget the budget is the criterion (its report says whether it held); verification
        # still runs and reports every output's fidelity, but does not reject the best model found.
        budgeted = options.max_accuracy_drop is not None
        min_cosine = BUDGET_MIN_COSINE if budgeted else DEFAULT_MIN_COSINE[options.precision]
    _check_options(min_cosine, threads)
    _check_io_options(plan, io_layout, io_dtype)
    shapes = _normalize_shapes(shapes)
    pipeline_stages(plan.pipeline_for(plan.backends[0]), opt_level, shapes=shapes)  # a bad opt level fails here
    temporary_output = output_dir is None
    output_dir = Path(tempfile.mkdtemp(prefix="hwopt-")) if temporary_output else Path(output_dir)
    created = _first_missing_ancestor(output_dir)
    try:
        with tempfile.TemporaryDirectory(prefix="hwopt-original-") as scratch:
            fine_tune = None
            if pruning is not None and pruning.fine_tune_steps and is_torch_module(model):
                original_module = model
                model, pruning, fine_tune = fine_tune_module(model, pruning, example_inputs, pruning.calibration)
            original_path, working, source = _import(model, example_inputs, Path(scratch))
            if fine_tune is not None:
                # The original is the module before pruning: what the artifact's cost is measured against.
                unpruned = Path(scratch) / "unpruned"
                unpruned.mkdir()
                original_path, _, source = _import(original_module, example_inputs, unpruned)
            original_files = _files_of(original_path, working)
            _check_output(output_dir, original_files, force)
            specs = hir.input_specs(working)
            # Read or generate the inputs before the passes run, so a bad --inputs file fails fast.
            frozen = _frozen_inputs(freeze_inputs, specs)
            feeds, feeds_source = _feeds(specs, shapes, inputs, options) if verify_outputs or benchmark \
                else ({}, "none")
            feeds = {**feeds, **frozen} if feeds else feeds
            original = _summary(working, original_path, original_files)
            build_source, pruning_report = original_path, None
            if pruning is not None:
                build_source, pruning_report = prune_imported(
                    working, _with_calibration(pruning, options), Path(scratch), shapes=shapes,
                    preprocessing=preprocessing(options), threads=threads)
                if fine_tune is not None:
                    pruning_report.recovery.insert(0, fine_tune)
                elif pruning.fine_tune_steps:
                    pruning_report.warnings.append("fine_tune_steps applies to PyTorch modules only: this ONNX "
                                                   "model was pruned without a fine-tune")
            # Run the original only once a candidate needs it: a bad --shape should fail in its pass first.
            reference = ReferenceOutputs(build_source, feeds, feeds_source, threads) if verify_outputs else None
            import_seconds = time.perf_counter() - started
            shared = BuildInputs(original_path, plan, opt_level, shapes, options, feeds, feeds_source, reference,
                                 _thresholds(min_cosine, fidelity_outputs), benchmark, threads,
                                 _fidelity_advice(options), frozen, io_layout, io_dtype,
                                 block_shape=_block_shape(pruning))
            staging = _staging_folder(output_dir)
            try:
                candidates = _build_candidates(working, build_source, shared, staging)
                chosen = choose(candidates)
                if pruning_report is not None and reference is not None:
                    record_pruning_cost(pruning_report, _run_original(original_path, feeds, feeds_source, threads),
                                        reference.get())
                artifact = chosen.artifact
                report = Report(
                    source=source,
                    target=profile.name,
                    runtime=chosen.backend,
                    runtime_version=artifact.manifest.runtime_version,
                    opt_level=opt_level,
                    inputs=[str(spec) for spec in specs],
                    original=original,
                    optimized=_artifact_summary(artifact, output_dir),
                    pipeline=chosen.pipeline,
                    verification=chosen.verification,
                    latency_original=chosen.latency_original,
                    latency_optimized=chosen.latency,
                    threads=threads,
                    quantization=chosen.quantization,
                    device=artifact.manifest.device,
                    precision=plan.precision,
                    plan_notes=[*plan.notes, *chosen.notes],
                    preflight=chosen.preflight,
                    candidates=[c.summary(c is chosen) for c in candidates],
                    pruning=pruning_report,
                    kernels=chosen.kernels,
                    artifact_files=sorted(artifact.manifest.files),
                    artifact_bytes=artifact.size_bytes,
                    seconds={"import": import_seconds, "total": time.perf_counter() - started},
                )
                report.write(artifact.folder / REPORT_FILE)
                files = _publish(artifact.folder, output_dir)
            finally:
                shutil.rmtree(staging, ignore_errors=True)
    except BaseException:
        _remove_if_empty(output_dir if temporary_output else created)
        raise
    return Result(output_dir / MODEL_FILE, report, chosen.verification, files,
                  load_artifact(output_dir, check_files=False))


@dataclass
class CheckResult:
    """What `check` found: the plan, and per runtime of the plan every node it cannot run as planned."""

    plan: Plan
    issues: dict[str, list[PreflightIssue]]
    errors: dict[str, str] = field(default_factory=dict)
    """Runtimes that could not be checked at all (not installed), with the reason."""

    @property
    def ok(self) -> bool:
        """True when at least one runtime of the plan can compile the model (fallbacks allowed)."""
        return any(not errors_of(issues) for issues in self.issues.values())


def check(
    model: ModelSource,
    target: str = DEFAULT_TARGET,
    *,
    shapes: Mapping[str, Sequence[int]] | None = None,
    precision: str | None = None,
    quantization: QuantizationOptions | None = None,
    calibration: Any = None,
    opt_level: int = DEFAULT_OPT_LEVEL,
    runtime: str | None = None,
    threads: int | None = None,
    example_inputs: Any = None,
    freeze_inputs: Mapping[str, Any] | None = None,
) -> CheckResult:
    """Pre-flight only: plan for `target`, run the passes and quantization in memory, and list every node the
    target cannot run as planned. Nothing is written."""
    profile = get_target(target)
    plan, options = _plan(profile, precision, quantization, calibration, runtime)
    shapes = _normalize_shapes(shapes)
    result = CheckResult(plan, {})
    with tempfile.TemporaryDirectory(prefix="hwopt-original-") as scratch:
        original_path, working, _ = _import(model, example_inputs, Path(scratch))
        frozen = _frozen_inputs(freeze_inputs, hir.input_specs(working))
        for backend, copy in _model_per_backend(plan.backends, working, original_path):
            try:
                candidate = prepare_candidate(copy, backend, plan, opt_level, shapes, options, threads, frozen)
            except RuntimeNotAvailableError as error:
                result.errors[backend] = str(error)
                continue
            result.issues[backend] = candidate.preflight
    return result


def _build_candidates(working: ir.Model, original_path: Path, shared: BuildInputs,
                      staging: Path) -> list[Candidate]:
    """One candidate per runtime of the plan. With several, a runtime that cannot take the model (pre-flight
    errors) is recorded and the others go on; with one, its pre-flight error is the run's error."""
    backends = shared.plan.backends
    candidates = []
    for backend, model in _model_per_backend(backends, working, original_path):
        try:
            candidates.append(build_candidate(model, backend, shared, staging / backend))
        except (PreflightError, RuntimeNotAvailableError) as error:
            if len(backends) == 1:
                raise
            candidates.append(Candidate(backend, error=error))
    return candidates


def _thresholds(min_cosine: float, outputs: Sequence[str] | None) -> FidelityThresholds:
    if outputs is not None and (isinstance(outputs, str) or not all(isinstance(o, str) for o in outputs)):
        raise UsageError(f"fidelity_outputs must be a list of output names, not {outputs!r}")
    return FidelityThresholds(min_cosine=min_cosine, outputs=tuple(outputs) if outputs else None)


def _frozen_inputs(values: Mapping[str, Any] | None, specs) -> dict[str, Any]:
    if values is None:
        return {}
    if not isinstance(values, Mapping):
        raise UsageError(f"freeze_inputs must map input names to values, e.g. {{'sr': 16000}}, not "
                         f"{type(values).__name__}")
    by_name = {spec.name: spec for spec in specs}
    unknown = sorted(set(values) - set(by_name))
    if unknown:
        raise UsageError(f"--freeze-input names unknown input(s) {', '.join(unknown)}; the model's inputs are "
                         f"{', '.join(by_name) or 'none'}")
    return {name: freeze_value(name, value, by_name[name].dtype, by_name[name].shape)
            for name, value in values.items()}


class ReferenceOutputs:
    """The original model's outputs on the run's inputs, computed on first use and kept."""

    def __init__(self, original_path: Path, feeds: Feeds, feeds_source: str, threads: int | None) -> None:
        self._args = (original_path, feeds, feeds_source, threads)
        self._outputs: dict[str, Any] | None = None

    def get(self) -> dict[str, Any]:
        if self._outputs is None:
            self._outputs = _run_original(*self._args)
        return self._outputs


def _run_original(original_path: Path, feeds: Feeds, feeds_source: str, threads: int | None) -> dict[str, Any]:
    try:
        return run_reference(original_path, feeds, label=ORIGINAL, threads=threads)
    except ModelRunError as error:
        if error.phase == "run" and feeds_source == "generated":
            raise ModelRunError(
                f"{error}; the generated inputs may not suit this model: give real ones with "
                "--inputs FILE.npz (inputs=...) or fix shapes with --shape (shapes=...)",
                which=error.which, phase=error.phase,
            ) from None
        raise


def _artifact_summary(artifact: Artifact, output_dir: Path) -> ModelSummary:
    """The artifact's size on disk and the graph of its ONNX model (what every runtime here compiles from)."""
    onnx_path = artifact.folder / MODEL_FILE
    model = hir.load_model(onnx_path)
    return ModelSummary(
        path=str(output_dir / artifact.manifest.entry),
        size_bytes=artifact.runtime_bytes,  # report.artifact_bytes has the whole folder
        nodes=hir.count_nodes(model),
        op_histogram=hir.op_histogram(model),
        opset=hir.default_opset_version(model),
    )


def _plan(profile: TargetProfile, precision: str | None, quantization: QuantizationOptions | None,
          calibration: Any, runtime: str | None) -> tuple[Plan, QuantizationOptions]:
    """The target's plan and the quantization options at the plan's precision."""
    options, requested = _quantization_options(precision, quantization, calibration)
    plan = make_plan(profile, requested, calibrated=options.calibration is not None, runtime=runtime)
    if requested is None and plan.precision not in ("int8", "int8-dynamic") and (
            options.bias_correction or options.smooth_quant is not None):
        flag = "--bias-correction" if options.bias_correction else "--smooth-quant"
        raise UsageError(f"{flag} needs an int8 precision, but target '{profile.name}' planned {plan.precision}"
                         + ("" if options.calibration is not None else " (no --calibration was given)")
                         + ": give --precision int8 or int8-dynamic")
    options = dataclasses.replace(options, precision=plan.precision)
    check_precision(plan)
    return plan, options


def _model_per_backend(backends: Sequence[str], working: ir.Model, original_path: Path):
    """Each backend's own copy of the imported model (passes change it in place); the last one takes
    `working` itself rather than loading it once more."""
    for index, backend in enumerate(backends):
        yield backend, working if index == len(backends) - 1 else hir.load_model(original_path)


def _quantization_options(precision: str | None, options: QuantizationOptions | None,
                          calibration: Any) -> tuple[QuantizationOptions, str | None]:
    """The quantization options, and the precision the caller asked for (None: the target's plan decides)."""
    if options is None:
        return QuantizationOptions(calibration=calibration), precision
    if not isinstance(options, QuantizationOptions):
        raise UsageError(f"quantization must be a QuantizationOptions, not {type(options).__name__}")
    if options.calibration is None and calibration is not None:
        options = dataclasses.replace(options, calibration=calibration)
    return options, precision or options.precision


def _block_shape(pruning: PruningOptions | None) -> tuple[int, int]:
    """The blocks a block-pruned model was pruned in (what its weights are sparse in), else the kernel's default."""
    if pruning is not None and pruning.method == "block":
        return pruning.block_shape
    return DEFAULT_BLOCK_SHAPE


def _with_calibration(pruning: PruningOptions, options: QuantizationOptions) -> PruningOptions:
    """Pruning's options with the run's calibration data when they name none of their own."""
    if isinstance(pruning, PruningOptions) and pruning.calibration is None and options.calibration is not None:
        return dataclasses.replace(pruning, calibration=options.calibration)
    return pruning


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


def _check_io_options(plan: Plan, io_layout: str | None, io_dtype: str | None) -> None:
    """--io-layout and --io-dtype shape a .tflite's inputs and outputs: an error for any other runtime."""
    if io_layout is None and io_dtype is None:
        return
    if "tflite" not in plan.backends:
        given = " and ".join(flag for flag, value in (("--io-layout", io_layout), ("--io-dtype", io_dtype))
                             if value is not None)
        raise UsageError(f"{given} apply to the tflite runtime (LiteRT); target {plan.target.name} plans "
                         f"{', '.join(plan.backends)}")
    from optimizer.backends.litert.backend import check_io_options

    check_io_options(io_layout, io_dtype, plan.precision)


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


def _publish(staged: Path, output_dir: Path) -> list[Path]:
    """Move the verified artifact's files into place, the manifest and report last, and drop files of an
    earlier artifact in `output_dir` that this one does not have (_check_output required force for that)."""
    previous = _previous_artifact_files(output_dir)
    names = sorted(p.relative_to(staged).as_posix() for p in staged.rglob("*") if p.is_file())
    names.sort(key=lambda name: name in (MANIFEST_FILE, REPORT_FILE))
    published = []
    for name in names:
        destination = output_dir / name
        destination.parent.mkdir(parents=True, exist_ok=True)
        os.replace(staged / name, destination)
        published.append(destination)
    for stale in previous - set(names):
        (output_dir / stale).unlink(missing_ok=True)
    return published


def _previous_artifact_files(output_dir: Path) -> set[str]:
    files = {DATA_FILE} if (output_dir / DATA_FILE).exists() else set()
    try:
        files |= set(load_artifact(output_dir, check_files=False).manifest.files)
    except HwoptError:
        pass  # no artifact there, or an unreadable manifest: nothing of it is removed
    return {name for name in files if (output_dir / name).resolve().is_relative_to(output_dir.resolve())}
