"""LiteRT (TFLite) as a backend: the artifact is a `.tflite` hwopt writes itself, with no TensorFlow.

`compile` converts hwopt's IR to one TFLite subgraph (convert.py, the op converters in ops/), lowers it to the
precision asked for (precision/: FP16 weights, dynamic-range INT8, or full-integer INT8 from activation ranges
calibrated on the float model), and writes it as `model.tflite`. The file is then loaded in LiteRT's interpreter
with XNNPACK, which checks that LiteRT takes it and records which operators XNNPACK runs.

The artifact keeps `model.onnx` beside it, as every hwopt artifact does: the float model the `.tflite` was
converted from (after hwopt's passes, before any precision lowering). It is what the report's graph summary and
the manifest's layer table describe, and a fallback that ONNX Runtime runs on the same devices.

Inputs and outputs keep the ONNX model's layout (NCHW images) unless `io_layout="nhwc"`, and stay float unless
full-integer INT8 is asked for with `io_dtype="int8"|"uint8"`; the manifest lists the `.tflite`'s own tensors,
and sessions take them as they are (see session.py for how verification feeds the float original's inputs).
"""

from __future__ import annotations

import importlib.metadata
import os
from collections import Counter
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import onnx_ir as ir
from optimizer.backends.base import Capabilities, Compiled, CompileOptions, PreflightIssue, runtime_installed
from optimizer.backends.litert.convert import ConversionError, GraphConverter, convert_graph
from optimizer.backends.litert.session import EXTRA, LiteRTSession
from optimizer.benchmarks.run_report import OperatorTime

from optimizer import ir as hir
from optimizer.artifact import TensorSpec
from optimizer.errors import HwoptError, PassError, UsageError

if TYPE_CHECKING:
    from optimizer.artifact import Artifact
    from optimizer.backends.litert.flatbuffer import TFLiteGraph
    from optimizer.targets.profiles import TargetProfile

MODEL_FILE = "model.tflite"
ONNX_FILE = "model.onnx"
PRECISIONS = ("fp32", "fp16", "int8-dynamic", "int8")
IO_LAYOUTS = ("onnx", "nhwc")
IO_DTYPES = ("float32", "int8", "uint8")
CONTROL_FLOW = frozenset({"If", "Loop", "Scan"})
STANDARD_DOMAINS = frozenset({"", "ai.onnx"})
# Nodes the writer turns into constant tensors when their inputs are constant: inside a subgraph that cannot
# be told yet, so they are not listed as missing there.
CONSTANT_OPS = frozenset({"Constant", "ConstantOfShape"})


