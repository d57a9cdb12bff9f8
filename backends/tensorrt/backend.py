"""TensorRT as a backend: the artifact is a deploy bundle, and the engine is built on the device.

A TensorRT engine is specific to the GPU model and TensorRT version that built it, so `compile` does not build
one. It writes what the device needs:

    model.onnx          the model as the passes left it: float16 with casts, or symmetric INT8 Q/DQ, or fp32
    build_config.json   optimization profile (min/opt/max of every dynamic input), precision flags for
                        TensorRT 10.x, DLA core
    build_engine.py     a standalone script (no hwopt) that builds model.engine with TensorRT 10.x or 11.x and
                        times it (templates/build_engine.py, copied as it is)
    trtexec.sh          the same build with trtexec
    README.md           how to copy, build and run it; its precision; which nodes fall back from DLA

The manifest's details carry the trtexec commands, the profile and the precision flags. Where TensorRT and
an NVIDIA GPU are present, `load` builds the engine with the same script and runs it.
"""

from __future__ import annotations

import ctypes
import functools
import hashlib
import json
import os
import re
import shlex
import shutil
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import onnx_ir as ir
from optimizer.backends.base import (
    Capabilities,
    Compiled,
    CompileOptions,
    PreflightIssue,
    runtime_installed,
)
from optimizer.backends.tensorrt import ops, profiling, rtx_check
from optimizer.backends.tensorrt.templates import build_engine as build_script
from optimizer.backends.tensorrt.templates.readme import README
from optimizer.backends.tensorrt.templates.trtexec import TRTEXEC_SH
from optimizer.benchmarks.run_report import OperatorTime

from optimizer import ir as hir
from optimizer.artifact import sha256_of
from optimizer.errors import ModelRunError, RuntimeNotAvailableError, UsageError

MODEL_FILE = "model.onnx"
CONFIG_FILE = build_script.CONFIG_FILE
SCRIPT_FILE = "build_engine.py"
TRTEXEC_FILE = "trtexec.sh"
README_FILE = "README.md"
ENGINE_FILE = "model.engine"
TIMING_CACHE_FILE = "timing.cache"
PRECISIONS = ("fp32", "fp16", "bf16", "int8")
SUPPORTED_VERSIONS = "10.x, 11.x"

BATCH_RANGE = (1, 1, 8)
"""(min, opt, max) of a dynamic batch dim (the first axis, or a dim named like "batch") when none is given."""
LENGTH_RANGE = (1, 128, 512)
"""(min, opt, max) of any other dynamic dim (a sequence length, an image side) when none is given."""

# Element types in the ONNX -> the TensorRT 10.x flag that lets a weakly typed network use them.
_FLAG_OF_DTYPE = {
    ir.DataType.FLOAT16: "FP16",
    ir.DataType.BFLOAT16: "BF16",
    ir.DataType.INT8: "INT8",
    ir.DataType.FLOAT8E4M3FN: "FP8",
    ir.DataType.INT4: "INT4",
}
_TRTEXEC_FLAG = {"FP16": "--fp16", "BF16": "--bf16", "INT8": "--int8", "FP8": "--fp8", "INT4": "--int4"}
_QDQ = frozenset({"QuantizeLinear", "DequantizeLinear"})
MAX_README_ROWS = 40


