"""`optimize compare`: benchmark runs side by side (devices, candidates, before and after).

    optimize compare                         the latest runs in the history
    optimize compare 3f2a 9c1e               runs by id (a unique prefix is enough); the first is the baseline
    optimize compare --model yolov8n         the latest runs of one model
    optimize compare a.json b.json --json    run reports written with `optimize bench -o`
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from optimizer.cli import PROG, Parser, common_flags, positive_int
from optimizer.errors import UsageError

DEFAULT_LAST = 6


def build_parser() -> argparse.ArgumentParser:
    parser = Parser(prog=f"{PROG} compare", description="Print benchmark runs side by side as a table (or "
                    "JSON): latency per batch, speed-up against the first run, size, memory, fidelity.")
    parser.add_argument("runs", nargs="*", metavar="RUN",
                        help="run ids from the history (or unique prefixes), or run report .json files; "
                        "default: the latest runs")
    parser.add_argument("--db", type=Path, help="the history file (default: $HWOPT_HISTORY or "
                        "~/.local/share/hwopt/history.sqlite)")
    parser.add_argument("--model", help="only runs of this model")
    parser.add_argument("--device", help="only runs on this device (as shown in the table)")
    parser.add_argument("--kind", choices=("measured", "estimated"), help="only measured or only estimated runs")
    parser.add_argument("--last", type=positive_int, default=DEFAULT_LAST, metavar="N",
                        help=f"without RUN arguments: the latest N runs (default {DEFAULT_LAST})")
    common_flags(parser)
    return parser


def run(args: argparse.Namespace) -> int:
    from optimizer.benchmarks.render import render_comparison

    reports = _selected(args)
    if args.json:
        print(json.dumps([report.to_dict() for report in reports], indent=2))
    elif not args.quiet:
        print(render_comparison(reports))
    return 0


def _selected(args: argparse.Namespace):
    from optimizer.benchmarks.history import History, default_history_path
    from optimizer.benchmarks.run_report import RunReport

    if args.runs and (args.model or args.device or args.kind):
        raise UsageError("give runs by id, or filter with --model/--device/--kind, not both")
    files = [Path(run) for run in args.runs if run.endswith(".json")]
    if files and len(files) == len(args.runs):
        return [RunReport.read(path) for path in files]
    db = args.db or default_history_path()
    if not Path(db).is_file():
        raise UsageError(f"{db}: no benchmark history yet; run `optimize bench ARTIFACT` first")
    with History(db) as history:
        if args.runs:
            return [RunReport.read(run) if run.endswith(".json") else history.get(run) for run in args.runs]
        reports = history.runs(model=args.model, device=args.device, kind=args.kind, limit=args.last)
    if not reports:
        raise UsageError(f"{db}: no runs match" if args.model or args.device or args.kind
                         else f"{db}: the history is empty; run `optimize bench ARTIFACT` first")
    return reports
