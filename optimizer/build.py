"""One candidate artifact: passes for its runtime, pre-flight, quantization, compile, manifest, verify, time.

`optimize` builds one candidate per runtime of the plan (two on the host CPU: ONNX Runtime and OpenVINO) and
keeps the fastest that verifies. Each candidate starts from its own copy of the imported model, because the
pipeline and the INT8 scheme depend on the runtime (ORT fuses QDQ around outputs, OpenVINO around inputs).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import onnx_ir as ir

from optimizer import ir as hir
from optimizer.artifact import Artifact, Manifest, model_io_specs, write_manifest
from optimizer.backends.base import CompileOptions, PreflightIssue, Session
from optimizer.backends.onnxruntime import LatencyStats, compare_latency, create_session
from optimizer.backends.registry import get_backend
from optimizer.errors import HwoptError, ModelRunError, UsageError, VerificationError
from optimizer.hot_operators import HotOperatorReport, candidate_groups, substitute_hot_operators
from optimizer.inputs import Feeds
from optimizer.passes.block_sparse_matmul import DEFAULT_BLOCK_SHAPE
from optimizer.pipeline import PipelineReport, pipeline_stages, run_pipeline
from optimizer.preflight import preflight, raise_on_errors
from optimizer.quantization.accuracy_budget import search_accuracy_budget
from optimizer.quantization.calibration import calibration_data
from optimizer.quantization.options import QuantizationOptions
from optimizer.quantization.quantize import QuantizationReport, preprocessing, quantize_model
from optimizer.quantization.schemes import COMPUTE_OPS
from optimizer.targets.plan import Plan
from optimizer.verify import OPTIMIZED, FidelityThresholds, Verification, compare_runs

PROXY_NOTE = ("verified in ONNX Runtime on the exported ONNX: {runtime} does not run on this machine; "
              "build and check the engine on the device")


@dataclass
class Candidate:
    backend: str
    pipeline: PipelineReport | None = None
    quantization: QuantizationReport | None = None
    preflight: list[PreflightIssue] = field(default_factory=list)
    artifact: Artifact | None = None
    verification: Verification | None = None
    latency_original: LatencyStats | None = None
    latency: LatencyStats | None = None
    error: HwoptError | None = None
    notes: list[str] = field(default_factory=list)
    calibration: list[dict[str, Any]] | None = None
    """Samples for a runtime that quantizes the float model itself (OpenVINO's NNCF, LiteRT's full INT8)."""
    kernels: HotOperatorReport | None = None
    """Which nodes run on hwopt's custom kernels in this runtime, and the A/B measurements that decided it."""

    @property
    def usable(self) -> bool:
        return self.error is None and self.artifact is not None

    def summary(self, chosen: bool) -> dict[str, Any]:
        manifest = self.artifact.manifest if self.artifact else None
        return {
            "runtime": self.backend,
            "runtime_version": manifest.runtime_version if manifest else None,
            "device": manifest.device if manifest else None,
            "details": manifest.details if manifest else {},
            "latency_ms": self.latency.median_ms if self.latency else None,
            "original_latency_ms": self.latency_original.median_ms if self.latency_original else None,
            "worst_cosine": self.verification.worst_cosine if self.verification else None,
            "passed": self.usable and (self.verification is None or self.verification.passed),
            "chosen": chosen,
            "error": str(self.error) if self.error else None,
        }


@dataclass(frozen=True)
class BuildInputs:
    """What every candidate of one run shares."""

    original_path: Path
    plan: Plan
    opt_level: int
    shapes: Mapping[str, tuple[int, ...]]
    quantization: QuantizationOptions
    feeds: Feeds
    feeds_source: str
    reference: Any
    """The original model's outputs on `feeds`, from `reference.get()` (None: verification off)."""
    thresholds: FidelityThresholds
    benchmark: bool
    threads: int | None
    advice: str = ""
    frozen: Mapping[str, Any] = field(default_factory=dict)
    """Inputs frozen to constants: fed to the original, no longer inputs of the artifact."""
    io_layout: str | None = None
    """LiteRT's I/O layout ("onnx" or "nhwc"; None: the model's own)."""
    io_dtype: str | None = None
    """LiteRT's I/O dtype ("float32", "int8" or "uint8"; None: float32)."""
    block_shape: tuple[int, int] = DEFAULT_BLOCK_SHAPE
    """The blocks the hot-operator pass reads weights in (a block-pruned model's own)."""


def prepare_candidate(model: ir.Model, backend: str, plan: Plan, opt_level: int,
                      shapes: Mapping[str, tuple[int, ...]], quantization: QuantizationOptions,
                      threads: int | None, frozen: Mapping[str, Any] | None = None) -> Candidate:
    """Passes and quantization for `backend`, in place, then pre-flight of the result (nothing written)."""
    candidate = Candidate(backend)
    stages = pipeline_stages(plan.pipeline_for(backend), opt_level, shapes=shapes, frozen=frozen)
    candidate.pipeline = run_pipeline(model, stages)
    if _runtime_quantizes(backend, quantization):
        _check_runtime_quantization(backend, quantization)
        if quantization.precision == "int8":
            candidate.calibration = _calibration_samples(model, quantization, shapes)
        candidate.notes.append(_runtime_quantization_note(backend, quantization, candidate.calibration))
    elif quantization.quantized:
        candidate.quantization = _quantize(model, quantization, backend, threads)
    candidate.preflight = preflight(model, plan, backend)
    return candidate


