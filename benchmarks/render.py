"""Benchmark runs as text: one run as a report, several side by side for `optimize compare`."""

from __future__ import annotations

from collections.abc import Callable, Sequence

from optimizer.benchmarks.run_report import RunReport

TOP_OPERATORS = 8


def size_text(n: int | None) -> str:
    if n is None:
        return "-"
    for unit, scale in (("GB", 1e9), ("MB", 1e6), ("kB", 1e3)):
        if n >= scale:
            return f"{n / scale:.1f} {unit}"
    return f"{n} B"


def ms_text(value: float | None) -> str:
    if value is None:
        return "-"
    return f"{value:.3f} ms" if value < 10 else f"{value:.1f} ms"


def render_run(report: RunReport) -> str:
    kind = " (ESTIMATED: roofline, not measured)" if report.kind == "estimated" else ""
    lines = [
        f"{report.model.name} on {report.device}{kind}",
        (f"  {report.label} | target {report.target} | {report.runtime} {report.runtime_version} | "
         f"threads {report.threads or 'default'} | run {report.id}"),
        f"  size {size_text(report.model.size_bytes)}"
        + (f" | load {report.load_seconds:.2f} s" if report.load_seconds is not None else "")
        + (f" | compile {report.compile_seconds:.2f} s" if report.compile_seconds is not None else ""),
    ]
    if report.memory is not None:
        memory = report.memory
        line = (f"  peak memory {size_text(memory.peak_rss_bytes)} RSS "
                f"({size_text(memory.rss_before_bytes)} before loading)")
        if memory.runtime_arena_bytes is not None:
            line += f", runtime arena {size_text(memory.runtime_arena_bytes)}"
        lines.append(line)
    if report.fidelity and "worst_cosine" in report.fidelity:
        lines.append(f"  fidelity vs original: worst output cosine {report.fidelity['worst_cosine']:.6f}")
    lines.append("")
    lines.append(f"  {'batch':>5} {'p50':>10} {'p90':>10} {'p99':>10} {'mean':>10} {'std':>9} {'runs':>6} "
                 f"{'median 95% CI':>21} {'samples/s':>10}")
    for result in report.batches:
        latency = result.latency
        interval = f"{latency.ci95_low_ms:.3f}-{latency.ci95_high_ms:.3f}"
        lines.append(f"  {result.batch:>5} {ms_text(latency.p50_ms):>10} {ms_text(latency.p90_ms):>10} "
                     f"{ms_text(latency.p99_ms):>10} {ms_text(latency.mean_ms):>10} {latency.std_ms:>6.3f} ms "
                     f"{latency.runs:>6} {interval:>21} {result.throughput_per_s:>10.1f}")
    if report.operators:
        lines.append("")
        lines.append(f"  hot operators ({report.runtime} profiler, per inference):")
        for op in report.operators[:TOP_OPERATORS]:
            lines.append(f"    {op.op_type:<28} {ms_text(op.total_ms):>10} {op.percent:5.1f}%  x{op.calls}")
    if report.environment is not None:
        env = report.environment
        lines.append("")
        lines.append(f"  {env.cpu_model}, {env.logical_cores} logical cores, {env.os}; load average "
                     f"{'/'.join(map(str, env.load_average)) or '-'}")
        lines.append(f"  ISA {' '.join(env.isa) or '-'}; "
                     + ", ".join(f"{name} {version}" for name, version in env.runtimes.items()))
    lines += [f"  note: {note}" for note in report.notes]
    return "\n".join(lines)


def render_comparison(reports: Sequence[RunReport]) -> str:
    """Runs as columns, facts as rows; the first run is the baseline the speed-ups are relative to."""
    if not reports:
        return "no runs to compare"
    baseline = reports[0].p50_ms
    rows: list[tuple[str, Callable[[RunReport], str]]] = [
        ("run", lambda r: r.id),
        ("model", lambda r: r.model.name),
        ("device", lambda r: r.device),
        ("kind", lambda r: r.kind),
        ("ran", lambda r: r.source),
        ("candidate", lambda r: r.label),
        ("runtime", lambda r: f"{r.runtime} {r.runtime_version}"),
        ("precision", lambda r: r.precision),
        ("threads", lambda r: str(r.threads or "default")),
    ]
    for batch in sorted({b.batch for r in reports for b in r.batches}):
        rows += [
            (f"p50 @{batch}", lambda r, b=batch: ms_text(_latency(r, b, "p50_ms"))),
            (f"p99 @{batch}", lambda r, b=batch: ms_text(_latency(r, b, "p99_ms"))),
            (f"samples/s @{batch}", lambda r, b=batch: _throughput(r, b)),
        ]
    rows += [
        ("speed-up vs first", lambda r: f"{baseline / r.p50_ms:.2f}x" if baseline and r.p50_ms else "-"),
        ("size", lambda r: size_text(r.model.size_bytes)),
        ("peak memory", _memory),
        ("load", lambda r: f"{r.load_seconds:.2f} s" if r.load_seconds is not None else "-"),
        ("worst cosine", lambda r: f"{r.fidelity['worst_cosine']:.5f}"
         if r.fidelity and "worst_cosine" in r.fidelity else "-"),
        ("hottest op", lambda r: f"{r.operators[0].op_type} {r.operators[0].percent:.0f}%" if r.operators else "-"),
        ("created", lambda r: r.created),
    ]
    table = [[name] + [cell(report) for report in reports] for name, cell in rows]
    widths = [max(len(row[i]) for row in table) for i in range(len(table[0]))]
    return "\n".join("  ".join(text.ljust(width) for text, width in zip(row, widths)).rstrip() for row in table)


def _latency(report: RunReport, batch: int, field: str) -> float | None:
    result = next((b for b in report.batches if b.batch == batch), None)
    return getattr(result.latency, field) if result else None


def _throughput(report: RunReport, batch: int) -> str:
    result = next((b for b in report.batches if b.batch == batch), None)
    return f"{result.throughput_per_s:.1f}" if result else "-"


def _memory(report: RunReport) -> str:
    """Peak RSS, and how much of it came with the model (the process held the rest before loading it)."""
    if report.memory is None:
        return "-"
    added = report.memory.peak_rss_bytes - report.memory.rss_before_bytes
    return f"{size_text(report.memory.peak_rss_bytes)} (+{size_text(max(added, 0))})"
