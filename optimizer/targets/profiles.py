"""Device profiles as data: what a target is, what it runs, and which pipeline and runtime hwopt uses for it.

The schema lives here; the data lives one file per family (optimizer/targets/families/). The host CPU profile is
detected at run time (host_cpu.py). Figures (peak throughput, bandwidth, memory) are vendor datasheet values,
used for roofline estimates of devices that are not present and labelled as such wherever they are shown.
"""

from __future__ import annotations

from dataclasses import dataclass, field

PRECISION_NAMES = ("fp32", "fp16", "bf16", "int8", "int4", "fp8")
DEVICE_TYPES = ("cpu", "gpu", "npu")


@dataclass(frozen=True)
class RuntimeSupport:
    """A runtime the device runs, with the versions a deployment will meet there."""

    backend: str
    """Backend name (a subpackage of optimizer.backends): onnxruntime, openvino, tensorrt, tflite."""
    versions: str
    """E.g. "10.3 (JetPack 6.1)" or "10.x, 11.x"."""
    notes: str = ""


@dataclass(frozen=True)
class DlaSpec:
    """NVIDIA's Deep Learning Accelerator on Jetson AGX/NX: few ops, FP16/INT8 only, the rest falls back to GPU."""

    cores: int
    precisions: tuple[str, ...]
    ops: tuple[str, ...]
    """ONNX op types DLA can run (subject to its attribute limits); any other node falls back to the GPU."""
    notes: str = ""


@dataclass(frozen=True)
class TargetProfile:
    name: str
    description: str
    family: str
    """cpu (the host), x86, intel, nvidia, jetson or edge: the file under families/ that defines it."""
    device_type: str
    """cpu, gpu or npu."""
    runtime: str
    """The backend hwopt compiles for by default (the first of `runtimes`)."""
    pipeline: str
    """Key of optimizer.pipeline.PIPELINES."""
    precisions: tuple[str, ...]
    """Precisions the device computes natively (of PRECISION_NAMES)."""
    default_precision: str = "fp32"
    aliases: tuple[str, ...] = ()
    runtimes: tuple[RuntimeSupport, ...] = ()
    architecture: str = ""
    """CPU ISA level or GPU architecture, e.g. "x86-64-v4", "armv8.2-a", "Ampere"."""
    isa: tuple[str, ...] = ()
    """CPU instruction-set extensions that matter for kernel choice (avx2, avx512f, avx512_vnni, amx...)."""
    sm: str | None = None
    """CUDA compute capability, e.g. "8.7" (Orin), "9.0" (H100)."""
    memory_gb: float | None = None
    peak_tops: dict[str, float] = field(default_factory=dict)
    """Dense peak per precision in TFLOPS (float) or TOPS (int), without sparsity."""
    memory_bandwidth_gbs: float | None = None
    sparsity_2_4: bool = False
    dla: DlaSpec | None = None
    static_shapes: bool = False
    """The device compiles for fixed shapes only (NPUs): dynamic dims must be fixed with --shape."""
    op_set: str | None = None
    """A constrained op set the artifact must fit (e.g. "tflite"), checked by pre-flight."""
    present: bool = False
    """True only for the machine hwopt runs on (the host CPU profile)."""
    notes: tuple[str, ...] = ()
    details: dict[str, str] = field(default_factory=dict)


def all_targets() -> list[TargetProfile]:
    from optimizer.targets.families import FAMILIES
    from optimizer.targets.host_cpu import host_cpu_profile

    return [host_cpu_profile(), *(profile for family in FAMILIES for profile in family)]