def build_candidate(model: ir.Model, backend: str, shared: BuildInputs, folder: Path) -> Candidate:
    """Build `backend`'s artifact from `model` (modified in place) into `folder`. Pre-flight errors raise;
    a candidate that fails to verify or run is returned with `error` set, so another runtime can still win."""
    plan = shared.plan
    candidate = prepare_candidate(model, backend, plan, shared.opt_level, shared.shapes, shared.quantization,
                                  shared.threads, shared.frozen)
    raise_on_errors(candidate.preflight, plan, backend)
    layers = _layer_precisions(model, plan.precision, candidate.quantization)
    runtime = get_backend(backend)
    options = CompileOptions(plan.target, plan.precision, shared.threads, plan.device, dict(shared.shapes),
                             layers=layers, calibration=candidate.calibration, io_layout=shared.io_layout,
                             io_dtype=shared.io_dtype)
    if candidate_groups(model, shared.block_shape):
        if plan.precision == "fp32" and shared.benchmark:
            # Trial builds go beside the candidate's folder, inside the run's staging folder.
            candidate.kernels = substitute_hot_operators(model, backend, options, shared.feeds,
                                                         folder.parent / f".{backend}-kernel-trials",
                                                         block_shape=shared.block_shape)
        else:
            why = "--no-benchmark: nothing can be measured" if plan.precision == "fp32" else \
                f"hwopt's block-sparse kernel runs fp32, the plan is {plan.precision} (--precision fp32)"
            candidate.notes.append(f"{backend}: block-sparse MatMuls left on the runtime's dense kernels ({why})")
    compiled = runtime.compile(model, options, folder)
    layers = compiled.layers if compiled.layers is not None else layers
    inputs, outputs = model_io_specs(model)
    candidate.artifact = write_manifest(folder, Manifest(
        target=plan.target.name, runtime=backend, runtime_version=compiled.runtime_version,
        device=compiled.device, precision=plan.precision, entry=compiled.entry,
        inputs=compiled.inputs if compiled.inputs is not None else inputs,
        outputs=compiled.outputs if compiled.outputs is not None else outputs,
        layers=dict(layers), details=compiled.details, runs_here=compiled.runs_here))
    try:
        session = _session(runtime, candidate, shared.threads)
        # An artifact that takes other tensors than the original (LiteRT's NHWC or int8 I/O) is fed the same
        # inputs translated once, here, so that neither model's timing includes the translation.
        from_onnx, to_onnx = getattr(session, "feeds_from_onnx", None), getattr(session, "outputs_to_onnx", None)
        feeds = from_onnx(shared.feeds) if from_onnx is not None else shared.feeds
        if shared.frozen:
            session = WithoutInputs(session, shared.frozen)
        _verify(candidate, session, feeds, to_onnx, shared)
        if shared.benchmark and compiled.runs_here:
            original = create_session(shared.original_path, threads=shared.threads, label="original model")
            candidate.latency_original, candidate.latency = compare_latency(original, session, shared.feeds,
                                                                            second_feeds=feeds)
    except HwoptError as error:
        candidate.error = error
    return candidate


def _layer_precisions(model: ir.Model, precision: str,
                      quantization: QuantizationReport | None) -> dict[str, str]:
    """Every compute layer's precision: what quantization recorded, else the plan's precision."""
    recorded = quantization.layers if quantization else {}
    return {
        node.name: recorded.get(node.name, precision if quantization is None else "fp32")
        for node in hir.all_nodes(model)
        if node.op_type in COMPUTE_OPS and node.name
    } | recorded


def _runtime_quantizes(backend: str, options: QuantizationOptions) -> bool:
    """Whether the backend gets the float model (and, for INT8, calibration samples) instead of hwopt's QDQ.

    - OpenVINO's INT8 comes from NNCF, its own quantizer, when calibration data is given: it knows which of the
      plugin's fusions want int8 inputs (residual Adds, Concat, pooling) and handles transformers (SmoothQuant,
      float Softmax paths), where hwopt's static INT8 breaks MiniLM (docs/targets-notes.md). Exclusions, an
      accuracy budget, bias correction and SmoothQuant are hwopt's own options, so with those hwopt's QDQ is
      used.
    - LiteRT's every precision: hwopt's TFLite writer converts float graphs, and the backend lowers the converted
      graph itself (FP16 weights, dynamic-range INT8, full-integer INT8 from ranges calibrated on the float
      model), which is what TFLite's integer kernels expect; QDQ or ORT's contrib ops have no TFLite form."""
    if backend == "tflite":
        return options.quantized
    return (backend == "openvino" and options.precision == "int8" and options.calibration is not None
            and not options.uses_hwopt_int8_options)


