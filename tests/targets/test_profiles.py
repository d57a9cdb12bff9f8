"""The device profiles as data: every target resolves, the data is consistent, and the figures are the dense
datasheet ones; the roofline estimate and the rendering built on them."""

import numpy as np
import onnx
import pytest

from optimizer.pipeline import PIPELINES
from optimizer.targets import all_targets, get_target
from optimizer.targets.profiles import DEVICE_TYPES, PRECISION_NAMES
from optimizer.targets.render import render_target, render_target_list
from optimizer.targets.roofline import (
    BANDWIDTH_EFFICIENCY,
    COMPUTE_EFFICIENCY,
    estimate_latency_ms,
    model_cost,
)
from optimizer.testing import model_from_text

REQUIRED = (
    "cpu", "x86-64", "intel-cpu", "intel-gpu", "intel-npu", "t4", "a10g", "l4", "a100", "h100",
    "jetson-orin-nano", "jetson-orin-nx", "jetson-agx-orin", "rpi4", "rpi5", "arm64", "android-arm64",
)
PROFILES = all_targets()


def by_name(name):
    return next(p for p in PROFILES if p.name == name)


@pytest.mark.parametrize("name", REQUIRED)
def test_every_required_target_resolves_by_name(name):
    assert get_target(name).name == name


@pytest.mark.parametrize(("alias", "name"), [
    ("jetson", "jetson-orin-nano"), ("x86_64", "x86-64"), ("aarch64", "arm64"), ("android", "android-arm64"),
    ("nvidia-t4", "t4"), ("Tesla-T4", "t4"), ("nvidia-h100", "h100"), ("host", "cpu"),
])
def test_aliases_resolve(alias, name):
    assert get_target(alias).name == name


def test_names_and_aliases_are_unique_and_lowercase():
    # get_target lowercases what it is given, so an uppercase name could never be found.
    keys = [key for p in PROFILES for key in (p.name, *p.aliases)]
    assert len(keys) == len(set(keys)), sorted(k for k in keys if keys.count(k) > 1)
    assert all(key == key.strip().lower() for key in keys)


@pytest.mark.parametrize("profile", PROFILES, ids=lambda p: p.name)
def test_profile_is_consistent(profile):
    assert profile.precisions and set(profile.precisions) <= set(PRECISION_NAMES)
    assert len(set(profile.precisions)) == len(profile.precisions)
    assert profile.default_precision in profile.precisions
    assert profile.runtimes and profile.runtime == profile.runtimes[0].backend
    assert profile.pipeline in PIPELINES
    assert profile.device_type in DEVICE_TYPES
    assert profile.description
    # A peak for a precision the device does not compute would be a figure nothing can use.
    assert set(profile.peak_tops) <= set(profile.precisions)
    assert all(value > 0 for value in profile.peak_tops.values())
    assert profile.memory_gb is None or profile.memory_gb > 0
    assert profile.memory_bandwidth_gbs is None or profile.memory_bandwidth_gbs > 0
    assert isinstance(profile.precisions, tuple) and isinstance(profile.aliases, tuple)


def test_only_the_host_is_present():
    assert [p.name for p in PROFILES if p.present] == ["cpu"]


def test_families_name_their_module():
    assert {p.family for p in PROFILES} == {"cpu", "x86", "intel", "nvidia", "jetson", "edge"}
    assert {p.name for p in PROFILES if p.family == "jetson"} == {
        "jetson-orin-nano", "jetson-orin-nx", "jetson-agx-orin"}


def test_dla_only_on_orin_nx_and_agx():
    assert {p.name for p in PROFILES if p.dla is not None} == {"jetson-orin-nx", "jetson-agx-orin"}
    for name in ("jetson-orin-nx", "jetson-agx-orin"):
        dla = by_name(name).dla
        assert dla.cores == 2
        assert dla.precisions == ("fp16", "int8")
        assert {"Conv", "Relu", "MaxPool", "Concat", "BatchNormalization"} <= set(dla.ops)
        # Layers the DLA cannot run at all must not be claimed for it.
        assert not {"LayerNormalization", "Gather", "Einsum", "NonMaxSuppression", "Erf"} & set(dla.ops)
        assert all(onnx.defs.has(op) for op in dla.ops), "DLA ops must be ONNX op types"
        assert "fallback" in dla.notes.lower()


def test_precisions_follow_the_hardware():
    assert "fp8" in get_target("h100").precisions and "fp8" in get_target("l4").precisions
    assert "fp8" not in get_target("a100").precisions  # FP8 tensor cores arrived with Ada/Hopper
    assert "bf16" not in get_target("t4").precisions  # Turing has no bf16
    assert "fp16" in get_target("rpi5").precisions and "fp16" not in get_target("rpi4").precisions
    assert get_target("intel-npu").precisions == ("fp16", "int8")


def test_static_shapes_only_on_the_npu():
    assert [p.name for p in PROFILES if p.static_shapes] == ["intel-npu"]