class TensorRTBackend:
    name = "tensorrt"

    def capabilities(self) -> Capabilities:
        version = tensorrt_version()
        gpu = cuda_gpu_visible()
        return Capabilities(self.name, version, runs_here=version is not None and gpu,
                            devices=("GPU",) if gpu else (), precisions=PRECISIONS, extra="tensorrt")

    def preflight(self, model: ir.Model, target, precision: str) -> list[PreflightIssue]:
        """The op table first; when it finds nothing fatal and TensorRT-RTX is installed, the real parser
        (it knows the shape rules the table cannot, e.g. both branches of an If must build)."""
        issues = ops.preflight(model, target, precision)
        if any(issue.action == "error" for issue in issues):
            return issues
        return issues + rtx_check.parser_issues(model, compute_capability=target.sm)

    def compile(self, model: ir.Model, options: CompileOptions, folder: Path) -> Compiled:
        folder = Path(folder)
        hir.save_model(model, folder / MODEL_FILE)
        plan = plan_build(model, options)
        (folder / CONFIG_FILE).write_text(_json_text(plan.config()), encoding="utf-8")
        shutil.copyfile(build_script.__file__, folder / SCRIPT_FILE)
        os.chmod(folder / SCRIPT_FILE, 0o755)
        (folder / TRTEXEC_FILE).write_text(plan.trtexec_script(), encoding="utf-8")
        os.chmod(folder / TRTEXEC_FILE, 0o755)
        dla_fallbacks = ops.dla_issues(model, options.target, options.precision) if options.target.dla else []
        (folder / README_FILE).write_text(render_readme(model, options, plan, dla_fallbacks, folder.name),
                                          encoding="utf-8")
        capabilities = self.capabilities()
        details: dict[str, Any] = {
            "tensorrt_versions": target_versions(options.target),
            "build": f"python3 {SCRIPT_FILE}" + (f" --dla-core {plan.dla_core}" if plan.dla_core is not None
                                                else ""),
            "trtexec": {"10.x": plan.trtexec_command(10), "11.x": plan.trtexec_command(11)},
            "precision_flags_10x": plan.precision_flags,
            "optimization_profile": plan.profile,
            "dla_core": plan.dla_core,
            "sparse_weights": plan.sparse_weights,
        }
        if options.target.dla is not None:
            details["dla_gpu_fallback"] = [f"{issue.node} ({issue.op}): {issue.problem}"
                                           for issue in dla_fallbacks]
        if plan.notes:
            details["notes"] = plan.notes
        return Compiled(entry=MODEL_FILE, runtime_version=capabilities.version or target_versions(options.target),
                        device=plan.device_text(options.target), details=details,
                        runs_here=capabilities.runs_here)

    def load(self, artifact, *, threads: int | None = None) -> TensorRTSession:
        capabilities = self.capabilities()
        if not capabilities.runs_here:
            missing = "no TensorRT" if capabilities.version is None else "no NVIDIA GPU visible to CUDA"
            raise RuntimeNotAvailableError(
                f"{artifact.folder}: a TensorRT engine is built and run on an NVIDIA GPU with TensorRT, and this "
                f"machine has {missing}; copy the folder to the device and build it there with {SCRIPT_FILE} "
                f"(see its {README_FILE})")
        return TensorRTSession(_runner(Path(artifact.folder)), label="optimized model")

    def profile_operators(self, artifact, feeds: Mapping[str, np.ndarray], *, threads: int | None = None,
                          runs: int = 10) -> list[OperatorTime]:
        """Time per layer type, or per layer where the engine does not say its type (see profiling.py), on a
        session of its own; `threads` does not apply to a GPU. Untested on hardware."""
        session = self.load(artifact)
        try:
            return profiling.profile_engine(session.runner, feeds, runs=runs)
        except (build_script.BuildError, RuntimeError, TypeError, ValueError) as error:
            raise ModelRunError(f"TensorRT cannot profile the {session.label}: {error}",
                                which=session.label) from None


def tensorrt_version() -> str | None:
    """TensorRT's version here, None when it is not installed (import only when the package is there)."""
    if not runtime_installed("tensorrt"):
        return None
    try:
        import tensorrt
    except ImportError:
        return None
    return str(tensorrt.__version__)


@functools.cache
def cuda_gpu_visible() -> bool:
    """Whether the CUDA driver sees a GPU: one call into libcuda, without torch or TensorRT."""
    for name in ("libcuda.so.1", "libcuda.so", "nvcuda.dll"):
        try:
            cuda = ctypes.CDLL(name)
        except OSError:
            continue
        count = ctypes.c_int(0)
        return cuda.cuInit(0) == 0 and cuda.cuDeviceGetCount(ctypes.byref(count)) == 0 and count.value > 0
    return False


