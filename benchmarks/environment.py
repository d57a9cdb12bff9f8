"""Where a benchmark ran: the CPU and its ISA, cores and threads, OS, runtime versions and how busy it was."""

from __future__ import annotations

import os
import platform
import socket
from importlib import metadata

from optimizer.benchmarks.run_report import Environment
from optimizer.targets.host_cpu import detect_host_cpu

# Distribution name -> the runtime's name in reports. Read from package metadata: importing OpenVINO or
# TensorRT just to ask their versions costs seconds and, for OpenVINO, makes forking unsafe afterwards.
RUNTIME_DISTRIBUTIONS = {
    "onnxruntime": "onnxruntime",
    "onnxruntime-gpu": "onnxruntime",
    "openvino": "openvino",
    "tensorrt": "tensorrt",
    "tensorrt-cu12": "tensorrt",
    "tensorrt-rtx-cu12": "tensorrt-rtx",
    "ai-edge-litert": "litert",
    "onnx": "onnx",
    "numpy": "numpy",
}


def capture_environment(threads: int | None) -> Environment:
    host = detect_host_cpu()
    return Environment(
        hostname=socket.gethostname(),
        os=platform.platform(),
        python=platform.python_version(),
        architecture=host.architecture,
        cpu_model=host.model_name,
        isa=list(host.relevant_isa),
        logical_cores=host.logical_cores,
        threads=threads,
        runtimes=runtime_versions(),
        load_average=[round(x, 2) for x in os.getloadavg()] if hasattr(os, "getloadavg") else [],
    )


def runtime_versions() -> dict[str, str]:
    versions = {}
    for distribution, runtime in RUNTIME_DISTRIBUTIONS.items():
        try:
            versions.setdefault(runtime, metadata.version(distribution))
        except metadata.PackageNotFoundError:
            continue
    return versions
