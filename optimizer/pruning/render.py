"""The terminal lines of a run report's pruning and custom-kernel sections."""

from __future__ import annotations

from typing import TYPE_CHECKING

from optimizer.pruning.report import GraphCost, PruningReport

if TYPE_CHECKING:
    from optimizer.hot_operators import HotOperatorReport

MAX_LAYERS_SHOWN = 12


def render_pruning(report: PruningReport) -> list[str]:
    header = (f"pruning: {report.method}, {report.sparsity:.0%} ({report.scope}, {report.importance} importance), "
              f"{report.pruned_layers} layer(s) in {report.seconds:.1f} s")
    lines = [header]
    if report.before is not None and report.after is not None:
        lines.append(_cost_line("parameters", report.before, report.after, "parameters", "nonzero_parameters"))
        if report.before.flops:
            lines.append(_cost_line("FLOPs", report.before, report.after, "flops", "nonzero_flops"))
    fidelity = report.fidelity
    if fidelity:
        parts = [f"{key.replace('_', ' ')} {value:.5f}" for key, value in fidelity.items()]
        lines.append("pruning cost, output cosine vs the original: " + ", ".join(parts))
    lines.extend(f"  recovery: {step}" for step in report.recovery)
    for layer in report.layers[:MAX_LAYERS_SHOWN]:
        shape = (f"{_dims(layer.weight_shape_before)} -> {_dims(layer.weight_shape_after)}"
                 if layer.weight_shape_before != layer.weight_shape_after else _dims(layer.weight_shape_after))
        lines.append(f"  {layer.name[:40]:40} {layer.op_type:8} {shape:24} sparsity {layer.sparsity:.2f}"
                     + (f"  {layer.note}" if layer.note else ""))
    if len(report.layers) > MAX_LAYERS_SHOWN:
        lines.append(f"  ... {len(report.layers) - MAX_LAYERS_SHOWN} more layers in report.json")
    return lines


def render_kernels(report: HotOperatorReport) -> list[str]:
    hottest = ", ".join(f"{op['op_type']} {op['percent']:.0f}%" for op in report.profile[:4])
    lines = [f"custom kernels ({report.runtime}" + (f"; hottest: {hottest}" if hottest else "") + ")"]
    for decision in report.decisions:
        timing = ""
        if decision.baseline_ms is not None and decision.custom_ms is not None:
            timing = f" {decision.baseline_ms:.3f} -> {decision.custom_ms:.3f} ms ({decision.speedup:.2f}x)"
        verdict = "substituted" if decision.substituted else "kept"
        lines.append(f"  {len(decision.nodes)} x {_dims(decision.weight_shape)} {decision.fused} at "
                     f"{decision.density:.0%} blocks: {verdict}{timing}; {decision.reason}")
    lines.extend(f"  note: {note}" for note in report.notes)
    return lines


def _cost_line(label: str, before: GraphCost, after: GraphCost, dense: str, nonzero: str) -> str:
    text = f"{label}: {_count(getattr(before, dense))} -> {_count(getattr(after, dense))}"
    if getattr(after, nonzero) != getattr(after, dense):
        text += f" ({_count(getattr(after, nonzero))} nonzero)"
    return text


def _count(value: int) -> str:
    for unit, scale in (("G", 1e9), ("M", 1e6), ("K", 1e3)):
        if value >= scale:
            return f"{value / scale:.2f}{unit}"
    return str(value)


def _dims(shape) -> str:
    return "x".join(str(d) for d in shape)