def target_versions(target, *, with_notes: bool = False) -> str:
    for support in target.runtimes:
        if support.backend == "tensorrt":
            if with_notes:
                return f"{support.versions}. {support.notes}" if support.notes else f"{support.versions}."
            return support.versions
    return f"{SUPPORTED_VERSIONS}." if with_notes else SUPPORTED_VERSIONS


# The build plan: what build_config.json, trtexec.sh and the README say.


@dataclass
class BuildPlan:
    precision: str
    target: str
    sm: str | None
    profile: dict[str, dict[str, Any]]
    """Dynamic input -> {"min", "opt", "max", "source": "given" | "default"}."""
    precision_flags: list[str]
    dla_core: int | None = None
    notes: list[str] = field(default_factory=list)
    sparse_weights: bool = False
    """Every Conv/MatMul/Gemm weight that could run sparse has the 2:4 pattern: build with SPARSE_WEIGHTS."""

    def config(self) -> dict[str, Any]:
        return {
            "target": self.target, "sm": self.sm, "precision": self.precision,
            "onnx": MODEL_FILE, "engine": ENGINE_FILE, "timing_cache": TIMING_CACHE_FILE,
            "precision_flags": self.precision_flags, "strongly_typed": False,
            "dla_core": self.dla_core, "workspace_mib": None, "profile": self.profile,
            "sparse_weights": self.sparse_weights,
        }

    def trtexec_arguments(self) -> list[str]:
        arguments = [f"--onnx={MODEL_FILE}", f"--saveEngine={ENGINE_FILE}",
                     f"--timingCacheFile={TIMING_CACHE_FILE}"]
        for key, option in (("min", "--minShapes"), ("opt", "--optShapes"), ("max", "--maxShapes")):
            if self.profile:
                arguments.append(f"{option}=" + ",".join(f"{name}:{_dims(shapes[key])}"
                                                         for name, shapes in self.profile.items()))
        if self.dla_core is not None:
            arguments += [f"--useDLACore={self.dla_core}", "--allowGPUFallback"]
        if self.sparse_weights:
            arguments.append("--sparsity=enable")
        return arguments

    def trtexec_command(self, major: int) -> str:
        flags = [] if major >= 11 else [_TRTEXEC_FLAG[flag] for flag in self.precision_flags]
        return shlex.join(["trtexec", *self.trtexec_arguments(), *flags])

    def trtexec_script(self) -> str:
        flags = " ".join(_TRTEXEC_FLAG[flag] for flag in self.precision_flags)
        return TRTEXEC_SH.substitute(arguments=shlex.join(self.trtexec_arguments()), flags=flags,
                                     flags_text=flags or "none: the ONNX is fp32")

    def device_text(self, target) -> str:
        gpu = f"GPU (sm {target.sm})" if target.sm else "GPU"
        return f"DLA core {self.dla_core} with {gpu} fallback" if self.dla_core is not None else gpu


def plan_build(model: ir.Model, options: CompileOptions) -> BuildPlan:
    from optimizer.pruning.patterns import scan_n_m

    profile, notes = optimization_profile(model, options)
    sparse = scan_n_m(model, 2, 4)
    if sparse.sparse:
        # TensorRT checks every layer's weights itself: layers left dense (a sensitive first or last layer kept
        # out of pruning) run dense kernels, the others still get sparse ones.
        dense = f"; {len(sparse.dense)} other(s) dense" if sparse.dense else ""
        notes.append(f"{len(sparse.sparse)} Conv/MatMul/Gemm weights have the 2:4 pattern{dense}: built with "
                     "sparse weights (TensorRT picks sparse tensor-core kernels where they are faster)")
    return BuildPlan(options.precision, options.target.name, options.target.sm, profile, precision_flags(model),
                     dla_core(options), notes, bool(sparse.sparse))


