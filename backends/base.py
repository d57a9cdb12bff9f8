"""The small protocol every backend follows, and the types it speaks.

A backend is one runtime (ONNX Runtime, OpenVINO, TensorRT, LiteRT). hwopt asks it four things:

    capabilities()                          what it is, its version here, which devices and precisions it runs
    preflight(model, target, precision)     the nodes it cannot run as planned, and what will happen to each
    compile(model, options, folder)         write the artifact's files for a target into `folder`
    load(artifact, threads=None)            a session that runs the artifact here: run(feeds) -> outputs
    profile_operators(artifact, feeds)      time per operator type, from the runtime's own profiler

The IR passes (cleanup, quantization) run before `compile`; `compile` only does what its runtime needs on top
(saving ORT's optimized graph, converting to OpenVINO IR, writing a TensorRT build script). The manifest and
checksums are written by optimizer.artifact, the same for every backend.
"""

from __future__ import annotations

import importlib
import importlib.util
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import TYPE_CHECKING, Any, Literal, Protocol

import numpy as np
import onnx_ir as ir
from optimizer.benchmarks.run_report import OperatorTime

from optimizer.errors import RuntimeNotAvailableError

if TYPE_CHECKING:
    from optimizer.artifact import Artifact, TensorSpec
    from optimizer.targets.profiles import TargetProfile

Action = Literal["fallback", "decompose", "float", "error"]
"""What happens to a node the target cannot run as planned: it runs on another device (fallback), is rewritten
into ops the target has (decompose), stays in a higher precision (float), or cannot be compiled (error)."""


@dataclass(frozen=True)
class PreflightIssue:
    """One node the target cannot run as planned."""

    node: str
    op: str
    problem: str
    action: Action
    runtime: str = ""

    def __str__(self) -> str:
        return f"{self.node} ({self.op}): {self.problem} -> {self.action}"


@dataclass(frozen=True)
class Capabilities:
    runtime: str
    version: str | None
    """The installed version, None when the runtime is not importable here."""
    runs_here: bool
    """Whether `load` can run an artifact on this machine (TensorRT needs an NVIDIA GPU)."""
    devices: tuple[str, ...] = ()
    """Devices present on this machine, in the runtime's names (OpenVINO: CPU, GPU, NPU)."""
    precisions: tuple[str, ...] = ()
    extra: str | None = None
    """The pip extra that installs the runtime: `pip install hwopt[extra]`."""


@dataclass(frozen=True)
class CompileOptions:
    target: TargetProfile
    precision: str
    """The precision the IR passes produced (fp32, fp16, bf16, int8, int8-dynamic, int4)."""
    threads: int | None = None
    device: str | None = None
    """A runtime device name (OpenVINO's CPU/GPU/NPU), None for the target's default."""
    shapes: Mapping[str, tuple[int, ...]] = field(default_factory=dict)
    """Input shapes fixed by the user; dynamic inputs not named here keep their dims."""
    shape_ranges: Mapping[str, tuple[tuple[int, ...], tuple[int, ...], tuple[int, ...]]] = field(
        default_factory=dict)
    """Per input (min, opt, max) shapes, for runtimes that build per-shape (TensorRT optimization profiles)."""
    layers: Mapping[str, str] = field(default_factory=dict)
    """Precision per layer as quantization left it (node name -> precision)."""
    calibration: Any = None
    """Input dicts for a runtime that quantizes a float model itself (OpenVINO with NNCF, LiteRT's full-integer
    INT8); None otherwise."""
    io_layout: str | None = None
    """LiteRT only: "nhwc" writes rank-4 inputs and outputs channels-last; None or "onnx" keeps the model's."""
    io_dtype: str | None = None
    """LiteRT only: "int8" or "uint8" makes a full-integer INT8 model's inputs and outputs integer; None or
    "float32" keeps them float."""