def test_sparsity_from_ampere_on():
    sparse = {p.name for p in PROFILES if p.sparsity_2_4}
    assert sparse == {"a10g", "l4", "a100", "h100", "jetson-orin-nano", "jetson-orin-nx", "jetson-agx-orin"}


def test_nvidia_targets_use_tensorrt_and_say_tensorrt_11_is_strongly_typed():
    for profile in (p for p in PROFILES if p.family in ("nvidia", "jetson")):
        assert profile.runtime == "tensorrt" and profile.default_precision == "fp16"
        assert profile.sm and profile.device_type == "gpu"
        assert "onnxruntime" in [r.backend for r in profile.runtimes]
    for profile in (p for p in PROFILES if p.family == "nvidia"):
        assert "11" in profile.runtimes[0].versions and "strongly typed" in profile.runtimes[0].notes
    assert {p.sm for p in PROFILES if p.family == "jetson"} == {"8.7"}
    assert all("10.3" in p.runtimes[0].versions for p in PROFILES if p.family == "jetson")
    assert (get_target("t4").sm, get_target("a100").sm, get_target("h100").sm) == ("7.5", "8.0", "9.0")


def test_edge_targets_plan_tflite_and_list_a_runtime_that_is_built():
    for profile in (p for p in PROFILES if p.family == "edge"):
        assert (profile.runtime, profile.op_set, profile.default_precision) == ("tflite", "tflite", "int8")
        assert [r.backend for r in profile.runtimes] == ["tflite", "onnxruntime"]
    assert "asimddp" in get_target("rpi5").isa and "asimddp" not in get_target("rpi4").isa


def test_datasheet_figures():
    t4 = get_target("t4")
    assert (t4.peak_tops, t4.memory_bandwidth_gbs, t4.memory_gb) == (
        {"fp32": 8.1, "fp16": 65.0, "int8": 130.0}, 320.0, 16.0)
    assert get_target("a100").peak_tops["fp16"] == 312.0  # dense; 624 is the sparse figure
    assert get_target("h100").peak_tops["fp8"] == 1979.0  # dense; 3958 is the sparse figure
    # Orin Nano's 67 TOPS (JetPack 6.2) is sparse INT8 on the GPU.
    assert get_target("jetson-orin-nano").peak_tops["int8"] == pytest.approx(67 / 2, rel=0.01)
    assert get_target("jetson-agx-orin").peak_tops["int8"] == pytest.approx(170 / 2, rel=0.01)


@pytest.mark.parametrize("profile", [p for p in PROFILES if p.device_type == "gpu" and p.peak_tops],
                         ids=lambda p: p.name)
def test_gpu_peaks_are_all_dense(profile):
    # Tensor cores run int8 at twice the fp16 rate; one figure taken sparse and the other dense would break it.
    peaks = profile.peak_tops
    assert peaks["int8"] == pytest.approx(2 * peaks["fp16"], rel=0.01)
    assert peaks["fp16"] > peaks["fp32"]
    if "fp8" in peaks:
        assert peaks["fp8"] == pytest.approx(peaks["int8"], rel=0.01)


# ---- roofline ------------------------------------------------------------------------------------------------

CONV = """
<ir_version: 8, opset_import: ["" : 17]>
conv (float[1,64,112,112] x) => (float[1,64,112,112] y) {
  y = Conv <pads = [1, 1, 1, 1]> (x, w)
}
"""
MATVEC = """
<ir_version: 8, opset_import: ["" : 17]>
matvec (float[1,4096] x) => (float[1,4096] y) {
  y = MatMul (x, w)
}
"""


def conv_model():
    return model_from_text(CONV, w=np.zeros((64, 64, 3, 3), np.float32))


def matvec_model():
    return model_from_text(MATVEC, w=np.zeros((4096, 4096), np.float32))


def test_model_cost_counts_two_flops_per_mac_and_weights_plus_activations():
    flops, moved = model_cost(conv_model())
    assert flops == 2 * (64 * 112 * 112) * (64 * 3 * 3)
    assert moved == 4 * (64 * 64 * 3 * 3 + 2 * 64 * 112 * 112)  # weight, input, output (fp32)
    flops, moved = model_cost(matvec_model(), precision="fp16")
    assert flops == 2 * 4096 * 4096
    assert moved == 2 * (4096 * 4096 + 2 * 4096)


def test_model_cost_of_gemm_conv_transpose_and_batched_matmul():
    model = model_from_text("""
<ir_version: 8, opset_import: ["" : 17]>
g (float[8,16] a, float[2,3,5,7] p, float[1,4,6,6] x) => (float[16,32] y, float[2,3,5,9] q, float[1,2,12,12] z) {
  y = Gemm <transA = 1> (a, b)
  q = MatMul (p, r)
  z = ConvTranspose <strides = [2, 2], pads = [1, 1, 1, 1], output_padding = [1, 1]> (x, w)
}""", b=np.zeros((8, 32), np.float32), r=np.zeros((7, 9), np.float32), w=np.zeros((4, 2, 3, 3), np.float32))
    flops, _ = model_cost(model)
    gemm = 16 * 32 * 8  # transA: A is [K=8, M=16]
    matmul = 2 * 3 * 5 * 9 * 7
    conv_transpose = (1 * 4 * 6 * 6) * (2 * 3 * 3)  # each input element scatters through C_out x kernel
    assert flops == 2 * (gemm + matmul + conv_transpose)


