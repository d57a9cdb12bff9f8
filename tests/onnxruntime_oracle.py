"""The oracle: does ONNX Runtime load a variant and run it? Only a model it cannot is held against hwopt."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import numpy as np
import onnxruntime

MAX_ORACLE_INPUT_BYTES = 1 << 30
"""A model whose inputs cannot fit in memory cannot be run: the oracle does not try."""


def onnxruntime_verdict(path: Path, hints: Mapping[str, np.ndarray]) -> str:
    """'runs' when ONNX Runtime loads the model and runs it on plausible inputs, else 'rejects: why'."""
    options = onnxruntime.SessionOptions()
    options.intra_op_num_threads = options.inter_op_num_threads = 1
    options.graph_optimization_level = onnxruntime.GraphOptimizationLevel.ORT_DISABLE_ALL
    options.log_severity_level = 4
    try:
        session = onnxruntime.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
    except Exception as error:  # noqa: BLE001  any failure to load is a rejection
        return f"rejects: cannot load: {_first_line(error)}"
    try:
        feeds = {}
        for spec in session.get_inputs():
            dtype = _ORT_TYPES.get(spec.type)
            if dtype is None:
                return f"rejects: input '{spec.name}' has type {spec.type}"
            hint = hints.get(spec.name)
            dims = list(spec.shape or [])
            if hint is not None and hint.ndim == len(dims):
                shape = [d if isinstance(d, int) and d >= 0 else h for d, h in zip(dims, hint.shape)]
            else:
                shape = [d if isinstance(d, int) and d >= 0 else 1 for d in dims]
            size = int(np.prod(shape, dtype=np.float64)) * dtype.itemsize
            if size > MAX_ORACLE_INPUT_BYTES:
                return f"rejects: input '{spec.name}' of shape {shape} needs {size} bytes"
            if hint is not None and list(hint.shape) == shape:
                feeds[spec.name] = hint.astype(dtype)
            else:
                feeds[spec.name] = np.ones(shape, dtype)
        session.run(None, feeds)
    except Exception as error:  # noqa: BLE001  any failure to run is a rejection
        return f"rejects: cannot run: {_first_line(error)}"
    return "runs"


_ORT_TYPES = {f"tensor({name})": np.dtype(dtype) for name, dtype in (
    ("float", "float32"), ("double", "float64"), ("float16", "float16"), ("int8", "int8"), ("int16", "int16"),
    ("int32", "int32"), ("int64", "int64"), ("uint8", "uint8"), ("uint16", "uint16"), ("uint32", "uint32"),
    ("uint64", "uint64"), ("bool", "bool"))}


def _first_line(error: BaseException) -> str:
    return next((line.strip() for line in str(error).splitlines() if line.strip()), type(error).__name__)[:200]

