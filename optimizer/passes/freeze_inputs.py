"""Freeze graph inputs to constants the user gives (`--freeze-input sr=16000`).

Some inputs are configuration rather than data: silero-vad's `sr` picks its 8 kHz or 16 kHz graph through an
`If`. A deployment uses one rate, and once `sr` is a constant, constant folding inlines the branch taken and the
other disappears; TensorRT, which parses and shape-checks both branches, can then build the model. The input
leaves the graph's signature, so the artifact's manifest no longer lists it.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

import numpy as np
import onnx_ir as ir

from optimizer.errors import UsageError
from optimizer.passes.base import OptimizerPass, PassConfig


@dataclass(frozen=True)
class FreezeInputsConfig(PassConfig):
    values: Mapping[str, np.ndarray] = field(default_factory=dict)
    """Input name -> its value, already in the input's dtype and shape (see `freeze_value`)."""


class FreezeInputs(OptimizerPass):
    name = "freeze-inputs"
    summary = "replace graph inputs by constants the user gives"
    config_type = FreezeInputsConfig
    config: FreezeInputsConfig

    def rewrite(self, model: ir.Model) -> int:
        inputs = {value.name: value for value in model.graph.inputs}
        unknown = sorted(set(self.config.values) - set(inputs))
        if unknown:
            raise UsageError(f"--freeze-input names unknown input(s) {', '.join(unknown)}; the model's inputs are "
                             f"{', '.join(inputs) or 'none'}")
        for name, array in self.config.values.items():
            value = inputs[name]
            model.graph.inputs.remove(value)
            value.const_value = ir.tensor(array, name=name)
            if name not in model.graph.initializers:
                model.graph.register_initializer(value)
        return len(self.config.values)


def freeze_value(name: str, value, dtype: np.dtype, shape) -> np.ndarray:
    """`value` as the input's dtype and shape (a scalar broadcast to a static shape); a clear error otherwise."""
    try:
        array = np.asarray(value, dtype=dtype)
    except (TypeError, ValueError):
        raise UsageError(f"--freeze-input {name}: {value!r} is not a {np.dtype(dtype).name} value") from None
    if shape is None:
        return array
    if any(not isinstance(d, int) for d in shape):
        if array.ndim != len(shape):
            raise UsageError(f"--freeze-input {name}: the input has rank {len(shape)}, the value rank {array.ndim}")
        return array
    try:
        return np.broadcast_to(array, tuple(shape)).copy()
    except ValueError:
        raise UsageError(f"--freeze-input {name}: a value of shape {array.shape} does not fit the input's shape "
                         f"{tuple(shape)}") from None
