"""`optimize bench MODEL_OR_ARTIFACT`: measure latency, throughput, memory and hot operators, and keep the run.

    optimize bench out/                               an artifact from `optimize`, on this machine
    optimize bench model.onnx --target cpu            a plain model, compiled unchanged (FP32) for the target
    optimize bench out/ --batch 1,8,32 --time 20s     throughput per batch size, up to 20 s per batch
    optimize bench out/ --remote http://jetson:8765   on a device running `optimize agent`
    optimize bench model.onnx --target jetson-orin-nano --estimate    a roofline estimate, labelled so

Every run is stored in the history (`--db`, default under the user's data directory) unless `--no-history`.
"""

from __future__ import annotations

import argparse
import json
import os
import re
from pathlib import Path

from optimizer.cli import PROG, Parser, common_flags, parse_shape, positive_int
from optimizer.errors import UsageError
from optimizer.progress import progress_for, report_progress, showing

_DURATION = re.compile(r"^(\d+(?:\.\d+)?)\s*(ms|s|m|min)?$")
_UNIT_SECONDS = {"ms": 1e-3, "s": 1.0, None: 1.0, "m": 60.0, "min": 60.0}


def parse_duration(text: str) -> float:
    """`10s` -> 10.0, `500ms` -> 0.5, `2m` -> 120.0, `7` -> 7.0 (seconds)."""
    match = _DURATION.match(text.strip().lower())
    if not match or float(match.group(1)) <= 0:
        raise argparse.ArgumentTypeError(f"invalid duration '{text}': expected e.g. 10s, 500ms or 2m")
    return float(match.group(1)) * _UNIT_SECONDS[match.group(2)]


def parse_batches(text: str) -> list[int]:
    """`1,8,32` -> [1, 8, 32]."""
    try:
        batches = [int(part) for part in text.split(",") if part.strip()]
    except ValueError:
        batches = []
    if not batches or any(b < 1 for b in batches):
        raise argparse.ArgumentTypeError(f"invalid --batch '{text}': expected positive sizes, e.g. 1,8,32")
    return batches


def build_parser() -> argparse.ArgumentParser:
    parser = Parser(prog=f"{PROG} bench", description="Benchmark an artifact (a folder written by `optimize`) "
                    "or a plain ONNX model: latency percentiles until the median is known to 1%, throughput "
                    "per batch size, peak memory, load time and time per operator type. The run is stored in "
                    "the benchmark history.")
    parser.add_argument("source", help="an artifact folder, or an .onnx model (compiled unchanged, FP32)")
    parser.add_argument("--target", "-t", help="for a plain model: the device profile whose runtime runs it "
                        "(default cpu); with --estimate, the device to estimate")
    parser.add_argument("--runtime", help="for a plain model: force onnxruntime or openvino")
    parser.add_argument("--batch", type=parse_batches, default=[1], metavar="1,8,32",
                        help="batch sizes to time (the inputs' leading dim; default 1)")
    parser.add_argument("--threads", type=positive_int, help="inference threads (default: the runtime's)")
    budget = parser.add_mutually_exclusive_group()
    budget.add_argument("--runs", type=positive_int, help="exactly N timed runs per batch size")
    budget.add_argument("--time", type=parse_duration, default=10.0, metavar="DURATION",
                        help="time budget per batch size, e.g. 10s (default); timing stops earlier once the "
                        "median's 95%% interval is within 1%%")
    parser.add_argument("--inputs", type=Path, metavar="FILE.npz", help="real inputs (default: generated)")
    parser.add_argument("--shape", action="append", type=parse_shape, default=[], metavar="NAME=DIMS",
                        help="the shape of a generated input with dynamic dims, at batch 1, e.g. "
                        "images=1x3x320x320 (repeatable)")
    parser.add_argument("--name", help="the model's name in the history (default: the source model's)")
    parser.add_argument("--label", help="the candidate's name in comparisons (default: '<precision> <runtime>')")
    parser.add_argument("--no-operators", action="store_true", help="skip the per-operator profile")
    parser.add_argument("--output", "-o", type=Path, metavar="REPORT.json", help="also write the run report here")
    parser.add_argument("--db", type=Path, help="the history file (default: $HWOPT_HISTORY or "
                        "~/.local/share/hwopt/history.sqlite)")
    parser.add_argument("--no-history", action="store_true", help="do not store the run")
    remote = parser.add_argument_group("remote device")
    remote.add_argument("--remote", metavar="URL", help="run on `optimize agent` at URL, e.g. http://jetson:8765")
    remote.add_argument("--token", help="the agent's token (default: $HWOPT_AGENT_TOKEN)")
    estimate = parser.add_argument_group("estimate")
    estimate.add_argument("--estimate", action="store_true",
                          help="a roofline estimate for --target from its profile, for a device not here")
    estimate.add_argument("--precision", help="with --estimate: the precision to estimate (default: the "
                          "device's fastest)")
    common_flags(parser)
    return parser