def test_dynamic_dims_count_as_one():
    model = model_from_text("""
<ir_version: 8, opset_import: ["" : 17]>
g (float[N,256] x) => (float[N,128] y) {
  y = MatMul (x, w)
}""", w=np.zeros((256, 128), np.float32))
    flops, _ = model_cost(model)
    assert flops == 2 * 256 * 128


def test_a_big_convolution_is_compute_bound_and_a_matvec_memory_bound():
    t4 = get_target("t4")
    conv = estimate_latency_ms(*model_cost(conv_model()), t4, "fp32")
    matvec = estimate_latency_ms(*model_cost(matvec_model(), precision="fp16"), t4, "fp16")
    assert conv.bound == "compute" and matvec.bound == "memory"
    assert conv.estimated and matvec.estimated
    assert conv.latency_ms == pytest.approx(conv.flops / (8.1e12 * COMPUTE_EFFICIENCY) * 1e3)
    assert matvec.latency_ms == pytest.approx(matvec.bytes / (320e9 * BANDWIDTH_EFFICIENCY) * 1e3)
    assert conv.latency_ms > 0 and matvec.latency_ms > 0


def test_faster_device_and_lower_precision_estimate_faster():
    flops, moved = model_cost(conv_model())
    t4 = estimate_latency_ms(flops, moved, get_target("t4"), "fp16")
    h100 = estimate_latency_ms(flops, moved, get_target("h100"), "fp16")
    t4_fp32 = estimate_latency_ms(flops, moved, get_target("t4"), "fp32")
    assert h100.latency_ms < t4.latency_ms < t4_fp32.latency_ms


def test_no_estimate_without_the_figures():
    flops, moved = model_cost(conv_model())
    assert estimate_latency_ms(flops, moved, get_target("x86-64"), "fp32") is None  # no figures at all
    assert estimate_latency_ms(flops, moved, get_target("t4"), "bf16") is None  # no peak at that precision
    assert estimate_latency_ms(flops, moved, get_target("rpi5"), "int8") is not None


def test_model_cost_rejects_an_unknown_precision():
    with pytest.raises(ValueError, match="int3"):
        model_cost(conv_model(), precision="int3")


# ---- rendering -----------------------------------------------------------------------------------------------

def flat(text):
    return " ".join(text.split())


def test_target_list_has_one_line_per_target_with_its_facts():
    text = render_target_list(PROFILES)
    lines = text.splitlines()
    for profile in PROFILES:
        line = next(line for line in lines if line.split()[0] == profile.name)
        for fact in (profile.device_type, profile.runtime, ", ".join(profile.precisions), *profile.aliases):
            assert fact in line, (profile.name, fact)
    assert sum(1 for line in lines if line.split()[0] in {p.name for p in PROFILES}) == len(PROFILES)


@pytest.mark.parametrize("profile", PROFILES, ids=lambda p: p.name)
def test_target_shows_every_field(profile):
    text = flat(render_target(profile))
    facts = [profile.name, profile.description, profile.family, profile.runtime, profile.pipeline,
             profile.default_precision, *profile.precisions, *profile.aliases, *profile.isa, *profile.notes,
             *(f"{r.backend}: {r.versions}" for r in profile.runtimes), *(r.notes for r in profile.runtimes),
             *(f"{key}: {value}" for key, value in profile.details.items())]
    if profile.sm:
        facts.append(f"sm {profile.sm}")
    if profile.memory_bandwidth_gbs:
        facts.append(f"{profile.memory_bandwidth_gbs:g} GB/s")
    if profile.memory_gb:
        facts.append(f"{profile.memory_gb:g} GB")
    if profile.op_set:
        facts.append(profile.op_set)
    for fact in facts:
        assert flat(fact) in text, fact


def test_target_shows_peaks_with_units_dla_and_shapes():
    agx = flat(render_target(get_target("jetson-agx-orin")))
    assert "fp16 42.6 TFLOPS" in agx and "int8 85.2 TOPS" in agx and "204.8 GB/s" in agx
    assert "2 cores, fp16, int8 only" in agx and "ConvTranspose" in agx and "GPU fallback" in agx
    assert "dla none" in flat(render_target(get_target("jetson-orin-nano")))
    assert "fp8 1979 TFLOPS" in flat(render_target(get_target("h100")))
    assert "static shapes yes" in flat(render_target(get_target("intel-npu")))
    assert "not recorded" in flat(render_target(get_target("x86-64")))