def _check_runtime_quantization(backend: str, options: QuantizationOptions) -> None:
    """What LiteRT's precision passes cannot do, refused before anything is compiled."""
    if backend != "tflite":
        return
    precisions = get_backend(backend).capabilities().precisions
    if options.precision not in precisions:
        raise UsageError(f"tflite writes {', '.join(precisions)}, not {options.precision}")
    if options.exclude or options.max_accuracy_drop is not None:
        raise UsageError("tflite lowers the whole TFLite graph to one precision: --exclude and "
                         "--max-accuracy-drop are not supported for it")
    if options.bias_correction or options.smooth_quant is not None:
        raise UsageError("tflite quantizes the converted TFLite graph itself: --bias-correction and "
                         "--smooth-quant are not supported for it")


def _runtime_quantization_note(backend: str, options: QuantizationOptions,
                               samples: list[dict[str, Any]] | None) -> str:
    if backend == "openvino":
        return f"openvino: INT8 by NNCF, OpenVINO's own quantizer, on {len(samples)} calibration sample(s)"
    if options.precision != "int8":
        return f"{backend}: {options.precision} applied to the converted TFLite graph"
    source = "" if options.calibration is not None else " (random inputs: no --calibration data given)"
    return (f"{backend}: full-integer INT8 of the converted TFLite graph, activation ranges from "
            f"{len(samples)} calibration sample(s){source}")


def _calibration_samples(model: ir.Model, options: QuantizationOptions,
                         shapes: Mapping[str, tuple[int, ...]]) -> list[dict[str, Any]]:
    specs = hir.input_specs(model)
    names = {spec.name for spec in specs}
    data = calibration_data(options.calibration, specs, preprocessing=preprocessing(options),
                            limit=options.calibration_samples, shapes=shapes)
    return [{name: array for name, array in sample.items() if name in names} for sample in data]


class WithoutInputs:
    """An artifact session fed the original's inputs: drops the ones frozen into constants. The dict copy is
    charged to the artifact's timing, never to the original's."""

    def __init__(self, session: Session, dropped: Mapping[str, Any]) -> None:
        self._session, self._dropped = session, frozenset(dropped)
        self.output_names = session.output_names

    def run(self, feeds):
        return self._session.run({k: v for k, v in feeds.items() if k not in self._dropped})

    def run_raw(self, feeds):
        return self._session.run_raw({k: v for k, v in feeds.items() if k not in self._dropped})


def _quantize(model: ir.Model, options: QuantizationOptions, backend: str,
              threads: int | None) -> QuantizationReport:
    # Every built backend has an INT8 scheme of its own (quantization.schemes.RUNTIME_SCHEMES).
    if options.max_accuracy_drop is not None:
        return search_accuracy_budget(model, options, runtime=backend, threads=threads)
    return quantize_model(model, options, runtime=backend, threads=threads)


def _session(runtime, candidate: Candidate, threads: int | None) -> Session:
    artifact = candidate.artifact
    if artifact.manifest.runs_here:
        return runtime.load(artifact, threads=threads)
    candidate.notes.append(PROXY_NOTE.format(runtime=candidate.backend))
    return create_session(artifact.folder / "model.onnx", threads=threads, label=OPTIMIZED)


def _verify(candidate: Candidate, session: Session, feeds: Feeds, to_onnx, shared: BuildInputs) -> None:
    """The artifact's outputs on `feeds` (the original's inputs as the artifact takes them) against the
    original's; `to_onnx` translates the artifact's outputs back where they differ (NHWC, int8)."""
    if shared.reference is None:
        return
    expected = shared.reference.get()  # the original first: its failure explains the artifact's
    try:
        actual = session.run(feeds)
        actual = to_onnx(actual) if to_onnx is not None else actual
    except ModelRunError as error:
        raise ModelRunError(f"{candidate.backend}: {error}", which=error.which, phase=error.phase) from None
    candidate.verification = compare_runs(expected, actual, inputs_source=shared.feeds_source,
                                          thresholds=shared.thresholds)
    if not candidate.verification.passed:
        raise VerificationError(f"{candidate.backend}: " + candidate.verification.failure_message()
                                + shared.advice)


def choose(candidates: list[Candidate]) -> Candidate:
    """The fastest candidate that verified; without timings, the plan's first that verified; if none did,
    the first candidate's error is raised."""
    usable = [c for c in candidates if c.usable]
    if not usable:
        first = candidates[0].error
        if len(candidates) > 1:
            # Every runtime's reason, in the first one's error type (its exit code and attributes).
            first.args = ("; ".join(str(c.error) if str(c.error).startswith(c.backend) else f"{c.backend}: {c.error}"
                                    for c in candidates),)
        raise first
    timed = [c for c in usable if c.latency is not None]
    return min(timed, key=lambda c: c.latency.median_ms) if timed else usable[0]
