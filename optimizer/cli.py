"""The `optimize` command.

    optimize MODEL.onnx [--target cpu] [-o OUT] [-O 0-3] [--shape NAME=1x3x320x320] [--inputs X.npz] ...
    optimize targets [NAME]
    optimize check MODEL.onnx --target jetson [--precision int8] [--shape ...]
    optimize bench MODEL_OR_ARTIFACT [--batch 1,8] [--time 10s] [--remote URL]
    optimize compare [RUN_ID ...]
    optimize dashboard [--db FILE] -o dashboard.html
    optimize agent --host 0.0.0.0 --port 8765 --token SECRET

Errors print as one line on stderr (`optimize: error: ...`) with exit code 2 for usage mistakes and 1 for
failures; `--debug` adds the traceback.
"""

from __future__ import annotations

import argparse
import importlib
import json
import logging
import sys
import warnings
from collections.abc import Sequence
from dataclasses import asdict
from pathlib import Path

from optimizer.errors import HwoptError, UsageError
from optimizer.progress import progress_for, showing
from optimizer.pruning.flags import add_pruning_flags, pruning_options
from optimizer.quantization.metrics import BUILTIN_METRICS
from optimizer.quantization.options import (
    DEFAULT_CALIBRATION_SAMPLES,
    DEFAULT_MIN_COSINE,
    DEFAULT_SMOOTH_QUANT_ALPHA,
    PRECISIONS,
    RANGE_METHODS,
    QuantizationOptions,
)

PROG = "optimize"


class Parser(argparse.ArgumentParser):
    """argparse that raises instead of printing usage and exiting, so every error is one line."""

    def error(self, message: str):
        raise UsageError(message)


def parse_shape(text: str) -> tuple[str, tuple[int, ...]]:
    """`images=1x3x320x320` -> ("images", (1, 3, 320, 320))."""
    name, sep, dims = text.rpartition("=")
    try:
        if not sep or not name:
            raise ValueError
        shape = tuple(int(d) for d in dims.lower().split("x"))
        if any(d <= 0 for d in shape):
            raise ValueError
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"invalid --shape '{text}': expected NAME=DIMS with positive sizes, e.g. images=1x3x320x320"
        ) from None
    return name, shape


def parse_constant(text: str) -> tuple[str, float | int]:
    """`sr=16000` -> ("sr", 16000); `scale=0.5` -> ("scale", 0.5)."""
    name, sep, value = text.partition("=")
    try:
        if not sep or not name:
            raise ValueError
        number = float(value)
        return name, int(number) if number.is_integer() and "." not in value else number
    except ValueError:
        raise argparse.ArgumentTypeError(f"invalid --freeze-input '{text}': expected NAME=NUMBER, e.g. sr=16000") \
            from None


def positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive integer, not '{text}'") from None
    if value <= 0:
        raise argparse.ArgumentTypeError(f"expected a positive integer, not '{text}'")
    return value