def precision_flags(model: ir.Model) -> list[str]:
    """The TensorRT 10.x builder flags a weakly typed network needs for the element types in this ONNX:
    FP16 for float16 tensors and casts, INT8 (FP8, INT4) for Q/DQ of that type."""
    found: set[str] = set()
    for graph in model.graphs():
        for value in (*graph.inputs, *graph.outputs, *graph.initializers.values()):
            flag = _FLAG_OF_DTYPE.get(ops.value_dtype(value))
            # An int8/int4 tensor is a quantized weight only when a DequantizeLinear reads it (not an index).
            if flag is not None and (flag not in ("INT8", "INT4") or _feeds_dq(value)):
                found.add(flag)
        for node in graph:
            if node.op_type == "Cast" and "to" in node.attributes:
                flag = _FLAG_OF_DTYPE.get(ir.DataType(node.attributes["to"].value))
                if flag in ("FP16", "BF16"):
                    found.add(flag)
            elif node.op_type in _QDQ:
                found.add(_quantized_flag(node))
    return [flag for flag in ("FP16", "BF16", "INT8", "FP8", "INT4") if flag in found]


def _feeds_dq(value: ir.Value) -> bool:
    return any(use.node.op_type == "DequantizeLinear" for use in value.uses())


def _quantized_flag(node: ir.Node) -> str:
    zero_point = node.inputs[2] if len(node.inputs) > 2 and node.inputs[2] is not None else None
    dtype = ops.value_dtype(zero_point) if zero_point is not None else None
    if dtype in _FLAG_OF_DTYPE:
        return _FLAG_OF_DTYPE[dtype]
    return "INT8"


def dla_core(options: CompileOptions) -> int | None:
    """A DLA core when the caller asked for device "DLA"/"DLA0"/"DLA1"; the GPU otherwise."""
    device = (options.device or "").strip().upper()
    if not device.startswith("DLA"):
        return None
    dla = options.target.dla
    if dla is None:
        raise UsageError(f"device {options.device!r}: {options.target.name} has no DLA")
    core = int(device[3:] or 0) if device[3:].isdigit() or not device[3:] else -1
    if not 0 <= core < dla.cores:
        raise UsageError(f"device {options.device!r}: {options.target.name} has DLA cores 0 to {dla.cores - 1}")
    return core


def optimization_profile(model: ir.Model, options: CompileOptions) -> tuple[dict[str, dict[str, Any]], list[str]]:
    """min/opt/max of every dynamic input: from options.shape_ranges, else derived (and marked "default"):
    a batch dim (the first axis, or named like "batch") gets BATCH_RANGE, any other LENGTH_RANGE, and dims
    sharing a symbolic name share the range of their first appearance, so inputs sharing "sequence" agree."""
    profile, notes = {}, []
    named: dict[str, tuple[int, int, int]] = {}
    for spec in hir.input_specs(model):
        if spec.shape is not None and all(isinstance(d, int) for d in spec.shape):
            continue
        given = options.shape_ranges.get(spec.name) or _fixed(options.shapes.get(spec.name))
        if given is not None:
            profile[spec.name] = _given_range(spec, given)
        elif spec.shape is None:
            notes.append(f"input '{spec.name}' has no known rank: give build_engine.py --shape {spec.name}=...")
        else:
            ranges = [(d, d, d) if isinstance(d, int) else _dim_range(axis, d, named)
                      for axis, d in enumerate(spec.shape)]
            profile[spec.name] = {**{key: [r[i] for r in ranges] for i, key in enumerate(("min", "opt", "max"))},
                                  "source": "default"}
    if any(shapes["source"] == "default" for shapes in profile.values()):
        notes.append("dynamic dims got default ranges (batch 1/1/8, other dims 1/128/512): check them in "
                     f"{CONFIG_FILE} or override with build_engine.py --shape NAME=MIN:OPT:MAX")
    return profile, notes


