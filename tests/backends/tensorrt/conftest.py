"""Targets and a bundle maker shared by the TensorRT backend's tests.

The targets are built here rather than looked up, so the tests do not move when optimizer/targets/families
changes: a T4-like GPU (sm 7.5: no bf16, no fp8), an A10G-like one (sm 8.6) and an AGX-Orin-like Jetson
(sm 8.7, two DLA cores).
"""

from __future__ import annotations

import numpy as np
import pytest
from optimizer.backends.base import CompileOptions
from optimizer.backends.tensorrt import TensorRTBackend

from optimizer.artifact import Manifest, model_io_specs, write_manifest
from optimizer.quantization.options import QuantizationOptions
from optimizer.quantization.quantize import quantize_model
from optimizer.targets.profiles import DlaSpec, RuntimeSupport, TargetProfile

DLA_OPS = ("Conv", "ConvTranspose", "Relu", "Sigmoid", "Tanh", "Clip", "LeakyRelu", "PRelu", "MaxPool",
           "AveragePool", "GlobalAveragePool", "BatchNormalization", "Concat", "Add", "Sub", "Mul", "Div", "Max",
           "Min", "Pow", "Gemm", "MatMul", "Resize", "Softmax", "Slice", "Reshape", "Transpose", "LRN", "Abs",
           "Sin", "Cos")

T4 = TargetProfile(
    name="t4-test", description="a T4-like Turing GPU", family="nvidia", device_type="gpu", runtime="tensorrt",
    pipeline="portable", precisions=("fp32", "fp16", "int8"), default_precision="fp16", sm="7.5",
    runtimes=(RuntimeSupport("tensorrt", "10.x, 11.x"),),
)
A10G = TargetProfile(
    name="a10g-test", description="an A10G-like Ampere GPU", family="nvidia", device_type="gpu",
    runtime="tensorrt", pipeline="portable", precisions=("fp32", "fp16", "bf16", "int8"), default_precision="fp16",
    sm="8.6", runtimes=(RuntimeSupport("tensorrt", "10.x, 11.x"),),
)
ORIN = TargetProfile(
    name="orin-test", description="an AGX-Orin-like Jetson", family="jetson", device_type="gpu",
    runtime="tensorrt", pipeline="portable", precisions=("fp32", "fp16", "bf16", "int8"), default_precision="fp16",
    sm="8.7", runtimes=(RuntimeSupport("tensorrt", "10.3 (JetPack 6.1)"),),
    dla=DlaSpec(cores=2, precisions=("fp16", "int8"), ops=DLA_OPS),
)


@pytest.fixture
def make_bundle(tmp_path):
    """compile(model) into a fresh folder and write its manifest, as optimizer/build.py does."""

    def make(model, target=T4, precision="fp32", name="bundle", **options):
        folder = tmp_path / name
        folder.mkdir()
        backend = TensorRTBackend()
        compiled = backend.compile(model, CompileOptions(target, precision, **options), folder)
        inputs, outputs = model_io_specs(model)
        return write_manifest(folder, Manifest(
            target=target.name, runtime=backend.name, runtime_version=compiled.runtime_version,
            device=compiled.device, precision=precision, entry=compiled.entry, inputs=inputs, outputs=outputs,
            details=compiled.details, runs_here=compiled.runs_here))

    return make


@pytest.fixture
def t4():
    return T4


@pytest.fixture
def a10g():
    return A10G


@pytest.fixture
def orin():
    return ORIN


@pytest.fixture
def quantize():
    """quantize(model, precision, shapes) converts `model` in place as the TensorRT pipeline does: fp16 with
    casts, or symmetric int8 QDQ calibrated on a few random samples of the input `shapes`."""

    def convert(model, precision, shapes=None):
        if precision == "fp32":
            return model
        rng = np.random.default_rng(0)
        samples = [{name: rng.random(shape, dtype=np.float32) for name, shape in (shapes or {}).items()}
                   for _ in range(4)] if shapes else None
        quantize_model(model, QuantizationOptions(precision=precision, calibration=samples), runtime="tensorrt")
        return model

    return convert
