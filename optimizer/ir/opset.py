"""Opset queries and upgrades.

Upgrades go through onnxscript's version converter, which works on the IR directly (and falls back to ONNX's
C++ converter for the adapters it lacks), so a model is never round-tripped through protobuf by hand here.
"""

from __future__ import annotations

import onnx_ir as ir

from optimizer.errors import PassError


def default_opset_version(model: ir.Model) -> int:
    """The version of the default ONNX domain the model imports (opset 1 when absent, as ONNX defines)."""
    return model.opset_imports.get("", model.opset_imports.get("ai.onnx", 1))


def upgrade_opset(model: ir.Model, target_version: int) -> bool:
    """Convert the model to `target_version` of the default domain in place; True if it changed."""
    current = default_opset_version(model)
    if current >= target_version:
        return False
    from onnxscript import version_converter

    try:
        version_converter.convert_version(model, target_version=target_version, fallback=True)
    except Exception as error:
        raise PassError(f"cannot upgrade the model from opset {current} to {target_version}: {error}") from None
    return True