def _dim_range(axis: int, name: str | None, named: dict[str, tuple[int, int, int]]) -> tuple[int, int, int]:
    if name and name in named:
        return named[name]
    dim_range = BATCH_RANGE if axis == 0 or (name and "batch" in name.lower()) else LENGTH_RANGE
    if name:
        named[name] = dim_range
    return dim_range


def _fixed(shape) -> tuple | None:
    return None if shape is None else (tuple(shape),) * 3


def _given_range(spec, given) -> dict[str, Any]:
    low, best, high = (list(shape) for shape in given)
    rank = None if spec.shape is None else len(spec.shape)
    for shape in (low, best, high):
        if rank is not None and len(shape) != rank:
            raise UsageError(f"shape range of '{spec.name}': {shape} has rank {len(shape)}, the input has {rank}")
        for axis, dim in enumerate(shape):
            fixed = spec.shape[axis] if spec.shape is not None else None
            if isinstance(fixed, int) and dim != fixed:
                raise UsageError(f"shape range of '{spec.name}': axis {axis} is fixed at {fixed}, not {dim}")
    if not all(a <= b <= c for a, b, c in zip(low, best, high)):
        raise UsageError(f"shape range of '{spec.name}': needs min <= opt <= max per axis, "
                         f"got {low}, {best}, {high}")
    return {"min": low, "opt": best, "max": high, "source": "given"}


def _json_text(data: dict) -> str:
    """Indented JSON with each shape on one line."""
    text = json.dumps(data, indent=2)
    return re.sub(r"\[[\d\s,]*\]", lambda match: "[" + ", ".join(re.findall(r"\d+", match.group())) + "]",
                  text) + "\n"


def _dims(shape) -> str:
    return "x".join(str(d) for d in shape)


# README


def render_readme(model: ir.Model, options: CompileOptions, plan: BuildPlan, dla_fallbacks: list[PreflightIssue],
                  folder: str) -> str:
    from optimizer import __version__

    target = options.target
    load_shapes = ""
    if plan.profile:
        load_shapes = " --shapes=" + ",".join(f"{name}:{_dims(s['opt'])}" for name, s in plan.profile.items())
    return README.substitute(
        target=target.name, description=target.description,
        hwopt_version=__version__, opset=model.opset_imports.get("", "?"), precision_text=_precision_text(plan),
        versions=target_versions(target, with_notes=True), folder=folder or "bundle",
        typing_text=_typing_text(plan), dla_build=_dla_build(plan, target),
        trtexec_10=plan.trtexec_command(10), trtexec_11=plan.trtexec_command(11), load_shapes=load_shapes,
        precision_section=_precision_section(plan, options), shapes_section=_shapes_section(model, plan),
        dla_section=_dla_section(target, dla_fallbacks), preflight_section=_preflight_section(model, options),
    )


def _precision_text(plan: BuildPlan) -> str:
    return {
        "fp16": "float16 compute with float32 where hwopt kept it (explicit Casts)",
        "bf16": "bfloat16 weights with Casts to float32",
        "int8": "symmetric INT8 Q/DQ (zero points 0) on the inputs of Conv/MatMul/Gemm",
    }.get(plan.precision, plan.precision)


def _typing_text(plan: BuildPlan) -> str:
    flags = ", ".join(f"`{flag}`" for flag in plan.precision_flags)
    if {"FP16", "BF16"} & set(plan.precision_flags):
        ten = (f"- TensorRT 10.x: a weakly typed network with the builder flags this ONNX needs ({flags}), so "
               "TensorRT may also run in reduced precision the layers hwopt kept in float32; `--strongly-typed` "
               "makes every layer follow the ONNX's types exactly, as hwopt verified them.")
    elif flags:
        ten = (f"- TensorRT 10.x: a weakly typed network with the flag its Q/DQ nodes need ({flags}); the layers "
               "without Q/DQ stay float32, as in the ONNX.")
    else:
        ten = "- TensorRT 10.x: the network as the fp32 ONNX says, no precision flags."
    return ten + ("\n- TensorRT 11.x: every network is strongly typed; the ONNX's types alone decide each layer's "
                  "precision.")


