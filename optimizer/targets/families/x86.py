"""Generic x86-64: any AVX2 machine that is not this one, run with ONNX Runtime's CPU provider.

AVX2 + FMA (x86-64-v3: Haswell, 2013, and Zen 1 onwards) is the level ONNX Runtime's MLAS kernels dispatch to on
nearly every x86 server and laptop in service, so it is the baseline a portable CPU artifact is built for.
No peak figures: they vary a hundredfold across the CPUs this profile stands for, so a roofline estimate would
mean nothing; the `cpu` target measures the real machine instead.
"""

from __future__ import annotations

from optimizer.targets.profiles import RuntimeSupport, TargetProfile

X86_64 = TargetProfile(
    name="x86-64",
    description="generic x86-64 CPU with AVX2 (x86-64-v3), ONNX Runtime",
    family="x86",
    device_type="cpu",
    runtime="onnxruntime",
    pipeline="onnxruntime-cpu",
    # INT8 pays off even without VNNI: MLAS uses AVX2 VPMADDUBSW for u8s8 GEMMs. No fp16/bf16 arithmetic at
    # this level (F16C only converts), so those precisions would compute in fp32.
    precisions=("fp32", "int8"),
    default_precision="fp32",
    aliases=("x86", "x86_64", "amd64", "x86-64-v3"),
    runtimes=(
        RuntimeSupport("onnxruntime", "1.20 or later", "CPU execution provider (MLAS)"),
        RuntimeSupport("openvino", "2024.x or later", "CPU plugin; also runs on AMD CPUs"),
    ),
    architecture="x86-64-v3",
    isa=("sse4_2", "avx", "avx2", "fma", "f16c"),
    notes=(
        ("Baseline profile: no peak throughput or bandwidth, since they vary too much across the CPUs it "
         "covers; use target 'cpu' on the deployment machine for measured figures."),
    ),
)

PROFILES = (X86_64,)
