"""Prove, on a machine without an NVIDIA GPU, that a bundle's ONNX parses and builds: with TensorRT-RTX.

TensorRT itself needs a GPU to build an engine. TensorRT-RTX (PyPI `tensorrt-rtx-cu12`, import `tensorrt_rtx`)
is NVIDIA's TensorRT for RTX GPUs: the same ONNX parser (onnx-tensorrt) and builder API, strongly typed
networks only (like TensorRT 11.x), and an ahead-of-time build that needs no GPU: it compiles the network for
a target compute capability (`IBuilderConfig.set_compute_capability`, SM75 to SM121; the kernels are finished
on the GPU at first run). So a parse error here is one TensorRT's parser would raise on the device, naming
the node; a build error is a network TensorRT cannot make an engine of. Not covered: tactics and kernels for
the real device (RTX has no DLA and no SM 8.7/9.0 target), and TensorRT 10.x's weakly typed mode.
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from optimizer.backends.base import runtime_installed

from optimizer.errors import RuntimeNotAvailableError

RTX_MODULE = "tensorrt_rtx"
RTX_COMPUTE_CAPABILITIES = ("7.5", "8.0", "8.6", "8.9", "12.0", "12.1")
"""Targets TensorRT-RTX 1.x builds for (ComputeCapability.SM75 ... SM121)."""
DEFAULT_COMPUTE_CAPABILITY = "8.0"
# Without a GPU, RTX's parser appends a CUDA error to some messages (it tried to run a kernel); not the model's.
_NO_GPU_NOISE = re.compile(r"\s*\[checkMacros\.cpp::catchCudaError[^\]]*\][^()]*\([^()]*\([^()]*\)\)")


@dataclass
class RtxBuild:
    """What TensorRT-RTX made of one ONNX file."""

    parsed: bool
    built: bool
    problems: list[str] = field(default_factory=list)
    """Parser errors as `node (op): description`, then builder errors."""
    plan_bytes: int = 0
    parse_seconds: float = 0.0
    build_seconds: float = 0.0
    version: str = ""
    compute_capability: str = ""
    notes: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return self.parsed and self.built

    def __str__(self) -> str:
        if self.ok:
            return (f"TensorRT-RTX {self.version} built a {self.plan_bytes / 1e6:.1f} MB plan for sm "
                    f"{self.compute_capability} (parse {self.parse_seconds:.2f} s, "
                    f"build {self.build_seconds:.2f} s)")
        return f"TensorRT-RTX {self.version}: " + "; ".join(self.problems)


def rtx_available() -> bool:
    return runtime_installed(RTX_MODULE)


def rtx_compute_capability(sm: str | None) -> tuple[str, str | None]:
    """The RTX target for a device's compute capability: the same one, else the nearest below it (the lowest
    for older devices); and a note when it is not the same."""
    if not sm:
        return DEFAULT_COMPUTE_CAPABILITY, None
    wanted = _version(sm)
    if sm in RTX_COMPUTE_CAPABILITIES:
        return sm, None
    below = [cc for cc in RTX_COMPUTE_CAPABILITIES if _version(cc) <= wanted]
    chosen = below[-1] if below else RTX_COMPUTE_CAPABILITIES[0]
    return chosen, f"TensorRT-RTX has no sm {sm} target; built for sm {chosen}"


def _version(cc: str) -> tuple[int, ...]:
    return tuple(int(part) for part in cc.split("."))


def check_onnx(
    path: str | Path,
    *,
    profile: Mapping[str, Mapping[str, Sequence[int]]] | None = None,
    compute_capability: str | None = None,
    build: bool = True,
) -> RtxBuild:
    """Parse `path` into a strongly typed network and, with `build`, build a serialized plan in memory.

    `profile` gives dynamic inputs their {"min", "opt", "max"} shapes (build_config.json's "profile").
    """
    trt = _import_rtx()
    capability, note = rtx_compute_capability(compute_capability)
    result = RtxBuild(False, False, version=str(trt.__version__), compute_capability=capability,
                      notes=[note] if note else [])
    logger = _CollectingLogger(trt)
    builder = trt.Builder(logger)
    network = builder.create_network(1 << int(trt.NetworkDefinitionCreationFlag.STRONGLY_TYPED))
    parser = trt.OnnxParser(network, logger)
    start = time.perf_counter()
    result.parsed = bool(parser.parse_from_file(str(path)))
    result.parse_seconds = time.perf_counter() - start
    if not result.parsed:
        from optimizer.backends.tensorrt.templates.build_engine import parser_errors

        problems = parser_errors(parser) or logger.errors or ["the parser failed without saying why"]
        result.problems = [_NO_GPU_NOISE.sub("", problem) for problem in problems]
        return result
    if not build:
        return result
    config = builder.create_builder_config()
    config.num_compute_capabilities = 1
    config.set_compute_capability(getattr(trt.ComputeCapability, "SM" + capability.replace(".", "")), 0)
    problems = _add_profile(builder, network, config, profile or {})
    if problems:
        result.problems = problems
        return result
    start = time.perf_counter()
    plan = builder.build_serialized_network(network, config)
    result.build_seconds = time.perf_counter() - start
    result.built = plan is not None
    result.plan_bytes = plan.nbytes if plan is not None else 0
    if plan is None:
        result.problems = logger.errors or ["the builder failed without saying why"]
    return result


def check_bundle(folder: str | Path, *, compute_capability: str | None = None, build: bool = True) -> RtxBuild:
    """check_onnx on a TensorRT bundle's model.onnx, with its optimization profile and its target's sm."""
    folder = Path(folder)
    config = json.loads((folder / "build_config.json").read_text(encoding="utf-8"))
    return check_onnx(folder / config["onnx"], profile=config.get("profile") or {},
                      compute_capability=compute_capability or config.get("sm"), build=build)


def _import_rtx():
    try:
        import tensorrt_rtx
    except ImportError as error:
        raise RuntimeNotAvailableError(f"TensorRT-RTX is not installed ({error}): `pip install tensorrt-rtx-cu12` "
                                       "(CPU-only builds need no GPU)") from None
    return tensorrt_rtx


def _add_profile(builder, network, config, ranges) -> list[str]:
    dynamic = [network.get_input(i) for i in range(network.num_inputs)
               if -1 in tuple(network.get_input(i).shape)]
    if not dynamic:
        return []
    profile = builder.create_optimization_profile()
    problems = []
    for tensor in dynamic:
        shapes = ranges.get(tensor.name)
        if shapes is None:
            problems.append(f"input '{tensor.name}' {tuple(tensor.shape)} is dynamic and has no shape range")
            continue
        low, best, high = (tuple(shapes[key]) for key in ("min", "opt", "max"))
        if tensor.is_shape_tensor:
            profile.set_shape_input(tensor.name, low, best, high)
        else:
            profile.set_shape(tensor.name, low, best, high)
    config.add_optimization_profile(profile)
    return problems


def _CollectingLogger(trt):
    """A TensorRT logger that keeps error messages (and drops the rest, which RTX prints generously)."""

    class CollectingLogger(trt.ILogger):
        def __init__(self) -> None:
            trt.ILogger.__init__(self)
            self.errors: list[str] = []

        def log(self, severity, message) -> None:
            if severity in (trt.ILogger.Severity.ERROR, trt.ILogger.Severity.INTERNAL_ERROR):
                self.errors.append(" ".join(str(message).split()))

    return CollectingLogger()


_WHERE = re.compile(r"^(?P<node>.+?) \((?P<op>[\w.:]+)\): (?P<problem>.*)$")


def parser_issues(model, *, compute_capability: str | None = None) -> list:
    """Pre-flight by the real parser: each error TensorRT-RTX's ONNX parser raises on `model` (an onnx_ir
    model), as a PreflightIssue naming the node. Empty when RTX is absent or the model parses."""
    import tempfile

    from optimizer.backends.base import PreflightIssue

    from optimizer import ir as hir

    if not rtx_available():
        return []
    with tempfile.TemporaryDirectory(prefix="hwopt-rtx-") as scratch:
        path = Path(scratch) / "model.onnx"
        hir.save_model(model, path)
        result = check_onnx(path, compute_capability=compute_capability, build=False)
    issues = []
    for problem in result.problems:
        where = _WHERE.match(problem)
        node, op, text = (where["node"], where["op"], where["problem"]) if where else ("(model)", "-", problem)
        if "_branch_" in node:
            # TensorRT builds both branches of an If; one that only works for other inputs fails the build.
            text += ("; the node sits in an If branch, which TensorRT builds whichever way the condition goes: "
                     "if a configuration input selects it, freeze that input (--freeze-input NAME=VALUE)")
        issues.append(PreflightIssue(node, op, f"TensorRT's ONNX parser (checked with TensorRT-RTX "
                                     f"{result.version}): {text}", "error", "tensorrt"))
    return issues