def _dla_build(plan: BuildPlan, target) -> str:
    if target.dla is None:
        return ""
    core = plan.dla_core if plan.dla_core is not None else 0
    return (f"\nOn the DLA (core {core} of {target.dla.cores}), with GPU fallback for the layers it cannot "
            "run:\n\n"
            f"    python3 build_engine.py --dla-core {core}\n"
            + ("    python3 build_engine.py --gpu        # GPU only\n" if plan.dla_core is not None else ""))


def _precision_section(plan: BuildPlan, options: CompileOptions) -> str:
    layers = options.layers
    lines = [f"hwopt produced **{plan.precision}**: {_precision_text(plan)}."]
    if layers:
        floats = {name: p for name, p in layers.items() if p.startswith("float32")}
        stay = f"; {len(floats)} stays float32:" if len(floats) == 1 else f"; {len(floats)} stay float32:"
        lines.append(f"{len(layers) - len(floats)} of {len(layers)} layers run in reduced precision"
                     + (stay if floats else "."))
        lines += [f"- `{name}`: {p}" for name, p in list(floats.items())[:MAX_README_ROWS]]
        if len(floats) > MAX_README_ROWS:
            lines.append(f"- ... and {len(floats) - MAX_README_ROWS} more (manifest.json lists every layer)")
    lines.append("")
    lines.append("TensorRT 10.x builder flags for this ONNX: "
                 + (", ".join(f"`{f}`" for f in plan.precision_flags) or "none") + ".")
    return "\n".join(lines)


def _shapes_section(model: ir.Model, plan: BuildPlan) -> str:
    lines = ["| Input | Type | Shape |", "|---|---|---|"]
    lines += [f"| `{spec.name}` | {spec.dtype} | {_shape_text(spec.shape)} |" for spec in hir.input_specs(model)]
    if not plan.profile:
        lines.append("\nEvery input is static: the engine is built for exactly these shapes.")
    else:
        lines += ["", ("Optimization profile (TensorRT tunes its kernels for `opt`, and runs any shape from "
                       "`min` to `max`):"), "", "| Input | min | opt | max | from |", "|---|---|---|---|---|"]
        lines += [f"| `{name}` | {_dims(s['min'])} | {_dims(s['opt'])} | {_dims(s['max'])} | "
                  f"{'hwopt default: check it' if s['source'] == 'default' else 'given'} |"
                  for name, s in plan.profile.items()]
        lines.append("\nChange them in `build_config.json`, or per build: "
                     "`python3 build_engine.py --shape NAME=MIN:OPT:MAX` (dims like 1x3x640x640).")
    lines += [f"\n{note}" for note in plan.notes]
    return "\n".join(lines)


def _shape_text(shape) -> str:
    if shape is None:
        return "unknown"
    return "scalar" if shape == () else "[" + ", ".join("?" if d is None else str(d) for d in shape) + "]"


def _dla_section(target, fallbacks: list[PreflightIssue]) -> str:
    dla = target.dla
    if dla is None:
        return f"{target.name} has no DLA: everything runs on the GPU."
    lines = [(f"{target.name} has {dla.cores} DLA core(s), computing {'/'.join(dla.precisions)}. With "
              "`--dla-core N`, TensorRT puts every layer the DLA can run there and the rest on the GPU "
              "(GPU_FALLBACK); build_engine.py prints the layers that fell back. DLA needs TensorRT 10.x "
              "(JetPack 6) or 11.4.1+ (JetPack 7.2.2+); TensorRT 11.0 to 11.3 have no DLA.")]
    if dla.notes:
        lines.append(f"\n{dla.notes}")
    if not fallbacks:
        lines.append("\nPre-flight found no node the DLA cannot run.")
        return "\n".join(lines)
    lines += ["", f"Nodes that fall back to the GPU ({len(fallbacks)}):", "", "| Node | Op | Why |",
              "|---|---|---|"]
    lines += [f"| `{issue.node}` | {issue.op} | {issue.problem} |" for issue in fallbacks[:MAX_README_ROWS]]
    if len(fallbacks) > MAX_README_ROWS:
        lines.append(f"\n... and {len(fallbacks) - MAX_README_ROWS} more (manifest.json details: "
                     "dla_gpu_fallback).")
    return "\n".join(lines)


