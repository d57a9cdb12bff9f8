"""Pre-flight: before compiling, every node the target cannot run as planned, and what will happen to it.

The device profile contributes what it knows without a runtime (static shapes on NPUs, precisions the device
lacks); the backend contributes what its runtime cannot run (unsupported ops, ops a DLA hands back to the GPU).
Issues whose action is "error" stop the run before anything is written.
"""

from __future__ import annotations

from collections.abc import Sequence

import onnx_ir as ir

from optimizer.backends.base import PreflightIssue
from optimizer.backends.registry import get_backend
from optimizer.errors import HwoptError
from optimizer.ir import input_specs
from optimizer.targets.plan import NATIVE_NEED, Plan

MAX_NAMED = 8


class PreflightError(HwoptError):
    """The target cannot run the model as planned; the message names the nodes."""

    def __init__(self, message: str, issues: Sequence[PreflightIssue]) -> None:
        super().__init__(message)
        self.issues = list(issues)


def preflight(model: ir.Model, plan: Plan, backend: str) -> list[PreflightIssue]:
    return [*_profile_issues(model, plan, backend), *get_backend(backend).preflight(model, plan.target,
                                                                                     plan.precision)]


def _profile_issues(model: ir.Model, plan: Plan, backend: str) -> list[PreflightIssue]:
    target, issues = plan.target, []
    if target.static_shapes:
        for spec in input_specs(model):
            if spec.shape is None or any(not isinstance(d, int) for d in spec.shape):
                issues.append(PreflightIssue(
                    spec.name, "graph input", f"{target.name} compiles static shapes only and '{spec.name}' has "
                    f"dynamic dims {spec}; fix them with --shape {spec.name}=...", "error", backend))
    need = NATIVE_NEED.get(plan.precision, plan.precision)
    if need not in target.precisions and target.device_type == "cpu":
        issues.append(PreflightIssue(
            "(all layers)", "-", f"{target.name} has no native {need} arithmetic; {plan.precision} shrinks the "
            "weights but the runtime computes in fp32 (casts or emulation)", "float", backend))
    return issues


def errors_of(issues: Sequence[PreflightIssue]) -> list[PreflightIssue]:
    return [issue for issue in issues if issue.action == "error"]


def raise_on_errors(issues: Sequence[PreflightIssue], plan: Plan, backend: str) -> None:
    errors = errors_of(issues)
    if not errors:
        return
    named = "; ".join(str(issue) for issue in errors[:MAX_NAMED])
    more = f"; and {len(errors) - MAX_NAMED} more (optimize check lists them all)" if len(errors) > MAX_NAMED \
        else ""
    raise PreflightError(f"target {plan.target.name} ({backend}, {plan.precision}) cannot run "
                         f"{len(errors)} node(s): {named}{more}", errors)


def render_issues(issues: Sequence[PreflightIssue]) -> list[str]:
    if not issues:
        return ["every node runs as planned"]
    width = max(len(issue.node) for issue in issues)
    return [f"  {issue.action:9} {issue.node:{width}}  {issue.op:20} {issue.problem}" for issue in issues]
