"""Intel devices through OpenVINO: Xeon/Core CPUs, Arc and integrated GPUs, the Core Ultra NPU.

One profile per OpenVINO device plugin (CPU, GPU, NPU), not per SKU: the plugin decides the kernels, and the
SKUs under one plugin differ by an order of magnitude in throughput. For that reason none of these profiles
carries peak figures; the notes give the published ranges.
"""

from __future__ import annotations

from optimizer.targets.profiles import RuntimeSupport, TargetProfile

OPENVINO_VERSIONS = "2024.x, 2025.x, 2026.x"

INTEL_CPU = TargetProfile(
    name="intel-cpu",
    description="Intel Xeon / Core CPU with OpenVINO's CPU plugin",
    family="intel",
    device_type="cpu",
    runtime="openvino",
    pipeline="portable",
    precisions=("fp32", "bf16", "int8"),
    default_precision="fp32",
    aliases=("openvino-cpu", "xeon"),
    runtimes=(
        RuntimeSupport("openvino", OPENVINO_VERSIONS, "CPU plugin (oneDNN kernels)"),
        RuntimeSupport("onnxruntime", "1.20 or later", "CPU provider, or the OpenVINO execution provider"),
    ),
    architecture="x86-64-v3 (Core) to x86-64-v4 with AMX (Xeon 4th gen and later)",
    # What OpenVINO's CPU plugin picks kernels by; each is present on some of the CPUs this profile covers.
    isa=("avx2", "fma", "avx_vnni", "avx512f", "avx512_vnni", "avx512_bf16", "amx_bf16", "amx_int8"),
    notes=(
        ("bf16 is native only with AVX512_BF16 or AMX (Xeon 3rd gen Cooper Lake, 4th gen Sapphire Rapids and "
         "later); on other CPUs OpenVINO computes a bf16 request in fp32."),
        ("int8 uses VNNI (AVX512_VNNI on Xeon, AVX-VNNI on Core 12th gen+) or AMX-INT8 where present, and "
         "AVX2 elsewhere."),
        "No peak figures: per-SKU throughput ranges from ~1 to >100 TFLOPS (AMX); measure on the device.",
    ),
)

INTEL_GPU = TargetProfile(
    name="intel-gpu",
    description="Intel Arc or integrated (Xe) GPU with OpenVINO's GPU plugin",
    family="intel",
    device_type="gpu",
    runtime="openvino",
    pipeline="portable",
    precisions=("fp32", "fp16", "int8"),
    # The GPU plugin's own default inference precision is fp16: fp32 there halves throughput for no gain on
    # most vision and language models.
    default_precision="fp16",
    aliases=("openvino-gpu", "intel-arc", "arc", "intel-igpu"),
    runtimes=(
        RuntimeSupport("openvino", OPENVINO_VERSIONS, "GPU plugin (OpenCL / oneDNN); needs the Intel compute "
                       "runtime (NEO) driver"),
        RuntimeSupport("onnxruntime", "1.20 or later", "OpenVINO execution provider, device GPU"),
    ),
    architecture="Xe (Xe-LP integrated, Xe-HPG Arc, Xe2 Lunar Lake / Battlemage)",
    notes=(
        ("int8 runs on XMX matrix engines (Arc, Xe2) or DP4a (integrated Xe-LP); the GPU plugin infers in "
         "fp16 or fp32 (its inference_precision hint), so bf16 is not listed."),
        ("No peak figures: integrated Xe-LP and discrete Arc differ by more than an order of magnitude, and "
         "integrated GPUs share the system memory bandwidth."),
    ),
)

INTEL_NPU = TargetProfile(
    name="intel-npu",
    description="Intel Core Ultra NPU with OpenVINO's NPU plugin",
    family="intel",
    device_type="npu",
    runtime="openvino",
    pipeline="portable",
    precisions=("fp16", "int8"),
    default_precision="fp16",
    aliases=("openvino-npu", "core-ultra-npu"),
    runtimes=(
        RuntimeSupport("openvino", OPENVINO_VERSIONS, "NPU plugin; needs the Intel NPU driver (Linux or "
                       "Windows)"),
        RuntimeSupport("onnxruntime", "1.20 or later", "OpenVINO execution provider, device NPU"),
    ),
    architecture="NPU 3720 (Meteor Lake / Arrow Lake), NPU 4000 (Lunar Lake)",
    static_shapes=True,
    notes=(
        "Compiles for static shapes only: fix every dynamic input dim with --shape.",
        "fp32 models are run in fp16; int8 needs a quantized (QDQ) model.",
        ("Peak int8 (Intel): ~11 TOPS (Core Ultra 100, Meteor Lake), ~13 TOPS (Arrow Lake), ~48 TOPS "
         "(Core Ultra 200V, Lunar Lake); not recorded as one figure since the generations differ 4x."),
        "Memory is the system's (shared LPDDR5/5X); no dedicated bandwidth figure.",
    ),
)

PROFILES = (INTEL_CPU, INTEL_GPU, INTEL_NPU)
