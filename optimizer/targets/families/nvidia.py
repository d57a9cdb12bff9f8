"""NVIDIA data-centre GPUs, compiled with TensorRT: T4, A10G, L4, A100, H100.

Peak figures are the DENSE values. NVIDIA's Ampere-and-later datasheets print the tensor-core figures with 2:4
structured sparsity (marked "*"), twice the dense rate; those are halved here. Turing (T4) has no sparsity, so
its datasheet figures are dense already. "fp32" is the CUDA-core rate; TensorRT runs fp32 layers on TF32 tensor
cores by default on Ampere and later, and that figure is kept in `details` rather than passed off as fp32.

int4 is not listed: hwopt's int4 artifact uses ONNX Runtime's MatMulNBits, which TensorRT does not run.
"""

from __future__ import annotations

from optimizer.targets.profiles import RuntimeSupport, TargetProfile

TENSORRT = RuntimeSupport(
    "tensorrt",
    "10.x, 11.x",
    "TensorRT 11 builds strongly typed networks only: there are no FP16/INT8/BF16/FP8 builder flags, so the "
    "precision comes from the ONNX itself (fp16 weights and casts, Q/DQ nodes for int8/fp8). 10.x still "
    "accepts the flags (weak typing, deprecated in late 10.x).",
)
ONNXRUNTIME_GPU = RuntimeSupport(
    "onnxruntime",
    "1.20 or later",
    "CUDA or TensorRT execution provider (onnxruntime-gpu); ORT 1.27+ is needed for TensorRT 11.",
)

T4 = TargetProfile(
    name="t4",
    description="NVIDIA T4 (Turing, 16 GB GDDR6, 70 W), TensorRT",
    family="nvidia",
    device_type="gpu",
    runtime="tensorrt",
    pipeline="portable",
    precisions=("fp32", "fp16", "int8"),  # Turing has no bf16 or fp8 tensor cores
    default_precision="fp16",
    aliases=("nvidia-t4", "tesla-t4"),
    runtimes=(TENSORRT, ONNXRUNTIME_GPU),
    architecture="Turing",
    sm="7.5",
    memory_gb=16.0,
    peak_tops={"fp32": 8.1, "fp16": 65.0, "int8": 130.0},
    memory_bandwidth_gbs=320.0,
    sparsity_2_4=False,
    notes=(
        ("Datasheet figures (dense; Turing has no structured sparsity). fp16 is the mixed-precision tensor-core "
         "rate."),
        "TensorRT 10.x supports sm 7.5; whether TensorRT 11.x still does was not verified for this profile.",
    ),
    details={"memory": "GDDR6", "tdp_w": "70"},
)

A10G = TargetProfile(
    name="a10g",
    description="NVIDIA A10G (Ampere GA102, 24 GB GDDR6; AWS G5 instances), TensorRT",
    family="nvidia",
    device_type="gpu",
    runtime="tensorrt",
    pipeline="portable",
    precisions=("fp32", "fp16", "bf16", "int8"),
    default_precision="fp16",
    aliases=("nvidia-a10g", "aws-g5"),
    runtimes=(TENSORRT, ONNXRUNTIME_GPU),
    architecture="Ampere",
    sm="8.6",
    memory_gb=24.0,
    peak_tops={"fp32": 35.0, "fp16": 70.0, "bf16": 70.0, "int8": 140.0},
    memory_bandwidth_gbs=600.0,
    sparsity_2_4=True,
    notes=(
        ("NVIDIA publishes no A10G datasheet: the peak figures are the ones AWS and third parties quote "
         "(taken as dense) and are less certain than the other GPUs'. Memory and bandwidth match the A10."),
        ("The A10 (not A10G) has more tensor throughput (125 TFLOPS fp16, 250 TOPS int8 dense) and 31.2 TFLOPS "
         "fp32 at the same 600 GB/s."),
    ),
    details={"memory": "GDDR6", "tf32_tflops_dense": "35"},
)

L4 = TargetProfile(
    name="l4",
    description="NVIDIA L4 (Ada Lovelace, 24 GB GDDR6, 72 W), TensorRT",
    family="nvidia",
    device_type="gpu",
    runtime="tensorrt",
    pipeline="portable",
    precisions=("fp32", "fp16", "bf16", "int8", "fp8"),
    default_precision="fp16",
    aliases=("nvidia-l4",),
    runtimes=(TENSORRT, ONNXRUNTIME_GPU),
    architecture="Ada Lovelace",
    sm="8.9",
    memory_gb=24.0,
    # Datasheet (sparse): fp16/bf16 242, fp8 485, int8 485; halved here.
    peak_tops={"fp32": 30.3, "fp16": 121.0, "bf16": 121.0, "fp8": 242.5, "int8": 242.5},
    memory_bandwidth_gbs=300.0,
    sparsity_2_4=True,
    notes=("Low bandwidth for its compute (300 GB/s): most inference on it is memory-bound.",),
    details={"memory": "GDDR6", "tdp_w": "72", "tf32_tflops_dense": "60"},
)

A100 = TargetProfile(
    name="a100",
    description="NVIDIA A100 80GB SXM (Ampere GA100, HBM2e), TensorRT",
    family="nvidia",
    device_type="gpu",
    runtime="tensorrt",
    pipeline="portable",
    precisions=("fp32", "fp16", "bf16", "int8"),
    default_precision="fp16",
    aliases=("nvidia-a100", "a100-80gb"),
    runtimes=(TENSORRT, ONNXRUNTIME_GPU),
    architecture="Ampere",
    sm="8.0",
    memory_gb=80.0,
    # Datasheet: fp16/bf16 312 and int8 624 are dense (sparse: 624 / 1248).
    peak_tops={"fp32": 19.5, "fp16": 312.0, "bf16": 312.0, "int8": 624.0},
    memory_bandwidth_gbs=2039.0,
    sparsity_2_4=True,
    notes=(
        ("Figures for the 80GB SXM4 part. The 40GB part has 1555 GB/s and the 80GB PCIe part 1935 GB/s; "
         "compute is the same."),
    ),
    details={"memory": "HBM2e", "form_factor": "SXM4", "tf32_tflops_dense": "156"},
)

H100 = TargetProfile(
    name="h100",
    description="NVIDIA H100 SXM 80GB (Hopper, HBM3), TensorRT",
    family="nvidia",
    device_type="gpu",
    runtime="tensorrt",
    pipeline="portable",
    precisions=("fp32", "fp16", "bf16", "int8", "fp8"),
    default_precision="fp16",
    aliases=("nvidia-h100", "h100-sxm"),
    runtimes=(TENSORRT, ONNXRUNTIME_GPU),
    architecture="Hopper",
    sm="9.0",
    memory_gb=80.0,
    # Datasheet (sparse): fp16/bf16 1979, fp8 3958, int8 3958; halved here.
    peak_tops={"fp32": 67.0, "fp16": 989.5, "bf16": 989.5, "fp8": 1979.0, "int8": 1979.0},
    memory_bandwidth_gbs=3350.0,
    sparsity_2_4=True,
    notes=(
        "Figures for the SXM5 part. H100 PCIe: 51 TFLOPS fp32, ~756 TFLOPS fp16 dense, 2000 GB/s HBM2e.",
        "fp8 (E4M3) is reached only through Q/DQ nodes in the ONNX (explicit quantization), not calibration.",
    ),
    details={"memory": "HBM3", "form_factor": "SXM5", "tf32_tflops_dense": "494.5"},
)

PROFILES = (T4, A10G, L4, A100, H100)
