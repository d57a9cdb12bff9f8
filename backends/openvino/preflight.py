"""What OpenVINO cannot take, found before compiling, each named by the ONNX node it comes from.

Four checks:

1. static shapes: the NPU compiles for fixed shapes only.
2. conversion: OpenVINO's ONNX frontend converts the graph partially; a node it has no rule for stays an
   ONNXFrameworkNode (a custom-domain op, most com.microsoft ops), a node whose rule failed becomes a
   NotSupportedONNXNode (e.g. Conv on an input of unknown rank). If/Loop bodies are searched too.
3. dynamic rank: the CPU and GPU plugins need every tensor's rank when compiling. An `If` whose branches return
   different ranks (PyTorch exports `x.squeeze(-1)` of a dynamic dim that way) has an output of unknown rank,
   and the plugin refuses the whole model. Where the device is here, a trial compile confirms it.
4. device support: `core.query_model` on a device that is here lists the ops its plugin cannot run.

Checks 3 and 4 run only on a model that converts; their findings would otherwise repeat the conversion's.

Every issue's action is "error": this backend does not split a model across devices (HETERO).
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import onnx_ir as ir
from optimizer.backends.base import PreflightIssue
from optimizer.backends.openvino.runtime import (
    DEVICE_OF_TYPE,
    brief,
    core,
    device_present,
    onnx_frontend,
    onnx_source,
)

from optimizer import ir as hir

RUNTIME = "openvino"
UNCONVERTED = "ONNXFrameworkNode"
CONVERSION_FAILED = "NotSupportedONNXNode"
LOOP_OPS = frozenset({"Loop", "TensorIterator"})
NOT_COMPUTE = frozenset({"Parameter", "Result", "Constant"})
# One entry of the frontend's failure log: "-- Conv-16 with a message:\n ... <Node(Conv): name>': ... reason".
_FAILURE_ENTRY = re.compile(r"<Node\((?P<op>[\w.]+)\): (?P<name>[^>]*)>'?:?(?P<reason>.*?)(?=\n-- |\nSummary:|\Z)",
                            re.DOTALL)
_NO_RULE = re.compile(r"No conversion rule found for operations: ([^\n]*)")


def preflight_issues(model: ir.Model, device: str) -> list[PreflightIssue]:
    """Every node of `model` that OpenVINO cannot convert, or that `device` cannot compile or run."""
    issues = _static_shape_issues(model, device) if device.startswith("NPU") else []
    frontend = onnx_frontend(model)
    with onnx_source(model) as source:
        try:
            # The input model stays referenced while the partial model is walked: its nodes point into it.
            input_model = frontend.load(source)
            partial = frontend.convert_partially(input_model)
        except Exception as error:  # noqa: BLE001 - a model the frontend cannot read at all
            return [*issues, PreflightIssue("(model)", "-", f"OpenVINO's ONNX frontend cannot read the model: "
                                            f"{brief(error)}", "error", RUNTIME)]
        return issues + _model_issues(model, partial, frontend, device)


def _model_issues(model: ir.Model, partial: Any, frontend: Any, device: str) -> list[PreflightIssue]:
    nodes = _onnx_nodes_by_name(model)
    issues = []
    unconverted = [op for op in _all_ops(partial) if op.get_type_name() in (UNCONVERTED, CONVERSION_FAILED)]
    if unconverted:
        reasons, no_rule = _conversion_failures(frontend, model)
        for op in unconverted:
            node = nodes.get(op.get_friendly_name())
            name, op_name = _onnx_names(op, node)
            if op.get_type_name() == UNCONVERTED or (node is not None and _qualified(node) in no_rule):
                problem = f"OpenVINO's ONNX frontend has no conversion for {op_name}"
            else:
                # The frontend's log gives the reason for the first failing node of each op type only.
                reason = (reasons.get(name) or reasons.get(op.get_friendly_name())
                          or reasons.get(node.op_type if node is not None else "") or "its conversion rule failed")
                problem = f"OpenVINO's ONNX frontend cannot convert it: {reason}"
            issues.append(PreflightIssue(name, op_name, problem, "error", RUNTIME))
        return issues
    rank_issues = _dynamic_rank_issues(partial, nodes, device)
    if rank_issues or not device_present(device):
        return rank_issues
    return _unsupported_on_device(partial, nodes, device)


def _static_shape_issues(model: ir.Model, device: str) -> list[PreflightIssue]:
    issues = []
    for spec in hir.input_specs(model):
        if spec.shape is None or any(not isinstance(dim, int) for dim in spec.shape):
            issues.append(PreflightIssue(
                spec.name, "graph input", f"OpenVINO's {device} plugin compiles static shapes only and input "
                f"'{spec.name}' has dynamic dims ({spec}); fix them with --shape {spec.name}=...", "error",
                RUNTIME))
    return issues


def _dynamic_rank_issues(ov_model: Any, nodes: dict[str, ir.Node], device: str) -> list[PreflightIssue]:
    issues = []
    for op in _all_ops(ov_model):
        if op.get_type_name() in NOT_COMPUTE:
            continue
        unknown = [index for index, output in enumerate(op.outputs()) if output.get_partial_shape().rank.is_dynamic]
        # Only where the unknown rank starts: everything downstream inherits it.
        if not unknown or any(value.get_partial_shape().rank.is_dynamic for value in op.input_values()):
            continue
        name, op_name = _onnx_names(op, nodes.get(op.get_friendly_name()))
        why = ("its branches return tensors of different ranks (e.g. Squeeze in one, Identity in the other)"
               if op.get_type_name() == "If" else "the rank depends on values known only at run time")
        issues.append(PreflightIssue(
            name, op_name, f"output {unknown[0]} has unknown rank: {why}; OpenVINO's {device.split('.')[0]} plugin needs every "
            "rank when compiling. Fix the input shapes with --shape (and any input the condition reads) so "
            "OpenVINO can resolve it", "error", RUNTIME))
    if issues and device_present(device):
        # The plugin's own transformations resolve some of these (shape arithmetic on static dims): believe
        # the device when it compiles the model.
        try:
            core().compile_model(ov_model, device)
        except Exception:  # noqa: BLE001 - the rank error itself, or any other refusal: the issues stand
            return issues
        return []
    return issues


def _unsupported_on_device(ov_model: Any, nodes: dict[str, ir.Node], device: str) -> list[PreflightIssue]:
    try:
        supported = core().query_model(ov_model, device)
    except Exception as error:  # noqa: BLE001 - a plugin that cannot even query the model refuses all of it
        return [PreflightIssue("(model)", "-", f"OpenVINO's {device} plugin refuses the model: {brief(error)}",
                               "error", RUNTIME)]
    issues = []
    for op in ov_model.get_ordered_ops():
        if op.get_type_name() in NOT_COMPUTE or op.get_friendly_name() in supported:
            continue
        name, op_name = _onnx_names(op, nodes.get(op.get_friendly_name()))
        issues.append(PreflightIssue(name, op_name, f"OpenVINO's {device} plugin cannot run {op.get_type_name()}",
                                     "error", RUNTIME))
    return issues


def _conversion_failures(frontend: Any, model: ir.Model) -> tuple[dict[str, str], set[str]]:
    """From the log a full conversion raises: node name (and op type) -> why its conversion rule failed, and
    the ops ("domain.Op") that have no rule at all."""
    try:
        with onnx_source(model) as source:
            frontend.convert(frontend.load(source))
    except Exception as error:  # noqa: BLE001 - the OpConversionFailure whose text is wanted
        text = str(error)
    else:
        return {}, set()
    reasons: dict[str, str] = {}
    for match in _FAILURE_ENTRY.finditer(text):
        reason = brief(Exception(match["reason"]), 200) or "its conversion rule failed"
        reasons[match["name"]] = reason
        reasons.setdefault(match["op"], reason)
    no_rule = _NO_RULE.search(text)
    return reasons, {op.strip() for op in no_rule[1].split(",")} if no_rule else set()


def _all_ops(ov_model: Any) -> Iterator[Any]:
    """Every op of an ov.Model, into If/Loop/TensorIterator bodies."""
    for op in ov_model.get_ordered_ops():
        yield op
        if op.get_type_name() == "If":
            yield from _all_ops(op.get_then_body())
            yield from _all_ops(op.get_else_body())
        elif op.get_type_name() in LOOP_OPS:
            yield from _all_ops(op.get_function())


def _onnx_nodes_by_name(model: ir.Model) -> dict[str, ir.Node]:
    """ONNX nodes by name and by output name: OpenVINO names a framework node after its first output."""
    nodes: dict[str, ir.Node] = {}
    for node in hir.all_nodes(model):
        for output in node.outputs:
            nodes.setdefault(output.name, node)
        if node.name:
            nodes[node.name] = node
    return nodes


def _onnx_names(op: Any, node: ir.Node | None) -> tuple[str, str]:
    """The ONNX node name and op an OpenVINO op came from; OpenVINO's own where no ONNX node matches."""
    if node is None:
        return op.get_friendly_name(), op.get_type_name()
    return node.name or op.get_friendly_name(), _op_label(node)


def _qualified(node: ir.Node) -> str:
    """How OpenVINO's frontend spells a node's op in its log: "ai.onnx.Conv", "com.microsoft.FusedGelu"."""
    return f"{node.domain or 'ai.onnx'}.{node.op_type}"


def _op_label(node: ir.Node) -> str:
    return node.op_type if hir.is_standard_op(node) else f"{node.domain}::{node.op_type}"


def device_for_target(target: Any) -> str:
    return DEVICE_OF_TYPE.get(getattr(target, "device_type", "cpu"), "CPU")
