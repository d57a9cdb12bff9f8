"""NVIDIA Jetson Orin modules (JetPack 6), compiled with TensorRT; the NX and AGX also have DLA cores.

Figures: NVIDIA's headline "TOPS" for Jetson are sparse INT8 and add the GPU and the DLAs together (AGX Orin 64GB:
275 = GPU 170 + DLA 105). `peak_tops` here is the GPU alone, DENSE (half the sparse figure), because the roofline
models the GPU; the DLA's own figures are in its notes. Clocks are the highest power mode JetPack 6.2 offers
(MAXN SUPER on Orin Nano and NX, which raised their GPU clock and, on the Nano, memory bandwidth; on JetPack
6.1 and earlier those modules are slower, as each profile's notes say). Dense GPU figures follow from the GPU
clock: per Ampere SM and clock, 256 fp32 FLOPs, 2048 fp16/bf16 tensor FLOPs and 4096 int8 tensor ops.

bf16 is listed for the GPU: Orin's GPU is Ampere (sm 8.7) and TensorRT 10 runs bf16 there, but it is rarely
worth it over fp16 on Jetson and the DLA does not compute it, so fp16 stays the default.
"""

from __future__ import annotations

from optimizer.targets.profiles import DlaSpec, RuntimeSupport, TargetProfile

TENSORRT_JETPACK6 = RuntimeSupport(
    "tensorrt",
    "10.3 (JetPack 6.1/6.2)",
    "TensorRT comes with JetPack and cannot be upgraded on its own; engines must be built on the device (or "
    "the same JetPack). TensorRT 11.x does not support JetPack 6, and DLA is absent from TensorRT 11.0-11.3, so "
    "DLA deployments stay on TensorRT 10.x.",
)
ONNXRUNTIME_JETSON = RuntimeSupport(
    "onnxruntime",
    "1.20 or later (Jetson builds)",
    "CUDA or TensorRT execution provider; NVIDIA's Jetson wheels, not the PyPI ones.",
)

# ONNX op types that TensorRT 10 can place on the DLA, from "DLA Supported Layers and Restrictions" (TensorRT
# layer -> ONNX op): Convolution, Deconvolution, FullyConnected (Gemm/MatMul with constant weights), Pooling,
# Activation, Parametric ReLU, Scale (BatchNormalization), ElementWise, Comparison, LRN, Concatenation, Resize,
# Softmax, Slice, Shuffle (Reshape/Transpose/Flatten), Reduce (MAX only), Unary (Abs/Sin/Cos/Atan).
DLA_OPS = (
    "Conv", "ConvTranspose", "Gemm", "MatMul",
    "MaxPool", "AveragePool", "GlobalAveragePool", "GlobalMaxPool",
    "Relu", "Sigmoid", "Tanh", "Clip", "LeakyRelu", "PRelu",
    "BatchNormalization", "LRN",
    "Add", "Sub", "Mul", "Div", "Pow", "Max", "Min",
    "Equal", "Greater", "Less",
    "Concat", "Resize", "Softmax", "Slice",
    "Reshape", "Transpose", "Flatten",
    "ReduceMax",
    "Abs", "Sin", "Cos", "Atan",
)
DLA_LIMITS = (
    "Everything else, and any listed op outside the DLA's limits, runs on the GPU: build with GPU fallback "
    "allowed (trtexec --allowGPUFallback). Each GPU/DLA switch costs a copy, so a model should be DLA-clean in "
    "long runs. Limits (TensorRT 10): fp16/int8 only; static shapes (build and run dims equal); batch <= 4096 "
    "and other dims <= 8192; mostly 4-D tensors with 2-D spatial ops; Conv/FullyConnected kernel 1-32, stride "
    "1-8, channels <= 8192; Deconvolution not grouped or dilated, padding 0; Concat on the channel axis only; "
    "Gemm/MatMul only as FullyConnected (constant weights); Resize nearest or bilinear with integer scales; "
    "comparisons int8 only; at most 16 DLA loadables per core. TensorRT checks each layer at build time and "
    "logs the ones it moves to the GPU."
)

