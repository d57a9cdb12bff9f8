"""Backends by name, imported on first use so that a missing optional runtime costs nothing until asked for."""

from __future__ import annotations

import importlib

from optimizer.backends.base import Backend

from optimizer.errors import UsageError

_BACKENDS = {
    "onnxruntime": ("optimizer.backends.onnxruntime", "OnnxRuntimeBackend"),
    "openvino": ("optimizer.backends.openvino", "OpenVINOBackend"),
    "tensorrt": ("optimizer.backends.tensorrt", "TensorRTBackend"),
    "tflite": ("optimizer.backends.litert", "LiteRTBackend"),
}
BUILT = tuple(_BACKENDS)
"""Backends hwopt can compile for. "tflite" is LiteRT, named as the edge targets' profiles and INT8 schemes
name it."""


def get_backend(name: str) -> Backend:
    if name not in _BACKENDS:
        raise UsageError(f"no backend '{name}' in this hwopt; built: {', '.join(BUILT)}")
    module, attribute = _BACKENDS[name]
    return getattr(importlib.import_module(module), attribute)()