@dataclass
class Compiled:
    """What `compile` wrote: the file that a session loads first, and runtime-specific facts for the manifest."""

    entry: str
    """Path of the main file, relative to the artifact folder (model.onnx, model.xml, ...)."""
    runtime_version: str
    device: str
    details: dict[str, Any] = field(default_factory=dict)
    """E.g. OpenVINO's inference precision, the trtexec command, ORT's optimization level."""
    runs_here: bool = True
    """False when the artifact needs a device this machine lacks (a TensorRT engine built on the Jetson)."""
    layers: dict[str, str] | None = None
    """Precision per layer when the runtime's own quantizer chose it (NNCF); None keeps CompileOptions.layers."""
    inputs: list[TensorSpec] | None = None
    """The artifact's own inputs where they differ from the ONNX model's (a .tflite with NHWC or int8 inputs);
    None: the ONNX model's."""
    outputs: list[TensorSpec] | None = None
    """The artifact's own outputs, likewise."""


class Session(Protocol):
    """A loaded artifact. A session may also carry `arena_bytes: int | None`, the working memory the runtime
    reserved for it outside what the process's RSS shows (TensorRT's engine device memory); it is optional, so
    readers ask `getattr(session, "arena_bytes", None)`, and None means the runtime does not say.

    A session whose artifact takes other tensors than the ONNX model (LiteRT written with NHWC or int8 inputs
    and outputs) also has `feeds_from_onnx(feeds)` and `outputs_to_onnx(outputs)`, which translate as a
    deployment would; verification and timing against the original use them (optimizer.build)."""

    output_names: list[str]

    def run(self, feeds: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
        """Outputs by name; runtime errors become hwopt's ModelRunError naming the model."""

    def run_raw(self, feeds: Mapping[str, np.ndarray]) -> Any:
        """The runtime's own call with no translation, for timing loops."""


class Backend(Protocol):
    name: str

    def capabilities(self) -> Capabilities: ...

    def preflight(self, model: ir.Model, target: TargetProfile, precision: str) -> list[PreflightIssue]: ...

    def compile(self, model: ir.Model, options: CompileOptions, folder: Path) -> Compiled: ...

    def load(self, artifact: Artifact, *, threads: int | None = None) -> Session: ...

    def profile_operators(self, artifact: Artifact, feeds: Mapping[str, np.ndarray], *,
                          threads: int | None = None, runs: int = 10) -> list[OperatorTime]:
        """Time per operator type, hottest first: a warm-up, then `runs` runs of `feeds` with the runtime's
        profiler on, in a session of its own (a profiler slows what it watches, so the timed session never has
        one). Op types are the runtime's own names for what it ran, after its fusions (ORT's FusedConv,
        OpenVINO's Convolution with its activation inside; TensorRT's layer types, or its layer names where
        the engine does not tell the types). [] when the runtime has no profiler here."""


def rank_operator_times(total_ms: Mapping[str, float], calls: Mapping[str, int], runs: int) -> list[OperatorTime]:
    """Per-inference times from times and kernel calls summed over `runs` profiled runs, hottest first.

    Calls are rounded to whole calls per inference, but never to 0 for a kernel that ran: one that ran in
    some runs only (a data-dependent branch) still shows."""
    if runs <= 0:
        return []
    summed = sum(total_ms.values())
    ranked = sorted(total_ms.items(), key=lambda item: (-item[1], item[0]))
    return [OperatorTime(op_type, ms / runs, 100.0 * ms / summed if summed else 0.0, _per_run(calls, op_type, runs))
            for op_type, ms in ranked]


def _per_run(calls: Mapping[str, int], op_type: str, runs: int) -> int:
    count = calls.get(op_type, 0)
    return max(1, round(count / runs)) if count else 0


def import_runtime(module: str, extra: str) -> ModuleType:
    """Import an optional runtime, or say which extra installs it."""
    try:
        return importlib.import_module(module)
    except ImportError as error:
        raise RuntimeNotAvailableError(
            f"the {extra} runtime is not installed ({error}); install it with `pip install 'hwopt[{extra}]'`"
        ) from None


def runtime_installed(module: str) -> bool:
    return importlib.util.find_spec(module) is not None
