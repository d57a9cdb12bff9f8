"""The run report: what went in, what came out, what changed, how it verified and how fast it runs.

It is written as `report.json` beside the optimized model (schema versioned by REPORT_SCHEMA_VERSION) and
printed as a table.
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from optimizer.backends.base import PreflightIssue
from optimizer.backends.onnxruntime import LatencyStats
from optimizer.pipeline import PipelineReport
from optimizer.pruning.render import render_kernels, render_pruning
from optimizer.pruning.report import PruningReport
from optimizer.quantization.quantize import QuantizationReport
from optimizer.verify import Verification

if TYPE_CHECKING:
    from optimizer.hot_operators import HotOperatorReport

# 2: adds `quantization`; 3: adds the plan, pre-flight, candidates and artifact; 4: adds `pruning`, `kernels`
REPORT_SCHEMA_VERSION = 4


@dataclass
class ModelSummary:
    path: str
    size_bytes: int
    nodes: int
    op_histogram: dict[str, int]
    opset: int


@dataclass
class Report:
    source: str
    target: str
    runtime: str
    runtime_version: str
    opt_level: int
    inputs: list[str]
    original: ModelSummary
    optimized: ModelSummary
    pipeline: PipelineReport
    verification: Verification | None
    latency_original: LatencyStats | None = None
    latency_optimized: LatencyStats | None = None
    threads: int | None = None
    quantization: QuantizationReport | None = None
    device: str = "CPU"
    precision: str = "fp32"
    plan_notes: list[str] = field(default_factory=list)
    preflight: list[PreflightIssue] = field(default_factory=list)
    candidates: list[dict] = field(default_factory=list)
    """Every runtime tried: version, latency, fidelity, whether it verified and was chosen, or its error."""
    pruning: PruningReport | None = None
    kernels: HotOperatorReport | None = None
    """The hot-operator pass's decisions: which nodes run on hwopt's custom kernels, measured how."""
    artifact_files: list[str] = field(default_factory=list)
    artifact_bytes: int = 0
    seconds: dict[str, float] = field(default_factory=dict)
    schema_version: int = REPORT_SCHEMA_VERSION

    @property
    def speedup(self) -> float | None:
        if self.latency_original is None or self.latency_optimized is None:
            return None
        return self.latency_original.median_ms / self.latency_optimized.median_ms

    def to_dict(self) -> dict:
        data = asdict(self)
        data["speedup"] = self.speedup
        if self.kernels is not None:
            data["kernels"] = self.kernels.to_dict()
        return data

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2, default=float)

    def write(self, path: str | os.PathLike) -> None:
        """Write report.json atomically (temporary file, then rename)."""
        path = Path(path)
        temporary = path.with_name(f".{path.name}.tmp-{os.getpid()}")
        temporary.write_text(self.to_json() + "\n", encoding="utf-8")
        os.replace(temporary, path)


def _size(n: int) -> str:
    for unit in ("B", "KB", "MB", "GB"):
        if n < 1024 or unit == "GB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024


def render_table(report: Report) -> str:
    """A plain-text summary for the terminal."""
    lines = [
        f"hwopt  {report.source} -> {report.optimized.path}",
        f"target {report.target} ({report.runtime} {report.runtime_version} on {report.device}, "
        f"{report.precision}, O{report.opt_level}" + (f", {report.threads} threads" if report.threads else "") + ")",
        *(f"plan: {note}" for note in report.plan_notes),
        *_render_candidates(report.candidates),
        *(f"pre-flight: {issue}" for issue in report.preflight),
        "",
        f"{'':24}{'original':>12}{'optimized':>12}",
    ]
    if report.latency_original and report.latency_optimized and report.runtime != "onnxruntime":
        # The original is always timed in ONNX Runtime; say so where the artifact runs in another runtime.
        lines.append(f"{'timed in':24}{'onnxruntime':>12}{report.runtime:>12}")
    if report.latency_original and report.latency_optimized:
        lines.append(
            f"{'latency, median ms':24}{report.latency_original.median_ms:>12.3f}"
            f"{report.latency_optimized.median_ms:>12.3f}   {report.speedup:.2f}x"
        )
    lines.append(f"{'size':24}{_size(report.original.size_bytes):>12}{_size(report.optimized.size_bytes):>12}")
    lines.append(f"{'nodes':24}{report.original.nodes:>12}{report.optimized.nodes:>12}")
    ops = list(dict.fromkeys([*report.original.op_histogram, *report.optimized.op_histogram]))
    for op in ops:
        before, after = report.original.op_histogram.get(op, 0), report.optimized.op_histogram.get(op, 0)
        marker = "" if before == after else "  *"
        lines.append(f"  {op:22}{before:>12}{after:>12}{marker}")
    lines.append("")
    changed = [f"{p.name} {p.rewrites}" for s in report.pipeline.stages for p in s.passes if p.rewrites]
    lines.append("passes: " + (", ".join(changed) if changed else "nothing to change"))
    verification = report.verification
    if verification is None:
        lines.append("fidelity: not verified (--no-verify)")
    else:
        lines.append(f"fidelity ({verification.inputs_source} inputs, cosine >= "
                     f"{verification.thresholds.min_cosine}): {'PASS' if verification.passed else 'FAIL'}")
        for o in verification.outputs:
            lines.append(
                f"  {o.name:22} cosine {o.cosine:.7f}  max abs {o.max_abs_error:.3g}  "
                f"max rel {o.max_rel_error:.3g}" + ("" if o.decides else "  (reported, not judged)")
            )
    if report.quantization is not None:
        lines.extend(["", *render_quantization(report.quantization)])
    if report.pruning is not None:
        lines.extend(["", *render_pruning(report.pruning)])
    if report.kernels is not None and report.kernels.decisions:
        lines.extend(["", *render_kernels(report.kernels)])
    return "\n".join(lines)


MAX_FLOAT_LAYERS_SHOWN = 12


def _render_candidates(candidates: list[dict]) -> list[str]:
    if len(candidates) < 2:
        return []
    lines = []
    for c in candidates:
        if c["error"]:
            outcome = f"not used: {c['error']}"
        else:
            latency = f"{c['latency_ms']:.3f} ms" if c["latency_ms"] is not None else "not timed"
            cosine = f", cosine {c['worst_cosine']:.5f}" if c["worst_cosine"] is not None else ""
            outcome = f"{latency}{cosine}" + ("  <- chosen" if c["chosen"] else "")
        lines.append(f"candidate {c['runtime']:12} {outcome}")
    return lines


def render_quantization(quantization: QuantizationReport) -> list[str]:
    lines = [f"precision: {quantization.precision}" + (f" ({quantization.scheme})" if quantization.scheme else "")]
    if quantization.calibration:
        lines.append(f"calibration: {quantization.calibration_method} ranges from {quantization.calibration_samples} "
                     f"sample(s): {quantization.calibration}")
    lines.extend(quantization.techniques)
    counts: dict[str, int] = {}
    for precision in quantization.layers.values():
        counts[precision.split(" (")[0]] = counts.get(precision.split(" (")[0], 0) + 1
    lines.append("layers: " + (", ".join(f"{n} {p}" for p, n in sorted(counts.items())) or "none"))
    kept = list(quantization.float_layers.items())
    for name, precision in kept[:MAX_FLOAT_LAYERS_SHOWN]:
        lines.append(f"  {name:40} {precision}")
    if len(kept) > MAX_FLOAT_LAYERS_SHOWN:
        lines.append(f"  ... {len(kept) - MAX_FLOAT_LAYERS_SHOWN} more float layers in report.json")
    if quantization.budget:
        budget = quantization.budget
        lines.append(f"accuracy budget ({budget['metric']}): baseline {budget['baseline']:.4f}, "
                     f"result {budget['score']:.4f}, drop {budget['drop']:.4f} of {budget['max_drop']:.4f} "
                     f"allowed: {'MET' if budget['met'] else 'NOT MET'}")
        for candidate in quantization.candidates:
            latency = f"{candidate['latency_ms']:.3f} ms" if candidate["latency_ms"] is not None else "-"
            lines.append(f"  {candidate['name']:40} score {candidate['score']:.4f}  {latency}")
    return lines
