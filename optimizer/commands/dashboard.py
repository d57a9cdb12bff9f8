"""`optimize dashboard`: the benchmark history as one HTML page that opens with no network.

    optimize dashboard -o dashboard.html
    optimize dashboard --db runs.sqlite --model yolov8n -o yolov8n.html
    optimize dashboard --estimate jetson-orin-nano      add roofline estimates for a device that is not here

Estimates made for the page are shown on it (labelled as estimates) but not added to the history: building a
dashboard only reads. Record one with `optimize bench MODEL --target T --estimate`.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from optimizer.cli import PROG, Parser, common_flags
from optimizer.errors import HwoptError, UsageError

DEFAULT_OUTPUT = Path("dashboard.html")


class DashboardError(HwoptError):
    """Nothing to draw: no history, or no runs in it."""


def build_parser() -> argparse.ArgumentParser:
    parser = Parser(prog=f"{PROG} dashboard", description="Write the benchmark history as one self-contained "
                    "HTML page (no network needed to open it): latency vs accuracy per model, latency per device, "
                    "throughput vs batch, time per operator, latency over time, and a table of every run.")
    parser.add_argument("--db", type=Path, metavar="FILE", help="the history file (default: $HWOPT_HISTORY or "
                        "~/.local/share/hwopt/history.sqlite)")
    parser.add_argument("--output", "-o", type=Path, default=DEFAULT_OUTPUT, metavar="FILE.html",
                        help=f"the page to write (default: {DEFAULT_OUTPUT})")
    parser.add_argument("--model", action="append", default=[], metavar="NAME",
                        help="only this model's runs (repeatable)")
    parser.add_argument("--estimate", action="append", default=[], metavar="TARGET",
                        help="add roofline estimates on this device profile (repeatable; see `optimize targets`) "
                        "for each model, at the precisions and batch sizes measured; shown as estimates, not stored")
    parser.add_argument("--estimate-model", action="append", default=[], metavar="[NAME=]MODEL.onnx",
                        help="the ONNX to estimate a model from, when the history's paths no longer hold it "
                        "(NAME defaults to the file's stem; repeatable)")
    parser.add_argument("--title", default="hwopt benchmarks", help="the page's title")
    common_flags(parser)
    return parser


def run(args: argparse.Namespace) -> int:
    from optimizer.benchmarks.dashboard import write_dashboard
    from optimizer.benchmarks.dashboard.estimates import estimate_models

    profiles = _estimate_profiles(args.estimate)
    model_files = _estimate_model_files(args.estimate_model)
    if model_files and not profiles:
        raise UsageError("--estimate-model needs --estimate TARGET, the device to estimate it on")
    output = _check_output(args.output)
    runs = _history_runs(args.db, args.model)

    estimates = estimate_models(runs, profiles, model_files)
    if not args.quiet and not args.json:
        for note in estimates.notes:
            print(f"{PROG}: note: {note}", file=sys.stderr)
    page_runs = runs + estimates.runs
    write_dashboard(page_runs, output, title=args.title)

    estimated = sum(run.kind == "estimated" for run in page_runs)
    if args.json:
        print(json.dumps({"output": str(output), "runs": len(page_runs), "estimated": estimated,
                          "notes": estimates.notes}, indent=2))
    elif not args.quiet:
        print(f"wrote {output} ({len(page_runs)} runs, {estimated} estimated)")
    return 0


def _history_runs(db: Path | None, models: list[str]):
    from optimizer.benchmarks.history import History, default_history_path

    db = db or default_history_path()
    fill = "record runs with `optimize bench MODEL_OR_ARTIFACT` first"
    # Checked before opening: History() would create an empty file where the user mistyped a path.
    if not db.is_file():
        raise DashboardError(f"{db}: no benchmark history there; {fill}")
    with History(db) as history:
        runs = history.runs()
    if not runs:
        raise DashboardError(f"{db}: the benchmark history is empty; {fill}")
    if models:
        known = sorted({run.model.name for run in runs})
        unknown = [name for name in models if name not in known]
        if unknown:
            raise UsageError(f"--model {', '.join(unknown)}: not in {db}; its models are {', '.join(known)}")
        runs = [run for run in runs if run.model.name in models]
    return runs


def _estimate_profiles(names: list[str]):
    from optimizer.benchmarks.estimate import can_estimate
    from optimizer.targets import get_target
    from optimizer.targets.roofline import PRECISION_BYTES

    profiles = []
    for name in dict.fromkeys(names):
        profile = get_target(name)
        if not any(can_estimate(profile, precision) for precision in PRECISION_BYTES):
            raise UsageError(f"--estimate {name}: the profile has no datasheet peak throughput and memory "
                             "bandwidth to estimate from")
        profiles.append(profile)
    return profiles


def _estimate_model_files(values: list[str]) -> dict[str, Path]:
    files = {}
    for value in values:
        name, sep, path_text = value.partition("=")
        if "/" in name:  # no NAME given, and the path itself holds an "="
            name, sep = "", ""
        path = Path(path_text if sep else value)
        name = name if sep else path.stem
        if not name:
            raise UsageError(f"--estimate-model {value}: expected [NAME=]MODEL.onnx")
        if not path.is_file():
            raise UsageError(f"--estimate-model {value}: {path}: no such file")
        files[name] = path
    return files


def _check_output(output: Path) -> Path:
    if output.is_dir():
        raise UsageError(f"-o {output}: is a directory; give the HTML file to write, e.g. {output / 'dashboard.html'}")
    if not output.parent.is_dir():
        raise UsageError(f"-o {output}: the folder {output.parent} does not exist")
    return output