def _preflight_section(model: ir.Model, options: CompileOptions) -> str:
    issues = [issue for issue in ops.preflight(model, options.target, options.precision)
              if issue.action != "fallback"]
    if not issues:
        return "TensorRT's ONNX parser takes every node (checked against onnx-tensorrt's operator table)."
    return "\n".join(f"- {issue}" for issue in issues)


# Running here (a machine with TensorRT and an NVIDIA GPU)


def _runner(folder: Path) -> build_script.EngineRunner:
    """Open the bundle's engine for this machine's GPU (no DLA), building it first unless cached: engines live
    under $HWOPT_TENSORRT_CACHE, else ~/.cache/hwopt/tensorrt, keyed by the bundle's model, settings and
    TensorRT version, so the artifact folder keeps exactly the files its manifest lists."""
    config = build_script.read_config(folder / CONFIG_FILE)
    engine_dir = engine_cache_dir(folder, tensorrt_version() or "")
    engine = engine_dir / ENGINE_FILE

    def build() -> None:
        engine_dir.mkdir(parents=True, exist_ok=True)
        build_script.build_engine(folder / config["onnx"], engine, profile=config["profile"],
                                  precision_flags=list(config["precision_flags"]),
                                  strongly_typed=bool(config["strongly_typed"]),
                                  sparse_weights=bool(config.get("sparse_weights")),
                                  timing_cache=engine_dir.parent / TIMING_CACHE_FILE)

    try:
        if not engine.is_file():
            build()
        try:
            return build_script.EngineRunner(engine)
        except build_script.EngineLoadError:
            build()  # an engine of another TensorRT version or GPU: rebuild it for this one
            return build_script.EngineRunner(engine)
    except (build_script.BuildError, RuntimeError, OSError) as error:
        raise ModelRunError(f"TensorRT: {error}", which="optimized model", phase="load") from None


def engine_cache_dir(folder: Path, tensorrt: str) -> Path:
    digest = hashlib.sha256(tensorrt.encode())
    for name in (CONFIG_FILE, MODEL_FILE):
        digest.update(sha256_of(folder / name).encode())
    root = Path(os.environ.get("HWOPT_TENSORRT_CACHE") or Path.home() / ".cache" / "hwopt" / "tensorrt")
    return root / digest.hexdigest()[:20]


class TensorRTSession:
    """A built engine as a hwopt session: NumPy feeds in, outputs by name."""

    def __init__(self, runner: build_script.EngineRunner, *, label: str) -> None:
        self.runner = runner
        self.label = label
        self.output_names = list(runner.output_names)
        self.arena_bytes = engine_device_memory(getattr(runner, "engine", None))

    def run(self, feeds: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
        try:
            return self.runner.run(dict(feeds))
        except (build_script.BuildError, RuntimeError, TypeError, ValueError) as error:
            raise ModelRunError(f"TensorRT cannot run the {self.label}: {error}", which=self.label) from None

    def run_raw(self, feeds: Mapping[str, np.ndarray]) -> None:
        self.runner.set_inputs(dict(feeds))
        self.runner.execute()


def engine_device_memory(engine: Any) -> int | None:
    """The GPU memory an execution context of `engine` takes for activations and scratch, which the process's
    RSS does not show; None where TensorRT does not say. Untested on hardware."""
    # device_memory_size_v2 since 10.1 (int64); device_memory_size before, deprecated since.
    for attribute in ("device_memory_size_v2", "device_memory_size"):
        size = getattr(engine, attribute, None)
        if isinstance(size, int):
            return size
    return None
