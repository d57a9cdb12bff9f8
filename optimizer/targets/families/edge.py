"""Arm edge devices: Raspberry Pi 4 and 5, generic arm64, Android phones. LiteRT (TFLite) is their runtime.

The artifact must fit the TFLite op set (op_set="tflite"), and INT8 is the default because on these CPUs it is
what pays: XNNPACK's INT8 kernels use the SDOT dot-product instructions where the core has them (Cortex-A76,
Armv8.2-a phones), and INT8 weights are a quarter of the memory traffic on boards with 13-17 GB/s.

hwopt writes their .tflite itself (optimizer.backends.litert, no TensorFlow). ONNX Runtime, which ships aarch64
Linux and Android builds, is listed second: the planner falls back to it where ai-edge-litert is not installed.

Arm does not publish peak figures for these boards; the Raspberry Pi figures below are DERIVED (cores x clock x
NEON lanes per cycle, from Arm's software optimization guides) and the bandwidth is the theoretical LPDDR
figure. Measured GEMM throughput is typically well under half of either.
"""

from __future__ import annotations

from optimizer.targets.profiles import RuntimeSupport, TargetProfile

LITERT = RuntimeSupport(
    "tflite",
    "LiteRT 1.x (ai-edge-litert), TensorFlow Lite 2.x",
    "XNNPACK is the default CPU delegate (fp32, fp16 where the core has it, int8).",
)
ONNXRUNTIME_ARM = RuntimeSupport(
    "onnxruntime", "1.20 or later", "CPU provider; aarch64 Linux wheels on PyPI, Android AAR on Maven"
)

RPI4 = TargetProfile(
    name="rpi4",
    description="Raspberry Pi 4 (BCM2711, 4x Cortex-A72 @ 1.5 GHz), LiteRT",
    family="edge",
    device_type="cpu",
    runtime="tflite",
    pipeline="portable",
    # No fp16 arithmetic (Armv8.0: no asimdhp) and no SDOT: INT8 still halves the traffic, which is what
    # bounds most layers at 12.8 GB/s.
    precisions=("fp32", "int8"),
    default_precision="int8",
    aliases=("raspberry-pi-4", "pi4"),
    runtimes=(LITERT, ONNXRUNTIME_ARM),
    architecture="armv8-a",
    isa=("asimd",),
    memory_gb=4.0,
    # A72: one 128-bit FMA per cycle (its two 64-bit FP pipes pair up) = 8 fp32 FLOPs; int8 without SDOT via
    # widening multiply-accumulates, at most ~2x that.
    peak_tops={"fp32": 0.048, "int8": 0.096},
    memory_bandwidth_gbs=12.8,
    op_set="tflite",
    notes=(
        "Peak figures are derived upper bounds, not vendor figures (see optimizer/targets/families/edge.py).",
        "Boards with 1, 2, 4 or 8 GB exist; 4 GB recorded. Boards since 2022 may clock 1.8 GHz.",
    ),
    details={"memory": "LPDDR4-3200, 32-bit", "cores": "4"},
)

RPI5 = TargetProfile(
    name="rpi5",
    description="Raspberry Pi 5 (BCM2712, 4x Cortex-A76 @ 2.4 GHz), LiteRT",
    family="edge",
    device_type="cpu",
    runtime="tflite",
    pipeline="portable",
    precisions=("fp32", "fp16", "int8"),
    default_precision="int8",
    aliases=("raspberry-pi-5", "pi5"),
    runtimes=(LITERT, ONNXRUNTIME_ARM),
    architecture="armv8.2-a",
    isa=("asimd", "asimdhp", "asimddp"),
    memory_gb=8.0,
    # A76: two 128-bit NEON pipes, each with FMA: 16 fp32 FLOPs, 32 fp16 FLOPs or (SDOT) 64 int8 ops per cycle.
    peak_tops={"fp32": 0.154, "fp16": 0.307, "int8": 0.614},
    memory_bandwidth_gbs=17.1,
    op_set="tflite",
    notes=(
        "Peak figures are derived upper bounds, not vendor figures (see optimizer/targets/families/edge.py).",
        "Boards with 2, 4, 8 or 16 GB exist; 8 GB recorded.",
    ),
    details={"memory": "LPDDR4X-4267, 32-bit", "cores": "4"},
)

ARM64 = TargetProfile(
    name="arm64",
    description="generic 64-bit Arm CPU (Armv8-a, NEON), LiteRT",
    family="edge",
    device_type="cpu",
    runtime="tflite",
    pipeline="portable",
    # The baseline guarantees neither fp16 arithmetic nor SDOT; INT8 is still the smaller, usually faster
    # artifact, and kernels use SDOT at run time where the core has it.
    precisions=("fp32", "int8"),
    default_precision="int8",
    aliases=("aarch64", "arm64-generic", "armv8"),
    runtimes=(LITERT, ONNXRUNTIME_ARM),
    architecture="armv8-a",
    isa=("asimd",),
    op_set="tflite",
    notes=(
        ("Baseline profile for any Armv8-a core (boards, Graviton, Ampere Altra): no peak figures, since they "
         "vary too much; use rpi4/rpi5/android-arm64 or measure on the device."),
    ),
)

ANDROID_ARM64 = TargetProfile(
    name="android-arm64",
    description="Android phone, arm64-v8a (Snapdragon-class, Armv8.2-a with dot product), LiteRT",
    family="edge",
    device_type="cpu",
    runtime="tflite",
    pipeline="portable",
    precisions=("fp32", "fp16", "int8"),
    default_precision="int8",
    aliases=("android", "android-arm64-v8a"),
    runtimes=(
        RuntimeSupport(
            "tflite",
            "LiteRT 1.x (com.google.ai.edge.litert), TensorFlow Lite 2.x",
            "XNNPACK on the CPU by default. The GPU delegate (OpenCL/OpenGL ES) runs fp16 and needs its own "
            "op coverage; NNAPI (deprecated since Android 15) or vendor delegates (Qualcomm QNN) reach the "
            "NPU/DSP, mostly for int8.",
        ),
        ONNXRUNTIME_ARM,
    ),
    architecture="armv8.2-a",
    isa=("asimd", "asimdhp", "asimddp"),
    op_set="tflite",
    notes=(
        ("Phones since ~2018 (Cortex-A75/A76 and later big cores) have fp16 arithmetic and SDOT; older "
         "Armv8.0 phones run this profile's artifacts, but int8 and fp16 gain less there."),
        "No peak figures: SoCs differ too much, and thermal throttling dominates sustained throughput.",
    ),
)

PROFILES = (RPI4, RPI5, ARM64, ANDROID_ARM64)