def run(args: argparse.Namespace) -> int:
    _check_combinations(args)
    if args.estimate:
        report = _estimate(args)
    elif args.remote:
        report = _remote(args)
    else:
        report = _local(args)
    if not args.no_history:
        from optimizer.benchmarks.history import History

        with History(args.db) as history:
            history.add(report)
    if args.output is not None:
        report.write(args.output)
    if args.json:
        print(json.dumps(report.to_dict(), indent=2))
    elif not args.quiet:
        from optimizer.benchmarks.render import render_run

        print(render_run(report))
        if not args.no_history:
            print(f"\nstored as run {report.id} in {args.db or _default_db()}")
    return 0


def _check_combinations(args: argparse.Namespace) -> None:
    if args.estimate and args.remote:
        raise UsageError("--estimate and --remote exclude each other: an estimate runs nowhere")
    if args.estimate and not args.target:
        raise UsageError("--estimate needs --target, the device to estimate (see `optimize targets`)")
    if args.precision and not args.estimate:
        raise UsageError("--precision is for --estimate; a benchmark runs the artifact's own precision")
    if args.token and not args.remote:
        raise UsageError("--token is for --remote")


def _local(args: argparse.Namespace):
    from optimizer.benchmarks.runner import bench

    with showing(progress_for(args)):
        return bench(args.source, target=args.target, runtime=args.runtime, batches=args.batch,
                     threads=args.threads, runs=args.runs, time_budget_s=args.time, inputs=args.inputs,
                     name=args.name, label=args.label, profile_operators=not args.no_operators,
                     progress=report_progress, shapes=_shapes(args))


def _shapes(args: argparse.Namespace) -> dict[str, tuple[int, ...]]:
    shapes = dict(args.shape)
    if len(shapes) != len(args.shape):
        raise UsageError("--shape given twice for the same input")
    return shapes


def _remote(args: argparse.Namespace):
    from optimizer.benchmarks.agent.client import remote_bench

    token = args.token or os.environ.get("HWOPT_AGENT_TOKEN")
    if not token:
        raise UsageError("--remote needs the agent's token: --token or $HWOPT_AGENT_TOKEN")
    if not Path(args.source).is_dir():
        raise UsageError(f"{args.source}: --remote sends an artifact folder; make one with "
                         f"`optimize MODEL --target ...` first")
    if args.target or args.runtime:
        raise UsageError("--target and --runtime apply to a plain model; an artifact keeps its own")
    return remote_bench(args.source, args.remote, token, batches=args.batch, threads=args.threads,
                        runs=args.runs, time_budget_s=args.time, name=args.name, label=args.label,
                        profile_operators=not args.no_operators)


def _estimate(args: argparse.Namespace):
    from optimizer.benchmarks.estimate import estimate_run
    from optimizer.benchmarks.runner import model_name

    source = Path(args.source)
    model = source / "model.onnx" if source.is_dir() else source
    if not model.is_file():
        raise UsageError(f"{args.source}: no such model file or artifact folder with a model.onnx")
    return estimate_run(model, args.target, args.precision, batches=args.batch,
                        name=args.name or model_name(source), label=args.label)


def _default_db() -> Path:
    from optimizer.benchmarks.history import default_history_path

    return default_history_path()
