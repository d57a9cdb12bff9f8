"""Device profiles as data: what a target is, what it runs, and which pipeline and runtime hwopt uses for it.

The foundation ships the host CPU; the targets issue adds the NVIDIA, Jetson, Intel and edge profiles to the
same table.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from optimizer.targets.host_cpu import detect_host_cpu


@dataclass(frozen=True)
class TargetProfile:
    name: str
    description: str
    runtime: str
    """Backend that runs the artifact (a subpackage of optimizer.backends)."""
    pipeline: str
    """Key of optimizer.pipeline.PIPELINES."""
    precisions: tuple[str, ...]
    aliases: tuple[str, ...] = ()
    isa: tuple[str, ...] = ()
    """CPU instruction-set extensions that matter for kernel choice (avx2, avx512f, avx512_vnni, amx...)."""
    details: dict[str, str] = field(default_factory=dict)


def _host_cpu_profile() -> TargetProfile:
    host = detect_host_cpu()
    precisions = ["fp32", "int8"]
    if "avx512_bf16" in host.flags or "amx_bf16" in host.flags:
        precisions.append("bf16")
    if "avx512_fp16" in host.flags or "amx_fp16" in host.flags:
        precisions.append("fp16")
    return TargetProfile(
        name="cpu",
        description=f"this machine's CPU ({host.model_name}, {host.logical_cores} logical cores) in ONNX Runtime",
        runtime="onnxruntime",
        pipeline="onnxruntime-cpu",
        precisions=tuple(precisions),
        aliases=("host", "host-cpu"),
        isa=host.relevant_isa,
        details={"architecture": host.architecture, "model": host.model_name},
    )


def all_targets() -> list[TargetProfile]:
    return [_host_cpu_profile()]
