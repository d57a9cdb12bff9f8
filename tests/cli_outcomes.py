"""How a run of the CLI on a broken model must end, and the summary of many runs.

The contract: exit code 1 or 2 (2 for bad usage) and exactly one line on stderr, `optimize: error: ...`;
`optimize: internal error: ...` is a bug in hwopt. No crash, no hang.
"""

from __future__ import annotations

import json
import os
import re
import signal
from collections import Counter, defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from cli_harness import Source

TIMEOUT_S = 60
"""A run that takes longer has hung."""
ERROR_PREFIX = "optimize: error: "
INTERNAL_PREFIX = "optimize: internal error:"


@dataclass
class Outcome:
    """How one run ended: `problems` break the contract, `notes` are only worth a look."""

    category: str
    description: str
    argv: list[str]
    exit_code: int | None
    signal: int | None
    timed_out: bool
    seconds: float
    stdout: str
    stderr: str
    oracle: str | None
    problems: list[str]
    notes: list[str]

    @property
    def failed(self) -> bool:
        return bool(self.problems)


def contract_problems(outcome: Outcome, exit_codes: frozenset[int]) -> list[str]:
    """The one-line-error contract: exit code, stderr, no crash, no hang."""
    if outcome.timed_out:
        return [f"hang: killed after {TIMEOUT_S} s"]
    if outcome.signal is not None:
        return [f"crash: killed by {signal.Signals(outcome.signal).name}"]
    problems = []
    if outcome.exit_code not in exit_codes:
        problems.append(f"exit code {outcome.exit_code}, expected {' or '.join(map(str, sorted(exit_codes)))}")
    lines = outcome.stderr.splitlines()
    if outcome.stderr.startswith(INTERNAL_PREFIX):
        problems.append("internal error")
    elif len(lines) != 1 or not lines[0].startswith(ERROR_PREFIX) or not lines[0][len(ERROR_PREFIX):].strip():
        problems.append(f"stderr is not one '{ERROR_PREFIX.strip()}' line ({len(lines)} lines)")
    return problems


def _cause(outcome: Outcome) -> str:
    """What a failure is about, with paths and numbers masked, so that failures group by cause."""
    line = outcome.stderr.strip().splitlines()[-1] if outcome.stderr.strip() else ""
    line = re.sub(r"/tmp/\S+?/(in|out)/", "", line)
    line = re.sub(r"'[^']*'", "'…'", line)
    line = re.sub(r"\d+", "N", line)
    return f"{'; '.join(outcome.problems)} | {line[:160]}"


def summarize(kept: Sequence[Outcome], dropped: Sequence[Outcome], sources: Sequence[Source],
              seconds: float) -> str:
    """One line per source, the exit codes, then the failures grouped by cause."""
    lines = [f"{len(kept)} variants in {seconds:.0f} s ({len(dropped)} more dropped: ONNX Runtime ran them)"]
    for source in sources:
        failed = sum(o.failed for o in kept if o.category == source.name)
        lines.append(f"  {source.name:52} {source.kept:4} kept  {source.dropped:4} dropped  {failed:4} failed")
    exits = Counter(o.exit_code for o in kept)
    lines.append(f"exit codes: {dict(sorted(exits.items(), key=str))}")
    groups: dict[str, list[Outcome]] = defaultdict(list)
    for outcome in kept:
        if outcome.failed:
            groups[_cause(outcome)].append(outcome)
    if groups:
        lines.append(f"{sum(len(g) for g in groups.values())} failures in {len(groups)} groups:")
    for cause, members in sorted(groups.items(), key=lambda item: -len(item[1])):
        lines.append(f"- {len(members)} x {cause}")
        for outcome in members[:3]:
            lines.append(f"    [{outcome.category}] {outcome.description}")
            lines.append(f"      optimize {' '.join(outcome.argv)}")
            lines.append(f"      exit {outcome.exit_code}, stderr: {outcome.stderr.strip()[:300]!r}")
    return "\n".join(lines)


def write_report(kept: Sequence[Outcome], dropped: Sequence[Outcome], suffix: str = "") -> None:
    """Every outcome to the file $HWOPT_ROBUSTNESS_REPORT names (`suffix` added to its stem), if set."""
    destination = os.environ.get("HWOPT_ROBUSTNESS_REPORT")
    if destination:
        destination = Path(destination)
        destination.with_stem(destination.stem + suffix).write_text(json.dumps(
            {"kept": [o.__dict__ for o in kept], "dropped": [o.__dict__ for o in dropped]}, indent=1))
