"""The thin layer in front of onnx-ir: the only place in hwopt that touches ONNX protobuf.

onnx-ir (`onnx_ir`) is the in-memory IR everywhere else; this package adds what hwopt needs around it:
loading with clear errors and validation, atomic saving with external data for large models, shape
inference, opset upgrades, conversion to and from protobuf for the runtimes, and small graph helpers.
"""

from __future__ import annotations

import onnx_ir as ir

from optimizer.ir.graph_info import (
    InputSpec,
    all_names,
    all_nodes,
    count_nodes,
    initializer_bytes,
    input_specs,
    is_standard_op,
    op_histogram,
    unique_name,
)
from optimizer.ir.model_io import (
    EXTERNAL_DATA_THRESHOLD_BYTES,
    from_proto,
    has_external_data,
    load_model,
    model_to_bytes,
    save_model,
    to_proto,
    validate_model,
)
from optimizer.ir.opset import default_opset_version, upgrade_opset
from optimizer.ir.shapes import clear_intermediate_shapes, infer_shapes

__all__ = [
    "EXTERNAL_DATA_THRESHOLD_BYTES",
    "InputSpec",
    "all_names",
    "all_nodes",
    "clear_intermediate_shapes",
    "count_nodes",
    "default_opset_version",
    "from_proto",
    "has_external_data",
    "infer_shapes",
    "initializer_bytes",
    "input_specs",
    "ir",
    "is_standard_op",
    "load_model",
    "model_to_bytes",
    "op_histogram",
    "save_model",
    "to_proto",
    "unique_name",
    "upgrade_opset",
    "validate_model",
]