JETSON_ORIN_NANO = TargetProfile(
    name="jetson-orin-nano",
    description="NVIDIA Jetson Orin Nano 8GB (Ampere GPU, 1024 cores, no DLA), TensorRT",
    family="jetson",
    device_type="gpu",
    runtime="tensorrt",
    pipeline="portable",
    precisions=("fp32", "fp16", "bf16", "int8"),
    default_precision="fp16",
    aliases=("jetson", "orin-nano", "jetson-orin-nano-super"),
    runtimes=(TENSORRT_JETPACK6, ONNXRUNTIME_JETSON),
    architecture="Ampere",
    sm="8.7",
    memory_gb=8.0,
    # 67 sparse INT8 TOPS (MAXN SUPER) is GPU only here; GPU at 1020 MHz.
    peak_tops={"fp32": 2.09, "fp16": 16.7, "bf16": 16.7, "int8": 33.4},
    memory_bandwidth_gbs=102.0,
    sparsity_2_4=True,
    notes=(
        ("Figures at MAXN SUPER (JetPack 6.2, 25 W, GPU 1020 MHz, 102 GB/s). JetPack 6.1 and earlier: 40 sparse "
         "TOPS (GPU 625 MHz, ~20 dense int8 TOPS) and 68 GB/s."),
        "No DLA on Orin Nano: every layer runs on the GPU.",
        "The 4GB module has half the GPU (512 cores) and 34 GB/s (JetPack 6.2: 51 GB/s).",
        "Memory is shared by CPU and GPU.",
    ),
    details={"memory": "LPDDR5, 128-bit, shared", "gpu_cores": "1024 (32 tensor cores)", "power_mode": "MAXN SUPER"},
)

JETSON_ORIN_NX = TargetProfile(
    name="jetson-orin-nx",
    description="NVIDIA Jetson Orin NX 16GB (Ampere GPU, 1024 cores, 2 DLA v2 cores), TensorRT",
    family="jetson",
    device_type="gpu",
    runtime="tensorrt",
    pipeline="portable",
    precisions=("fp32", "fp16", "bf16", "int8"),
    default_precision="fp16",
    aliases=("orin-nx", "jetson-orin-nx-16gb"),
    runtimes=(TENSORRT_JETPACK6, ONNXRUNTIME_JETSON),
    architecture="Ampere",
    sm="8.7",
    memory_gb=16.0,
    # GPU at 1173 MHz (MAXN SUPER).
    peak_tops={"fp32": 2.4, "fp16": 19.2, "bf16": 19.2, "int8": 38.4},
    memory_bandwidth_gbs=102.4,
    sparsity_2_4=True,
    dla=DlaSpec(
        cores=2,
        precisions=("fp16", "int8"),
        ops=DLA_OPS,
        notes=DLA_LIMITS,
    ),
    notes=(
        ("Figures for the 16GB module at MAXN SUPER (JetPack 6.2, 40 W): 157 sparse INT8 TOPS GPU+DLA. "
         "JetPack 6.1 and earlier: 100 sparse TOPS, GPU 918 MHz (~30 dense int8 TOPS on the GPU)."),
        "The 8GB module has ONE DLA core (core 0 only), 8 GB and 70 sparse TOPS (117 with MAXN SUPER).",
        "Memory is shared by CPU, GPU and DLA.",
    ),
    details={"memory": "LPDDR5, 128-bit, shared", "gpu_cores": "1024 (32 tensor cores)", "power_mode": "MAXN SUPER"},
)

JETSON_AGX_ORIN = TargetProfile(
    name="jetson-agx-orin",
    description="NVIDIA Jetson AGX Orin 64GB (Ampere GPU, 2048 cores, 2 DLA v2 cores), TensorRT",
    family="jetson",
    device_type="gpu",
    runtime="tensorrt",
    pipeline="portable",
    precisions=("fp32", "fp16", "bf16", "int8"),
    default_precision="fp16",
    aliases=("agx-orin", "jetson-agx-orin-64gb"),
    runtimes=(TENSORRT_JETPACK6, ONNXRUNTIME_JETSON),
    architecture="Ampere",
    sm="8.7",
    memory_gb=64.0,
    # GPU at 1.3 GHz: 170 sparse INT8 TOPS and 5.3 fp32 TFLOPS on the datasheet.
    peak_tops={"fp32": 5.3, "fp16": 42.6, "bf16": 42.6, "int8": 85.2},
    memory_bandwidth_gbs=204.8,
    sparsity_2_4=True,
    dla=DlaSpec(
        cores=2,
        precisions=("fp16", "int8"),
        ops=DLA_OPS,
        notes=DLA_LIMITS + " DLA peak (datasheet): 105 sparse INT8 TOPS for both cores together.",
    ),
    notes=(
        "Figures for the 64GB module at MAXN (60 W): 275 sparse INT8 TOPS = GPU 170 + DLA 105.",
        "The 32GB module: 1792 GPU cores at 930 MHz, 200 sparse TOPS, same 204.8 GB/s and 2 DLA cores.",
        "Memory is shared by CPU, GPU and DLA.",
    ),
    details={"memory": "LPDDR5, 256-bit, shared", "gpu_cores": "2048 (64 tensor cores)", "power_mode": "MAXN"},
)

PROFILES = (JETSON_ORIN_NANO, JETSON_ORIN_NX, JETSON_AGX_ORIN)