class LiteRTBackend:
    name = "tflite"

    def capabilities(self) -> Capabilities:
        installed = runtime_installed("ai_edge_litert")
        return Capabilities(self.name, runtime_version() if installed else None, runs_here=installed,
                            devices=("CPU",), precisions=PRECISIONS, extra=EXTRA)

    def preflight(self, model: ir.Model, target: TargetProfile, precision: str) -> list[PreflightIssue]:
        """Every node the writer cannot express, named before anything is written: inputs without static
        shapes, ops from other domains, control flow (If/Loop/Scan) and the ops inside it that have no
        converter, then every node whose converter refuses its attributes or inputs (found by one conversion
        in memory that stands in for each node it cannot convert, so that one problem does not hide the next;
        a node fed by such a node is judged once that one is fixed)."""
        dynamic = _dynamic_inputs(model)
        problems = _unconvertible_ops(model)
        if not dynamic and all(node.domain in STANDARD_DOMAINS for node in model.graph):
            problems += _conversion_problems(model)  # the writer stops at the others, before any node
        # In the graph's order; the nodes inside subgraphs after the main graph's.
        position = {node.name: index for index, node in enumerate(model.graph)}
        problems.sort(key=lambda problem: position.get(problem[0], len(position)))
        return [PreflightIssue(node, op, problem, "error", self.name) for node, op, problem in dynamic + problems]

    def compile(self, model: ir.Model, options: CompileOptions, folder: Path) -> Compiled:
        """Write `folder/model.tflite` (and the float `model.onnx` it was converted from) for `options`."""
        folder = Path(folder)
        io_layout, io_dtype = check_io_options(options.io_layout, options.io_dtype, options.precision)
        if options.precision not in PRECISIONS:
            raise UsageError(f"the tflite backend writes {', '.join(PRECISIONS)}, not {options.precision}")
        hir.save_model(model, folder / ONNX_FILE)
        ranges = _activation_ranges(model, options) if options.precision == "int8" else None
        graph = _convert(model, io_layout)
        notes = []
        if options.precision != "fp32" or io_dtype != "float32":
            from optimizer.backends.litert.precision import lower_precision

            try:
                notes = lower_precision(graph, options.precision, ranges=ranges, io_dtype=io_dtype)
            except ValueError as error:
                raise PassError(f"tflite {options.precision}: {error}") from None
        _write_atomically(folder / MODEL_FILE, graph.serialize())
        # Loading it checks that LiteRT takes the file, and tells what XNNPACK took and what the I/O became.
        session = LiteRTSession(folder / MODEL_FILE, threads=options.threads, io_layout=io_layout,
                                output_names=[value.name for value in model.graph.outputs], label="compiled model")
        details: dict[str, Any] = {
            "io_layout": io_layout,
            "io_dtype": io_dtype,
            "threads": options.threads,
            "delegate": "XNNPACK (LiteRT's default CPU delegate)",
            **_operator_details(session),
            "onnx_model": "the float model the .tflite was converted from (before precision lowering)",
        }
        quantized_io = _io_quantization(session)
        if quantized_io:
            details["io_quantization"] = quantized_io
        if notes:
            details["notes"] = list(notes)
        return Compiled(entry=MODEL_FILE, runtime_version=runtime_version(), device="CPU", details=details,
                        inputs=_specs(session.input_details), outputs=_specs(session.output_details))

    def load(self, artifact: Artifact, *, threads: int | None = None) -> LiteRTSession:
        details = artifact.manifest.details
        return LiteRTSession(artifact.entry_path, threads=threads or details.get("threads"),
                             io_layout=details.get("io_layout", "onnx"),
                             output_names=[spec.name for spec in artifact.manifest.outputs], label="optimized model")

    def profile_operators(self, artifact: Artifact, feeds: Mapping[str, np.ndarray], *,
                          threads: int | None = None, runs: int = 10) -> list[OperatorTime]:
        """[]: LiteRT's Python interpreter has no per-operator profiler (its C++ benchmark_model tool has one,
        --enable_op_profiling=true). The manifest's details list the operators and which XNNPACK runs."""
        return []


def runtime_version() -> str:
    return importlib.metadata.version("ai-edge-litert")


def check_io_options(io_layout: str | None, io_dtype: str | None, precision: str) -> tuple[str, str]:
    """The artifact's I/O layout and dtype (defaults: the ONNX model's layout, float32), or a UsageError."""
    io_layout, io_dtype = io_layout or "onnx", io_dtype or "float32"
    if io_layout not in IO_LAYOUTS:
        raise UsageError(f"unknown I/O layout '{io_layout}'; choose one of {', '.join(IO_LAYOUTS)}")
    if io_dtype not in IO_DTYPES:
        raise UsageError(f"unknown I/O dtype '{io_dtype}'; choose one of {', '.join(IO_DTYPES)}")
    if io_dtype != "float32" and precision != "int8":
        raise UsageError(f"--io-dtype {io_dtype} makes the inputs and outputs integer, which needs full-integer "
                         f"INT8 (--precision int8 with --calibration); the precision is {precision}")
    return io_layout, io_dtype


# Pre-flight ---------------------------------------------------------------------------------------------------


Problem = tuple[str, str, str]
"""(node name, op, problem) of one node pre-flight names."""


def _dynamic_inputs(model: ir.Model) -> list[Problem]:
    problems = []
    for spec in hir.input_specs(model):
        if spec.shape is None or not all(isinstance(d, int) for d in spec.shape):
            problem = (f"TFLite tensors have static shapes and '{spec.name}' has dynamic dims {spec}; fix them "
                       f"with --shape {spec.name}=...")
            problems.append((spec.name, "graph input", problem))
    return problems