def _cosine(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number in (0, 1], not '{text}'") from None
    if not 0.0 < value <= 1.0:
        raise argparse.ArgumentTypeError(f"expected a number in (0, 1], not '{text}'")
    return value


def _opt_level(text: str) -> int:
    level = text.upper().removeprefix("O")
    if level not in ("0", "1", "2", "3"):
        raise argparse.ArgumentTypeError(f"expected O0, O1, O2 or O3, not '{text}'")
    return int(level)


def _version() -> str:
    from optimizer import __version__

    return __version__


def common_flags(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--debug", action="store_true", help="show tracebacks and library warnings")
    parser.add_argument("--json", action="store_true", help="print machine-readable JSON instead of a table")
    parser.add_argument("--quiet", "-q", action="store_true", help="print nothing on success")


def build_optimize_parser() -> argparse.ArgumentParser:
    parser = Parser(prog=PROG, description="Optimize an ONNX model for a target device, verify it and "
                     "report how it changed. Other commands: `optimize targets [NAME]`, "
                     "`optimize check MODEL --target X`, `optimize bench`, `optimize compare`, "
                     "`optimize dashboard`, `optimize agent`.")
    parser.add_argument("--version", action="version", version=f"hwopt {_version()}")
    parser.add_argument("model", help="the ONNX model to optimize (never modified)")
    _target_flags(parser)
    parser.add_argument("--output", "-o", type=Path, help="output directory (default: ./<model name>-hwopt)")
    parser.add_argument("--inputs", type=Path, metavar="FILE.npz", help="real inputs for verification and timing")
    parser.add_argument("--no-verify", action="store_true", help="skip the numerical check (huge models)")
    parser.add_argument("--min-cosine", type=_cosine, metavar="C",
                        help="lowest output cosine similarity that passes (default by precision: "
                        + ", ".join(f"{k} {v}" for k, v in DEFAULT_MIN_COSINE.items()) + ")")
    parser.add_argument("--fidelity-output", action="append", default=[], metavar="NAME",
                        help="an output whose fidelity decides (repeatable; default: every output, the others "
                        "are still reported)")
    parser.add_argument("--no-benchmark", action="store_true", help="skip timing the two models")
    parser.add_argument("--threads", type=positive_int, help="ONNX Runtime intra-op threads")
    parser.add_argument("--force", "-f", action="store_true", help="overwrite an existing output")
    _quantization_flags(parser)
    add_pruning_flags(parser)
    _litert_flags(parser)
    common_flags(parser)
    return parser


def _litert_flags(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("LiteRT (tflite: rpi4, rpi5, arm64, android-arm64)")
    group.add_argument("--io-layout", choices=("onnx", "nhwc"),
                       help="layout of the .tflite's image inputs and outputs: onnx (default, the model's own) or "
                       "nhwc (channels-last, as cameras and TFLite pipelines give them)")
    group.add_argument("--io-dtype", choices=("float32", "int8", "uint8"),
                       help="dtype of the .tflite's inputs and outputs: float32 (default) or, with --precision "
                       "int8, int8/uint8 (scale and zero point in manifest.json)")


def _target_flags(parser: argparse.ArgumentParser) -> None:
    from optimizer.backends.registry import BUILT

    parser.add_argument("--target", "-t", default="cpu", help="device profile (default: cpu; see `optimize targets`)")
    parser.add_argument("--runtime", choices=BUILT,
                        help="force one runtime instead of the target's plan (the cpu target measures "
                        "onnxruntime and openvino and keeps the faster)")
    parser.add_argument("--opt-level", "-O", type=_opt_level, default=2, metavar="O0-O3",
                        help="O0 verify only, O1 cleanup, O2 (default) + simplify and fuse, O3 + opset upgrade")
    parser.add_argument("--shape", action="append", type=parse_shape, default=[], metavar="NAME=DIMS",
                        help="fix an input's dynamic dims, e.g. images=1x3x320x320 (repeatable)")
    parser.add_argument("--freeze-input", action="append", type=parse_constant, default=[], metavar="NAME=VALUE",
                        help="make a configuration input a constant, e.g. sr=16000; the branches it selects fold "
                        "away and it leaves the artifact's inputs (repeatable)")


def _quantization_flags(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("quantization")
    group.add_argument("--precision", "-p", choices=PRECISIONS,
                       help="fp32, int8 (static, calibrated), int8-dynamic, fp16, bf16, int4 (weights); default: "
                       "the target's plan (cpu: int8 with --calibration, else fp32; NVIDIA: fp16)")
    group.add_argument("--calibration", metavar="PATH",
                       help="calibration data: an .npz of inputs (stacked along a first axis) or a folder of images")
    group.add_argument("--preprocess", metavar="SPEC",
                       help="for a folder of images, e.g. size=320x320,resize=letterbox,order=rgb,layout=nchw,"
                       "mean=0/0/0,std=1/1/1")
    group.add_argument("--calibration-method", choices=RANGE_METHODS, default="percentile",
                       help="how activation ranges are chosen (default percentile, 99.99)")
    group.add_argument("--calibration-samples", type=positive_int, default=DEFAULT_CALIBRATION_SAMPLES,
                       metavar="N", help=f"use at most N samples (default {DEFAULT_CALIBRATION_SAMPLES})")
    group.add_argument("--percentile", type=float, default=99.99, help="for --calibration-method percentile")
    group.add_argument("--exclude", action="append", default=[], metavar="PATTERN",
                       help="keep nodes in float by name or op type, globs allowed (repeatable)")
    group.add_argument("--bias-correction", action="store_true",
                       help="int8: shift each int8 layer's bias by the mean error its int8 weights add, measured "
                       "on the calibration data")
    group.add_argument("--smooth-quant", action="store_true",
                       help="int8/int8-dynamic: SmoothQuant, moving activation outliers into the weights of the "
                       "MatMuls after each LayerNormalization")
    group.add_argument("--smooth-quant-alpha", type=float, metavar="A",
                       help="how much of the outliers move into the weights, 0..1 (default 0.5)")
    group.add_argument("--int4-block-size", type=positive_int, default=32, metavar="N",
                       help="block size of int4 weights (default 32)")
    group.add_argument("--max-accuracy-drop", type=float, metavar="D",
                       help="keep the most sensitive layers float until the drop is at most D (metric units, "
                       "or output cosine without --metric)")
    group.add_argument("--metric", metavar="MODULE:FUNCTION",
                       help="accuracy metric f(outputs, labels) -> float, or a built-in: "
                       + ", ".join(BUILTIN_METRICS))
    group.add_argument("--eval-data", type=Path, metavar="FILE.npz",
                       help="labeled evaluation data for --metric: stacked inputs plus a 'labels' array")


def build_check_parser() -> argparse.ArgumentParser:
    parser = Parser(prog=f"{PROG} check", description="Pre-flight: list every node the target cannot run as "
                     "planned (unsupported op, dynamic shape on an NPU, precision the device lacks) and what will "
                     "happen to it. Writes nothing; exits 1 when no runtime of the plan can compile the model.")
    parser.add_argument("model", help="the ONNX model to check")
    _target_flags(parser)
    _quantization_flags(parser)
    parser.add_argument("--threads", type=positive_int, help="ONNX Runtime intra-op threads (calibration)")
    common_flags(parser)
    return parser


def build_targets_parser() -> argparse.ArgumentParser:
    parser = Parser(prog=f"{PROG} targets", description="List the device profiles, or show one.")
    parser.add_argument("name", nargs="?", help="a target name or alias")
    common_flags(parser)
    return parser


def run_optimize(args: argparse.Namespace) -> int:
    from optimizer.api import optimize
    from optimizer.report import render_table

    shapes = dict(args.shape)
    if len(shapes) != len(args.shape):
        raise UsageError("--shape given twice for the same input")
    model = Path(args.model)
    output = args.output if args.output is not None else Path(f"{model.stem}-hwopt")
    with showing(progress_for(args)):
        result = optimize(
            model,
            target=args.target,
            shapes=shapes,
            inputs=args.inputs,
            output_dir=output,
            opt_level=args.opt_level,
            verify_outputs=not args.no_verify,
            min_cosine=args.min_cosine,
            benchmark=not args.no_benchmark,
            threads=args.threads,
            force=args.force,
            quantization=_quantization_options(args),
            runtime=args.runtime,
            freeze_inputs=_frozen(args),
            fidelity_outputs=args.fidelity_output or None,
            io_layout=args.io_layout,
            io_dtype=args.io_dtype,
            pruning=pruning_options(args),
        )
    report = result.report
    if not args.json:
        for warning in [*(report.quantization.warnings if report.quantization else []),
                        *(report.pruning.warnings if report.pruning else [])]:
            print(f"{PROG}: warning: {warning}", file=sys.stderr)
    if args.json:
        print(result.report.to_json())
    elif not args.quiet:
        print(render_table(result.report))
        print(f"\nwrote {', '.join(str(f) for f in result.files)}")
    return 0


def _frozen(args: argparse.Namespace) -> dict[str, float | int] | None:
    frozen = dict(args.freeze_input)
    if len(frozen) != len(args.freeze_input):
        raise UsageError("--freeze-input given twice for the same input")
    return frozen or None


def _smooth_quant_alpha(args: argparse.Namespace) -> float | None:
    if args.smooth_quant_alpha is not None and not args.smooth_quant:
        raise UsageError("--smooth-quant-alpha is only used with --smooth-quant")
    if not args.smooth_quant:
        return None
    return DEFAULT_SMOOTH_QUANT_ALPHA if args.smooth_quant_alpha is None else args.smooth_quant_alpha


def _quantization_options(args: argparse.Namespace):
    from optimizer.quantization.metrics import load_eval_data, resolve_metric

    metric = resolve_metric(args.metric) if args.metric else None
    eval_data, labels = load_eval_data(args.eval_data) if args.eval_data else (None, None)
    if metric is not None and eval_data is None:
        raise UsageError("--metric needs --eval-data FILE.npz with the inputs and a 'labels' array")
    if args.max_accuracy_drop is None and (metric is not None or eval_data is not None):
        raise UsageError("--metric and --eval-data are only used with --max-accuracy-drop")
    return QuantizationOptions(
        precision=args.precision,
        calibration=args.calibration,
        preprocessing=args.preprocess,
        calibration_method=args.calibration_method,
        calibration_samples=args.calibration_samples,
        percentile=args.percentile,
        exclude=tuple(args.exclude),
        int4_block_size=args.int4_block_size,
        bias_correction=args.bias_correction,
        smooth_quant=_smooth_quant_alpha(args),
        max_accuracy_drop=args.max_accuracy_drop,
        metric=metric,
        eval_data=eval_data,
        labels=labels,
    )


def run_targets(args: argparse.Namespace) -> int:
    from optimizer.targets import all_targets, get_target
    from optimizer.targets.render import render_target, render_target_list

    if args.name:
        profile = get_target(args.name)
        print(json.dumps(asdict(profile), indent=2) if args.json else render_target(profile))
        return 0
    profiles = all_targets()
    print(json.dumps([asdict(p) for p in profiles], indent=2) if args.json else render_target_list(profiles))
    return 0


def run_check(args: argparse.Namespace) -> int:
    from optimizer.api import check
    from optimizer.preflight import errors_of, render_issues

    shapes = dict(args.shape)
    result = check(Path(args.model), target=args.target, shapes=shapes, quantization=_quantization_options(args),
                   opt_level=args.opt_level, runtime=args.runtime, threads=args.threads,
                   freeze_inputs=_frozen(args))
    if args.json:
        print(json.dumps({"target": result.plan.target.name, "precision": result.plan.precision,
                          "ok": result.ok, "notes": list(result.plan.notes), "not_checked": result.errors,
                          "issues": {b: [asdict(i) for i in issues] for b, issues in result.issues.items()}},
                         indent=2))
    elif not args.quiet:
        plan = result.plan
        print(f"{args.model} on {plan.target.name}: {plan.precision}, runtime "
              f"{' or '.join(plan.backends)}")
        for note in plan.notes:
            print(f"plan: {note}")
        for backend, issues in result.issues.items():
            errors = len(errors_of(issues))
            verdict = "cannot compile" if errors else "compiles"
            print(f"\n{backend}: {verdict} ({len(issues)} issue(s), {errors} error(s))")
            print("\n".join(render_issues(issues)))
        for backend, reason in result.errors.items():
            print(f"\n{backend}: not checked: {reason}")
    return 0 if result.ok else 1


COMMANDS = {
    "targets": (build_targets_parser, run_targets),
    "check": (build_check_parser, run_check),
    # The benchmarking commands live in their own modules (each with build_parser and run), imported on use so
    # that `optimize MODEL` does not pay for them.
    "bench": "optimizer.commands.bench",
    "compare": "optimizer.commands.compare",
    "dashboard": "optimizer.commands.dashboard",
    "agent": "optimizer.commands.agent",
}


def _command(name: str):
    entry = COMMANDS[name]
    if isinstance(entry, str):
        module = importlib.import_module(entry)
        return module.build_parser, module.run
    return entry


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    debug = "--debug" in argv
    _quiet_libraries(debug)
    try:
        if argv and argv[0] in COMMANDS:
            build, run = _command(argv[0])
            argv = argv[1:]
        else:
            build, run = build_optimize_parser, run_optimize
        args = build().parse_args(argv)
        return run(args)
    except HwoptError as error:
        if debug:
            raise
        print(f"{PROG}: error: {_one_line(str(error))}", file=sys.stderr)
        return error.exit_code
    except KeyboardInterrupt:
        print(f"{PROG}: interrupted", file=sys.stderr)
        return 130
    except Exception as error:  # a bug in hwopt or a library: still one line, exit 1
        if debug:
            raise
        print(f"{PROG}: internal error: {type(error).__name__}: {_one_line(str(error))} "
              "(run with --debug for the traceback)", file=sys.stderr)
        return 1


def _one_line(text: str) -> str:
    return " ".join(text.split())


def _quiet_libraries(debug: bool) -> None:
    """Library warnings (onnxscript's logging, Python warnings) would break the one-line error contract."""
    if debug:
        logging.basicConfig(level=logging.INFO)
        return
    logging.getLogger().setLevel(logging.ERROR)
    logging.getLogger().addHandler(logging.NullHandler())
    logging.lastResort = None
    warnings.simplefilter("ignore")


if __name__ == "__main__":
    sys.exit(main())
