"""Fix dynamic input dimensions to the sizes the user gives (`--shape images=1x3x320x320`).

Static shapes let shape inference, constant folding (Shape/Gather/Concat chains collapse) and the runtimes
plan memory and pick kernels ahead of time. A dim that is already static must match: changing it would not be
an optimization but a different model.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

import onnx_ir as ir

from optimizer.errors import UsageError
from optimizer.ir import infer_shapes
from optimizer.passes.base import OptimizerPass, PassConfig


@dataclass(frozen=True)
class FixInputShapesConfig(PassConfig):
    shapes: Mapping[str, tuple[int, ...]] = field(default_factory=dict)
    """Input name → the full shape to fix it to."""


class FixInputShapes(OptimizerPass):
    name = "fix-input-shapes"
    summary = "replace dynamic input dims by given sizes, then re-infer shapes"
    config_type = FixInputShapesConfig
    config: FixInputShapesConfig

    def rewrite(self, model: ir.Model) -> int:
        inputs = {value.name: value for value in model.graph.inputs}
        unknown = sorted(set(self.config.shapes) - set(inputs))
        if unknown:
            raise UsageError(
                f"--shape names unknown input(s) {', '.join(unknown)}; the model's inputs are "
                f"{', '.join(inputs) or 'none'}"
            )
        changed = 0
        for name, dims in self.config.shapes.items():
            changed += _fix_one(inputs[name], tuple(dims))
        if changed:
            infer_shapes(model)
        return changed


def _fix_one(value: ir.Value, dims: tuple[int, ...]) -> int:
    if any(d <= 0 for d in dims):
        raise UsageError(f"--shape {value.name}: every dimension must be a positive integer, got {dims}")
    current = value.shape
    if current is not None:
        if len(current) != len(dims):
            raise UsageError(
                f"--shape {value.name}: the input has rank {len(current)}, the shape given has rank {len(dims)}"
            )
        for axis, (old, new) in enumerate(zip(current, dims)):
            if isinstance(old, int) and old != new:
                raise UsageError(
                    f"--shape {value.name}: dimension {axis} is fixed at {old} in the model, not {new}"
                )
        if current.is_static():
            return 0
    value.shape = ir.Shape(dims)
    return 1
