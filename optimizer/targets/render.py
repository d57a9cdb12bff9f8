"""Device profiles as text, for `optimize targets` (one line per target) and `optimize targets NAME` (all of one)."""

from __future__ import annotations

import textwrap
from collections.abc import Sequence

from optimizer.targets.profiles import DlaSpec, RuntimeSupport, TargetProfile

WIDTH = 100
LABEL_WIDTH = 16
_INDENT = " " * (LABEL_WIDTH + 2)


def render_target_list(profiles: Sequence[TargetProfile]) -> str:
    """One aligned line per target: name, device type, runtime, precisions, aliases."""
    rows = [("TARGET", "TYPE", "RUNTIME", "PRECISIONS", "ALIASES")]
    for profile in profiles:
        name = f"{profile.name} *" if profile.present else profile.name
        rows.append((name, profile.device_type, profile.runtime, ", ".join(profile.precisions),
                     ", ".join(profile.aliases) or "-"))
    widths = [max(len(row[column]) for row in rows) for column in range(len(rows[0]) - 1)]
    lines = ["  ".join(cell.ljust(width) for cell, width in zip(row, widths)) + "  " + row[-1] for row in rows]
    if any(profile.present for profile in profiles):
        lines.append("* this machine; the others are described from datasheets, not measured")
    return "\n".join(line.rstrip() for line in lines)


def render_target(profile: TargetProfile) -> str:
    """Every field of `profile`, labelled, with units; long notes wrapped."""
    lines = [f"{profile.name}: {profile.description}"]

    def field(label: str, value: str) -> None:
        hanging = "  " if value.startswith("- ") else ""  # a bullet's continuation lines align with its text
        wrapped = textwrap.wrap(value, WIDTH - len(_INDENT), subsequent_indent=hanging, break_on_hyphens=False,
                                break_long_words=False) or ["-"]
        lines.append(f"  {label:<{LABEL_WIDTH}}{wrapped[0]}")
        lines.extend(_INDENT + rest for rest in wrapped[1:])

    field("family", profile.family)
    field("device type", profile.device_type)
    field("present", "yes (this machine)" if profile.present else
          "no: described from datasheets (see notes), so latencies for it are estimates")
    field("runtime", f"{profile.runtime} (pipeline: {profile.pipeline})")
    for index, runtime in enumerate(profile.runtimes):
        field("runtimes" if index == 0 else "", _runtime(runtime))
    if not profile.runtimes:
        field("runtimes", "-")
    field("precisions", f"{', '.join(profile.precisions)} (default: {profile.default_precision})")
    field("aliases", ", ".join(profile.aliases) or "-")
    field("architecture", profile.architecture or "-")
    field("isa", ", ".join(profile.isa) or "-")
    field("compute cap.", f"sm {profile.sm}" if profile.sm else "-")
    field("memory", f"{profile.memory_gb:g} GB" if profile.memory_gb is not None else "-")
    field("bandwidth", f"{profile.memory_bandwidth_gbs:g} GB/s" if profile.memory_bandwidth_gbs is not None
          else "-")
    field("peak (dense)", _peaks(profile.peak_tops))
    field("2:4 sparsity", "yes (sparse peaks are 2x the dense ones above)" if profile.sparsity_2_4 else "no")
    field("static shapes", "yes: dynamic input dims must be fixed with --shape" if profile.static_shapes
          else "no")
    field("op set", profile.op_set or "-")
    for label, text in _dla(profile.dla):
        field(label, text)
    for index, (key, value) in enumerate(profile.details.items()):
        field("details" if index == 0 else "", f"{key}: {value}")
    for index, note in enumerate(profile.notes):
        field("notes" if index == 0 else "", f"- {note}")
    return "\n".join(lines)


def _runtime(runtime: RuntimeSupport) -> str:
    text = f"{runtime.backend}: {runtime.versions}"
    return f"{text}. {runtime.notes}" if runtime.notes else text


def _peaks(peak_tops: dict[str, float]) -> str:
    if not peak_tops:
        return "- (not recorded for this profile; no roofline estimate)"
    # Integer precisions count operations (TOPS), float precisions floating-point operations (TFLOPS).
    return ", ".join(f"{precision} {value:g} {'TOPS' if precision.startswith('int') else 'TFLOPS'}"
                     for precision, value in peak_tops.items())


def _dla(dla: DlaSpec | None) -> list[tuple[str, str]]:
    if dla is None:
        return [("dla", "none")]
    return [
        ("dla", f"{dla.cores} core{'s' if dla.cores != 1 else ''}, {', '.join(dla.precisions)} only"),
        ("dla ops", ", ".join(dla.ops)),
        ("dla notes", dla.notes or "-"),
    ]