def _unconvertible_ops(model: ir.Model) -> list[Problem]:
    """Nodes of another domain and control flow in the main graph, then every node inside a subgraph that has
    no converter (the main graph's other missing ops are found by the conversion, which knows which nodes fold
    into constants)."""
    from optimizer.backends.litert.ops import CONVERTERS

    problems = []
    for node in model.graph:
        if node.domain not in STANDARD_DOMAINS:
            problems.append(_problem(node, f"no TFLite conversion for {_op_name(node)}"))
        elif node.op_type in CONTROL_FLOW:
            problems.append(_problem(node, _control_flow_problem(node)))
    for node, where in _subgraph_nodes(model.graph):
        if node.op_type in CONTROL_FLOW:
            problems.append(_problem(node, f"inside {where}: {_control_flow_problem(node)}"))
        elif node.domain not in STANDARD_DOMAINS or (node.op_type not in CONVERTERS
                                                     and node.op_type not in CONSTANT_OPS):
            problems.append(_problem(node, f"inside {where}: no TFLite conversion for {_op_name(node)}"))
    return problems


def _control_flow_problem(node: ir.Node) -> str:
    if node.op_type == "If":
        return ("control flow: hwopt writes one TFLite subgraph; make the condition constant (--freeze-input "
                "the input it depends on) so that the If folds into one branch")
    return f"control flow: hwopt writes one TFLite subgraph and does not unroll {node.op_type}"


def _subgraph_nodes(graph: ir.Graph) -> Iterator[tuple[ir.Node, str]]:
    """Every node inside the If/Loop/Scan bodies of `graph`, with where it sits (`If_0/then_branch`)."""
    for node in graph:
        for attribute in node.attributes.values():
            if attribute.type == ir.AttributeType.GRAPH:
                bodies = [(attribute.name, attribute.as_graph())]
            elif attribute.type == ir.AttributeType.GRAPHS:
                bodies = [(f"{attribute.name}[{i}]", body) for i, body in enumerate(attribute.as_graphs())]
            else:
                continue
            for name, body in bodies:
                where = f"{node.name or node.op_type}/{name}"
                for inner in body:
                    yield inner, where
                yield from ((inner, f"{where}/{place}") for inner, place in _subgraph_nodes(body))


def _conversion_problems(model: ir.Model) -> list[Problem]:
    """Every main-graph node the writer cannot convert: no converter, or a converter that refuses the node.

    The conversion runs in memory with each converter watched: a node that fails gets stand-in tensors for its
    outputs, so the nodes after it are still converted and checked."""
    from optimizer.backends.litert.ops import CONVERTERS

    watch = _Watch()
    converters = {op: watch.wrap(function) for op, function in CONVERTERS.items()}
    for node in model.graph:
        if node.op_type not in converters:
            # Control flow is already named by _unconvertible_ops.
            converters[node.op_type] = watch.missing(None if node.op_type in CONTROL_FLOW
                                                     else f"no TFLite conversion for {node.op_type}")
    try:
        convert_graph(model, converters)
    except (ConversionError, ValueError, KeyError) as error:
        if not watch.problems and not watch.failed:
            node = getattr(error, "node", None)
            problem = getattr(error, "problem", None) or _message(error)
            return [_problem(node, problem) if node is not None else ("(model)", "-", problem)]
    return watch.problems


class _Watch:
    """Converters that record what they refuse instead of stopping the conversion."""

    def __init__(self) -> None:
        self.problems: list[Problem] = []
        self.failed: set[str] = set()
        """Values with neither a converted tensor nor a stand-in."""
        self._stood_in: set[str] = set()

    def wrap(self, function):
        def watched(converter: GraphConverter, node: ir.Node) -> None:
            try:
                function(converter, node)
            except (ValueError, KeyError) as error:
                # A node fed by a stand-in may fail only because of it (a shape that is no longer constant).
                if not any(value is not None and value.name in self._stood_in | self.failed
                           for value in node.inputs):
                    self.problems.append(_problem(node, _message(error)))
                self._stand_in(converter, node)
        return watched

    def missing(self, problem: str | None):
        def stand_in(converter: GraphConverter, node: ir.Node) -> None:
            if problem is not None:
                self.problems.append(_problem(node, problem))
            self._stand_in(converter, node)
        return stand_in

    def _stand_in(self, converter: GraphConverter, node: ir.Node) -> None:
        for value in node.outputs:
            try:
                converter.output(value)
                self._stood_in.add(value.name)
            except (ValueError, KeyError):
                self.failed.add(value.name)


def _problem(node: ir.Node, problem: str) -> Problem:
    return node.name or "(unnamed)", _op_name(node), problem


