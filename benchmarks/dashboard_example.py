"""A real benchmark history and its dashboard: the README's screenshot, reproducible on any machine.

    python -m optimizer.benchmarks.dashboard_example OUT_DIR [--estimate jetson-orin-nano] [--time 5]

Optimizes the zoo's yolov8n and MiniLM into a few candidates each (FP32, BF16 and INT8 through `optimize`'s own
API, calibrated on the zoo's real photos and sentences; `--target cpu` times ONNX Runtime and OpenVINO and keeps
the faster), benchmarks every artifact here with `bench`, stores the
runs in OUT_DIR/history.sqlite, and writes OUT_DIR/dashboard.html with roofline estimates for the devices named
with --estimate; with Chromium installed, also OUT_DIR/dashboard.png. Takes a few minutes.
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
from optimizer.benchmarks import zoo
from optimizer.benchmarks.dashboard.estimates import estimate_models
from optimizer.benchmarks.dashboard.page import write_dashboard
from optimizer.benchmarks.history import History
from optimizer.benchmarks.runner import bench

import optimizer
from optimizer.quantization.options import QuantizationOptions
from optimizer.targets import get_target

THREADS = 2
BROWSERS = ("chromium", "chromium-browser", "google-chrome")


def yolov8n_candidates(work: Path):
    path = zoo.yolov8n_path()
    shapes = {"images": (1, 3, 320, 320)}
    calibration = zoo.yolov8n_calibration(320, samples=64)
    np.savez(work / "yolov8n-inputs.npz", **zoo.yolov8n_inputs(320))
    for label, options in (
        ("fp32 onnxruntime", {"runtime": "onnxruntime", "precision": "fp32"}),
        ("bf16 openvino", {"runtime": "openvino", "precision": "bf16"}),
        ("int8 --target cpu", {"calibration": calibration}),
    ):
        result = optimizer.optimize(path, target="cpu", shapes=shapes, output_dir=work / f"yolov8n {label}",
                                    threads=THREADS, **options)
        yield "yolov8n", label, result, {"inputs": work / "yolov8n-inputs.npz"}


def minilm_candidates(work: Path):
    path = zoo.minilm_path()
    calibration = zoo.minilm_calibration(128, zoo.CALIBRATION_SENTENCES)
    for label, options in (
        ("fp32 onnxruntime", {"runtime": "onnxruntime", "precision": "fp32"}),
        ("int8-dynamic onnxruntime", {"runtime": "onnxruntime",
                                       "quantization": QuantizationOptions(precision="int8-dynamic")}),
        ("int8 --target cpu", {"calibration": calibration}),
    ):
        # Left with a dynamic batch, so that throughput is measured per batch size.
        result = optimizer.optimize(path, target="cpu", inputs=calibration[0], output_dir=work / f"minilm {label}",
                                    threads=THREADS, fidelity_outputs=["sentence_embedding"],
                                    **options)
        shapes = {"input_ids": (1, 128), "attention_mask": (1, 128)}
        yield "minilm", label, result, {"shapes": shapes, "batches": (1, 4, 8)}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("output", type=Path)
    parser.add_argument("--estimate", action="append", default=[], metavar="TARGET")
    parser.add_argument("--time", type=float, default=5.0, help="seconds per batch size")
    args = parser.parse_args(argv)
    work = args.output / "artifacts"
    work.mkdir(parents=True, exist_ok=True)
    with History(args.output / "history.sqlite") as history:
        for candidates in (yolov8n_candidates, minilm_candidates):
            for name, label, result, bench_options in candidates(work):
                report = bench(result.artifact.folder, threads=THREADS, name=name, label=label,
                               time_budget_s=args.time, **bench_options)
                history.add(report)
                print(f"{name} {label}: p50 {report.p50_ms:.2f} ms ({report.runtime} {report.precision})")
        runs = history.runs()
    estimates = estimate_models(runs, [get_target(name) for name in args.estimate])
    for note in estimates.notes:
        print(f"note: {note}")
    page = write_dashboard(runs + estimates.runs, args.output / "dashboard.html")
    print(f"wrote {page}")
    browser = next((shutil.which(name) for name in BROWSERS if shutil.which(name)), None)
    if browser:
        subprocess.run([browser, "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars",
                        "--virtual-time-budget=5000", "--window-size=1400,2600",
                        f"--screenshot={args.output / 'dashboard.png'}", page.resolve().as_uri()],
                       check=True, capture_output=True, timeout=120)
        print(f"wrote {args.output / 'dashboard.png'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
