"""Import a PyTorch `nn.Module` through PyTorch's own ONNX exporter.

The dynamo-based exporter returns an onnx-ir model directly, so nothing is written to disk. Dynamic dims are
given the PyTorch way (`dynamic_shapes`); without them the export is static at the example inputs' shapes.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import onnx_ir as ir

from optimizer.errors import ModelLoadError, RuntimeNotAvailableError, UsageError

DEFAULT_EXPORT_OPSET = 18


def is_torch_module(obj: object) -> bool:
    torch = _torch_if_imported()
    return torch is not None and isinstance(obj, torch.nn.Module)


def _torch_if_imported():
    import sys

    return sys.modules.get("torch")


def export_module(
    module: Any,
    example_inputs: Sequence[Any] | Mapping[str, Any] | Any,
    *,
    input_names: Sequence[str] | None = None,
    output_names: Sequence[str] | None = None,
    dynamic_shapes: Any = None,
    opset_version: int = DEFAULT_EXPORT_OPSET,
) -> ir.Model:
    try:
        import torch
    except ImportError:
        raise RuntimeNotAvailableError("importing a PyTorch module needs torch: pip install 'hwopt[torch]'") from None
    if example_inputs is None:
        raise UsageError("a PyTorch module needs example inputs to be exported (example_inputs=...)")
    if isinstance(example_inputs, Mapping):
        args, kwargs = (), dict(example_inputs)
    elif isinstance(example_inputs, (tuple, list)):
        args, kwargs = tuple(example_inputs), {}
    else:
        args, kwargs = (example_inputs,), {}
    was_training = module.training
    module.eval()
    try:
        program = torch.onnx.export(
            module,
            args,
            kwargs=kwargs or None,
            input_names=list(input_names) if input_names else None,
            output_names=list(output_names) if output_names else None,
            dynamic_shapes=dynamic_shapes,
            opset_version=opset_version,
            dynamo=True,
            verbose=False,
        )
    except Exception as error:
        message = " ".join(str(error).split())[:300]
        raise ModelLoadError(f"PyTorch export of {type(module).__name__} failed: {message}") from None
    finally:
        module.train(was_training)
    return program.model