def _op_name(node: ir.Node) -> str:
    return node.op_type if node.domain in STANDARD_DOMAINS else f"{node.domain}::{node.op_type}"


def _message(error: BaseException) -> str:
    return str(error.args[0]) if isinstance(error, KeyError) and error.args else str(error)


# Compile ------------------------------------------------------------------------------------------------------


def _convert(model: ir.Model, io_layout: str) -> TFLiteGraph:
    """The float TFLite graph; a node pre-flight did not catch is reported the same way."""
    from optimizer.backends.litert.ops import CONVERTERS
    from optimizer.preflight import PreflightError

    try:
        return convert_graph(model, CONVERTERS, io_layout=io_layout)
    except ConversionError as error:
        issue = PreflightIssue(error.node.name or "(unnamed)", error.node.op_type, error.problem, "error", "tflite")
        raise PreflightError(f"tflite cannot convert {issue}", [issue]) from None
    except ValueError as error:  # an input without a static shape
        raise UsageError(f"tflite: {error}") from None


def _activation_ranges(model: ir.Model, options: CompileOptions) -> dict:
    """Ranges of the float model's activations on the calibration samples, for full-integer INT8."""
    from optimizer.backends.litert.precision import activation_ranges

    if options.calibration is None:
        raise UsageError("full-integer INT8 for tflite needs calibration samples (CompileOptions.calibration) "
                         "to choose the activation ranges")
    return activation_ranges(model, options.calibration, threads=options.threads)


def _write_atomically(path: Path, data: bytes) -> None:
    """A temporary file beside `path`, then a rename: a failed run never leaves half a .tflite (the hidden
    name keeps a leftover out of the manifest)."""
    temporary = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    try:
        temporary.write_bytes(data)
        os.replace(temporary, path)
    except OSError as error:
        temporary.unlink(missing_ok=True)
        raise HwoptError(f"{path}: cannot write the TFLite model ({error.strerror or error})") from None


def _specs(details: Mapping[str, Mapping[str, Any]]) -> list[TensorSpec]:
    """The .tflite's own inputs or outputs by ONNX name, in the manifest's dtype names (float, int8, ...)."""
    return [TensorSpec(name, ir.DataType.from_numpy(np.dtype(detail["dtype"])).name.lower(),
                       [int(d) for d in detail["shape"]])
            for name, detail in details.items()]


def _io_quantization(session: LiteRTSession) -> dict[str, dict[str, float | int]]:
    """Scale and zero point of every integer input and output: what a deployment quantizes its inputs with."""
    quantized = {}
    for name, detail in [*session.input_details.items(), *session.output_details.items()]:
        scale, zero_point = detail["quantization"]
        if scale and np.dtype(detail["dtype"]).type in (np.int8, np.uint8):
            quantized[name] = {"scale": float(scale), "zero_point": int(zero_point)}
    return quantized


def _operator_details(session: LiteRTSession) -> dict[str, Any]:
    """Operator counts of the .tflite and which ones XNNPACK runs, from the loaded interpreter."""
    try:
        # The interpreter's node list is the only place the Python API shows the delegate's partitions.
        ops = session.interpreter._get_ops_details()
    except Exception:  # noqa: BLE001 - a private API: its absence costs the details only
        return {}
    delegates = [op for op in ops if op["op_name"] == "DELEGATE"]
    kernels = {op["index"]: op for op in ops if op["op_name"] != "DELEGATE"}
    producer = {int(t): index for index, op in kernels.items() for t in op["outputs"]}
    delegated: set[int] = set()
    for delegate in delegates:
        # A partition is every operator between the delegate node's inputs and its outputs.
        boundary = {int(t) for t in delegate["inputs"]}
        pending = [int(t) for t in delegate["outputs"]]
        while pending:
            index = producer.get(pending.pop())
            if index is None or index in delegated:
                continue
            delegated.add(index)
            pending.extend(int(t) for t in kernels[index]["inputs"] if t >= 0 and int(t) not in boundary)
    counts = Counter(op["op_name"] for op in kernels.values())
    outside = Counter(op["op_name"] for index, op in kernels.items() if index not in delegated)
    return {
        "operators": dict(counts.most_common()),
        "xnnpack": {"partitions": len(delegates), "operators": len(delegated),
                    "not_delegated": dict(outside.most_common())},
    }
