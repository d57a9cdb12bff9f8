"""What the host CPU can do, read from /proc/cpuinfo (Linux) or platform (elsewhere)."""

from __future__ import annotations

import functools
import os
import platform
from dataclasses import dataclass
from pathlib import Path

# The flags that change which kernels a runtime picks: SIMD width, int8 dot products, bf16/fp16, AMX tiles.
_RELEVANT_FLAGS = (
    "sse4_2", "avx", "avx2", "fma", "f16c", "avx512f", "avx512bw", "avx512vl", "avx512_vnni", "avx_vnni",
    "avx512_bf16", "avx512_fp16", "amx_tile", "amx_int8", "amx_bf16", "amx_fp16",
    "asimd", "asimddp", "sve", "i8mm", "bf16",
)


@dataclass(frozen=True)
class HostCpu:
    architecture: str
    model_name: str
    logical_cores: int
    flags: frozenset[str]

    @property
    def relevant_isa(self) -> tuple[str, ...]:
        return tuple(flag for flag in _RELEVANT_FLAGS if flag in self.flags)


@functools.cache
def detect_host_cpu() -> HostCpu:
    model_name, flags = platform.processor() or platform.machine(), frozenset()
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.is_file():
        for line in cpuinfo.read_text(errors="replace").splitlines():
            key, _, value = line.partition(":")
            key = key.strip().lower()
            if key in ("model name", "hardware") and value.strip():
                model_name = value.strip()
            elif key in ("flags", "features") and not flags:
                flags = frozenset(value.split())
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    return HostCpu(platform.machine(), model_name, cores, flags)


def host_cpu_profile():
    """The `cpu` target: this machine, with the precisions its ISA computes natively."""
    from optimizer.targets.profiles import RuntimeSupport, TargetProfile

    host = detect_host_cpu()
    precisions = ["fp32", "int8"]
    if "avx512_bf16" in host.flags or "amx_bf16" in host.flags:
        precisions.append("bf16")
    if "avx512_fp16" in host.flags or "amx_fp16" in host.flags:
        precisions.append("fp16")
    return TargetProfile(
        name="cpu",
        description=f"this machine's CPU ({host.model_name}, {host.logical_cores} logical cores)",
        family="cpu",
        device_type="cpu",
        runtime="onnxruntime",
        pipeline="onnxruntime-cpu",
        precisions=tuple(precisions),
        aliases=("host", "host-cpu"),
        runtimes=(RuntimeSupport("onnxruntime", "installed"), RuntimeSupport("openvino", "installed, if present")),
        architecture=host.architecture,
        isa=host.relevant_isa,
        present=True,
        details={"model": host.model_name, "logical_cores": str(host.logical_cores)},
    )
