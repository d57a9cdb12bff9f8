"""OpenVINO as a backend: the artifact is OpenVINO IR (model.xml + model.bin), compiled for CPU, GPU or NPU.

`compile` converts hwopt's IR with OpenVINO's ONNX frontend and saves the IR: fp32 weights as they are, fp16
as fp16-compressed weights, int8 as the QDQ graph hwopt's quantizer wrote (the frontend turns each QDQ pair
into a FakeQuantize, which the plugins run as int8), or, given calibration samples, quantized by NNCF.
The IR is device-independent: compiled for a GPU this machine lacks, it is still written, marked as not
running here.

The inference precision is decided per artifact (INFERENCE_PRECISION_HINT, see `inference_precision_for`),
stored in the manifest's details and applied again by `load`; the precision the plugin actually chose is read
back and recorded beside it.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import onnx_ir as ir
from optimizer.backends.base import (
    Capabilities,
    Compiled,
    CompileOptions,
    PreflightIssue,
    runtime_installed,
)
from optimizer.backends.openvino import profiling
from optimizer.backends.openvino.nncf_int8 import (
    has_attention,
    layer_precisions,
    quantize_with_nncf,
)
from optimizer.backends.openvino.preflight import device_for_target, preflight_issues
from optimizer.backends.openvino.runtime import (
    EXTRA,
    HWOPT_DOMAIN,
    convert,
    core,
    device_present,
    normalize_device,
    openvino,
    runtime_version,
)
from optimizer.backends.openvino.session import LATENCY, OpenVINOSession
from optimizer.benchmarks.run_report import OperatorTime

from optimizer import ir as hir
from optimizer.errors import ModelRunError, UsageError

if TYPE_CHECKING:
    from optimizer.artifact import Artifact
    from optimizer.targets.profiles import TargetProfile

MODEL_FILE = "model.xml"
ONNX_FILE = "model.onnx"
PRECISIONS = ("fp32", "fp16", "bf16", "int8", "int8-dynamic", "int4")
FLOAT_PRECISIONS = ("fp16", "bf16")


def inference_precision_for(precision: str, device: str) -> str | None:
    """The INFERENCE_PRECISION_HINT for an artifact of `precision` on `device`; None leaves the plugin's default.

    - fp32: f32 everywhere. The CPU plugin's default is bf16 on CPUs with AVX512-BF16 or AMX, the GPU's f16:
      either quietly computes something other than what was asked for (yolov8n's class scores: cosine 0.9997
      against ONNX Runtime in bf16, 1.0 in f32).
    - fp16 / bf16 on the CPU: bf16 where the CPU computes it natively, else f32 (x86 CPUs without AMX-FP16 have
      no f16 arithmetic). Measured on an AVX512-BF16 CPU (2 threads, same fp16-compressed IR): bf16 keeps the
      output cosine against ONNX Runtime fp32 at 0.99998 (MiniLM, pooled) and 0.999997 (yolov8n; class scores
      0.9988, no detection moves), inside fp16's 0.999, and runs 1.6-1.7x faster than f32 (yolov8n 3.2 against
      5.4 ms, MiniLM 5.0 against 7.8 ms). On GPU and NPU the plugin's default (f16) is that choice.
    - int8 on the CPU: f32 for the float layers between the int8 ones (the int8 layers are int8 whatever the
      hint). yolov8n NNCF INT8, 2 threads, three alternating comparisons against ORT FP32 in one run: f32
      2.78-2.81x, the default bf16 2.70-2.75x; and f32 keeps those layers' arithmetic as verified.
    - the other integer precisions (int8-dynamic, int4 weights): the plugin's default.
    """
    kind = device.split(".")[0]
    if precision == "fp32" or (precision == "int8" and kind == "CPU"):
        return "f32"
    if precision in FLOAT_PRECISIONS and kind == "CPU":
        return "bf16" if _cpu_has_bf16() else "f32"
    return None


class OpenVINOBackend:
    name = "openvino"

    def capabilities(self) -> Capabilities:
        if not runtime_installed("openvino"):
            return Capabilities(self.name, None, runs_here=False, precisions=PRECISIONS, extra=EXTRA)
        return Capabilities(self.name, runtime_version(), runs_here=True, devices=tuple(core().available_devices),
                            precisions=PRECISIONS, extra=EXTRA)

    def preflight(self, model: ir.Model, target: TargetProfile, precision: str) -> list[PreflightIssue]:
        """Nodes OpenVINO's ONNX frontend cannot convert, or the target's device cannot compile or run, and
        dynamic input dims on the NPU (see optimizer.backends.openvino.preflight)."""
        return preflight_issues(model, device_for_target(target))

    def compile(
        self,
        model: ir.Model,
        options: CompileOptions,
        folder: Path,
        *,
        calibration: Iterable[Mapping[str, np.ndarray]] | None = None,
        model_type: str | None = "auto",
    ) -> Compiled:
        """Write `folder/model.xml` and `.bin` for `options.device` (default: the target's device type).

        With `calibration` (input dicts), a float `model` is quantized to INT8 by NNCF after conversion
        (`quantize_with_nncf`, whose docstring says when that beats hwopt's QDQ), instead of carrying QDQ.
        `model_type` "auto" takes a model with attention for a transformer.
        """
        calibration = calibration if calibration is not None else options.calibration
        if calibration is not None and options.precision != "int8":
            raise UsageError(f"NNCF calibration makes an int8 artifact; the precision is {options.precision}")
        ov = openvino()
        device = normalize_device(options.device or device_for_target(options.target))
        present = device_present(device)
        hint = inference_precision_for(options.precision, device)
        details: dict[str, Any] = {
            "weights": "fp16-compressed" if options.precision == "fp16" else options.precision,
            "inference_precision_hint": hint,
            "performance_hint": LATENCY,
            "threads": options.threads,
        }
        # The ONNX model stays in the artifact, as in every hwopt artifact: what the manifest's layer table
        # describes, what ONNX Runtime verifies where OpenVINO or the device is missing. OpenVINO converts it
        # from there, its weights memory-mapped from the file.
        layers = None
        hwopt_ops = sorted({node.op_type for node in hir.all_nodes(model) if node.domain == HWOPT_DOMAIN})
        if hwopt_ops:
            # The IR holds them as ops of version "hwopt": reading it again needs hwopt's extension, which
            # load and profile_operators add (see runtime.core).
            details["openvino_extension"] = (f"hwopt's (optimizer.kernels.openvino_extension), for "
                                             f"{', '.join(f'{HWOPT_DOMAIN}::{op}' for op in hwopt_ops)}")
        hir.save_model(model, folder / ONNX_FILE)
        ov_model = convert(str(folder / ONNX_FILE), model)
        if options.shapes:
            ov_model.reshape({name: list(shape) for name, shape in options.shapes.items()})
        if calibration is not None:
            if model_type == "auto":
                model_type = "transformer" if has_attention(ov_model) else "cnn"
            ov_model = quantize_with_nncf(ov_model, calibration, model_type=model_type)
            layers = layer_precisions(ov_model)
            details["quantizer"] = f"nncf ({model_type or 'default'})"
            details["onnx_model"] = "the float model before NNCF (what ONNX Runtime verifies where OpenVINO cannot)"
        elif options.precision.startswith("int8") and _has_qdq(model):
            details["quantizer"] = "hwopt QDQ (FakeQuantize in OpenVINO)"
        ov.save_model(ov_model, str(folder / MODEL_FILE), compress_to_fp16=options.precision == "fp16")
        if present:
            # Compiling here checks the device takes the IR, and tells which precision the plugin chose.
            session = _compile_saved(folder / MODEL_FILE, device, hint, options.threads)
            details["inference_precision"] = session.inference_precision
        else:
            details["inference_precision"] = None
            details["note"] = (f"{device} not present on this machine; the IR is device-independent and "
                               f"compiles for {device} where it runs")
        return Compiled(entry=MODEL_FILE, runtime_version=runtime_version(), device=device, details=details,
                        runs_here=present, layers=layers)

    def load(self, artifact: Artifact, *, threads: int | None = None) -> OpenVINOSession:
        return OpenVINOSession(
            artifact.entry_path,
            device=artifact.manifest.device,
            inference_precision=_precision_here(artifact),
            threads=threads or artifact.manifest.details.get("threads"),
            output_names=[spec.name for spec in artifact.manifest.outputs],
            label="optimized model",
        )

    def profile_operators(self, artifact: Artifact, feeds: Mapping[str, np.ndarray], *,
                          threads: int | None = None, runs: int = 10) -> list[OperatorTime]:
        """Time per node type from OpenVINO's performance counters, compiled as `load` compiles."""
        return profiling.profile_operators(
            artifact.entry_path, feeds, device=artifact.manifest.device,
            inference_precision=_precision_here(artifact),
            threads=threads or artifact.manifest.details.get("threads"), runs=runs, label="optimized model")


def _precision_here(artifact: Artifact) -> str | None:
    """The artifact's inference precision hint, as this machine can follow it."""
    hint = artifact.manifest.details.get("inference_precision_hint")
    device = artifact.manifest.device
    if hint == "bf16" and device.startswith("CPU") and device_present(device) and not _cpu_has_bf16():
        hint = "f32"  # compiled where the CPU has bf16, run on one without: f32 is what it would pick
    return hint


def _compile_saved(path: Path, device: str, hint: str | None, threads: int | None) -> OpenVINOSession:
    try:
        return OpenVINOSession(path, device=device, inference_precision=hint, threads=threads,
                               label="compiled model")
    except ModelRunError as error:
        raise ModelRunError(f"{error} (the IR was written to {path})", which=error.which,
                            phase=error.phase) from None


def _cpu_has_bf16() -> bool:
    return "BF16" in core().get_property("CPU", "OPTIMIZATION_CAPABILITIES")


def _has_qdq(model: ir.Model) -> bool:
    return any(node.op_type == "QuantizeLinear" for node in hir.all_nodes(model))

