"""Plans: for a target and the precision asked for, which precision, pipeline and runtime(s) hwopt uses.

A plan is decided before any pass runs, from the device profile alone, and says why in `notes`:

- cpu (this machine): ONNX Runtime and, when installed, OpenVINO are both compiled, verified and timed on the
  real model; the faster one that verifies becomes the artifact (both are recorded in the report).
- NVIDIA GPUs and Jetson: TensorRT, FP16 by default, symmetric INT8 QDQ when calibration data is given.
- Intel CPU/GPU/NPU: OpenVINO on that device; the NPU compiles for static shapes only.
- rpi/android/arm64: LiteRT (a .tflite hwopt writes itself, XNNPACK on the CPU). hwopt needs ai-edge-litert to
  write and check the file; where it is not installed they get an ONNX Runtime artifact (ORT ships aarch64 and
  Android builds), and the plan says so.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass

from optimizer.backends.base import runtime_installed
from optimizer.backends.registry import BUILT
from optimizer.errors import UsageError
from optimizer.targets.profiles import TargetProfile

CALIBRATED = frozenset({"int8"})
# Precisions hwopt produces -> what the device must compute natively for it to pay off.
NATIVE_NEED = {"fp32": "fp32", "fp16": "fp16", "bf16": "bf16", "int8": "int8", "int8-dynamic": "int8",
               "int4": "int4"}
OPENVINO_DEVICES = {"intel-cpu": "CPU", "intel-gpu": "GPU", "intel-npu": "NPU"}
# Runtimes a target trades for the next built one it lists when their package is not installed here, with the
# module and the extra that installs it: LiteRT's schema is needed to write a .tflite, and an edge device runs
# ONNX Runtime as well.
NEEDS_PACKAGE = {"tflite": ("ai_edge_litert", "tflite")}


@dataclass(frozen=True)
class Plan:
    target: TargetProfile
    precision: str
    backends: tuple[str, ...]
    """Candidate runtimes; with more than one, each is measured and the fastest that verifies wins."""
    device: str | None = None
    notes: tuple[str, ...] = ()

    def pipeline_for(self, backend: str) -> str:
        return "onnxruntime-cpu" if backend == "onnxruntime" else "portable"


def make_plan(target: TargetProfile, precision: str | None, *, calibrated: bool,
              runtime: str | None = None) -> Plan:
    """The plan for `target`; `precision` None takes the target's default, `calibrated` says whether the user
    gave calibration data (the default INT8 of a target needs it), `runtime` forces one backend."""
    notes: list[str] = []
    if precision is None:
        precision = target.default_precision
        if precision == "fp32" and calibrated and "int8" in target.precisions:
            precision = "int8"
            notes.append("calibration data given: INT8, the fastest precision this device computes")
        elif precision in CALIBRATED and not calibrated:
            precision = "fp16" if "fp16" in target.precisions and target.device_type != "cpu" else "fp32"
            notes.append(f"{target.name} runs INT8 best, which needs --calibration data; planned {precision} "
                         "instead")
    backends = _forced(target, runtime) if runtime else _backends(target, notes)
    device = OPENVINO_DEVICES.get(target.name) if backends[0] == "openvino" else None
    return Plan(target, precision, backends, device, tuple(notes))


def _backends(target: TargetProfile, notes: list[str]) -> tuple[str, ...]:
    if target.present and target.device_type == "cpu":
        if runtime_installed("openvino") and not _openvino_forked_away():
            notes.append("ONNX Runtime and OpenVINO are both measured here; the faster one that verifies wins")
            return ("onnxruntime", "openvino")
        notes.append("OpenVINO is not installed (pip install 'hwopt[openvino]') or cannot run in this forked "
                     "process: ONNX Runtime only")
        return ("onnxruntime",)
    missing = NEEDS_PACKAGE.get(target.runtime)
    if target.runtime in BUILT and (missing is None or runtime_installed(missing[0])):
        return (target.runtime,)
    fallback = next((r.backend for r in target.runtimes if r.backend in BUILT and r.backend != target.runtime),
                    "onnxruntime")
    why = (f"which hwopt writes with {missing[0]}, not installed here (pip install 'hwopt[{missing[1]}]')"
           if target.runtime in BUILT else "whose backend hwopt does not build yet")
    notes.append(f"{target.name} deploys with {target.runtime}, {why}; this artifact runs in {fallback} on the "
                 "device instead")
    return (fallback,)


def _openvino_forked_away() -> bool:
    """True in a child forked after the parent used OpenVINO, which then hangs (see backends/openvino)."""
    runtime = sys.modules.get("optimizer.backends.openvino.runtime")
    return runtime is not None and not runtime.usable_in_this_process()


def _forced(target: TargetProfile, runtime: str) -> tuple[str, ...]:
    if runtime not in BUILT:
        raise UsageError(f"unknown runtime '{runtime}'; hwopt builds: {', '.join(BUILT)}")
    allowed = {target.runtime, *(r.backend for r in target.runtimes)}
    if not target.present and runtime not in allowed:
        raise UsageError(f"target {target.name} does not run {runtime}; it runs {', '.join(sorted(allowed))}")
    return (runtime,)


def check_precision(plan: Plan) -> None:
    """A precision the device cannot compute at all is a usage error, named with the device's precisions."""
    need = NATIVE_NEED.get(plan.precision)
    if need is None:
        raise UsageError(f"unknown precision '{plan.precision}'")
    if need not in plan.target.precisions and plan.target.device_type != "cpu":
        raise UsageError(f"target {plan.target.name} does not compute {need}; it has "
                         f"{', '.join(plan.target.precisions)}")
