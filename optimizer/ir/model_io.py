"""Load and save models: clear errors for bad files, validation, atomic writes, external data for big models.

Weights stored as external data stay on disk: onnx-ir memory-maps them, so a model over 2 GB loads and saves
without reading all of its weights into memory at once.
"""

from __future__ import annotations

import math
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import onnx
import onnx_ir as ir
from onnx_ir.passes.common import RemoveInitializersFromInputsPass
from onnx_ir.passes.common._c_api_utils import call_onnx_api

from optimizer.errors import HwoptError, InvalidModelError, ModelLoadError, UsageError
from optimizer.ir.graph_info import initializer_bytes

# Protobuf cannot serialize a message over 2 GiB; above this many bytes of weights, save them beside the model.
EXTERNAL_DATA_THRESHOLD_BYTES = 1 << 30
# How much weight data may be in memory at once while writing external data; bounds peak memory on huge models.
_WRITE_BUFFER_BYTES = 256 << 20


def load_model(path: str | os.PathLike) -> ir.Model:
    """Load an ONNX file into onnx-ir, raising a one-line error that names the file and the problem."""
    path = Path(path)
    if not path.exists():
        raise UsageError(f"{path}: no such file")
    if path.is_dir():
        raise UsageError(f"{path}: is a directory, not an ONNX file")
    if path.stat().st_size == 0:
        raise ModelLoadError(f"{path}: empty file, not an ONNX model")
    try:
        proto = onnx.load(os.fspath(path), load_external_data=False)
    except Exception as error:  # protobuf raises DecodeError, RuntimeError or ValueError depending on damage
        raise ModelLoadError(f"{path}: not a readable ONNX model ({_brief(error)})") from None
    return from_proto(proto, base_dir=path.parent, source=str(path))


def from_proto(
    proto: onnx.ModelProto,
    *,
    base_dir: str | os.PathLike | None = None,
    source: str = "model",
) -> ir.Model:
    """Turn a ModelProto into an onnx-ir model; `base_dir` is where its external data files live."""
    if proto.ir_version <= 0 or not proto.HasField("graph"):
        raise ModelLoadError(f"{source}: not an ONNX model (no IR version or no graph)")
    _check_proto(proto, source)
    _check_tensors(proto, source)
    _check_control_flow(proto, source)
    try:
        model = ir.serde.deserialize_model(proto)
    except Exception as error:
        raise InvalidModelError(f"{source}: cannot be read as an ONNX graph ({_brief(error)})") from None
    if base_dir is not None:
        ir.external_data.set_base_dir(model.graph, base_dir)
        _check_external_data(model, Path(base_dir), source)
    _modernize_ir_version(model)
    return model


def _modernize_ir_version(model: ir.Model) -> None:
    """Before IR version 4 every weight also had to be listed as a graph input; runtimes treat them as
    constants, but the passes would see inputs a caller may override and fold nothing (no BatchNorm folding
    on the classic CNNs). Drop those listings and declare IR version 4, which means the same model."""
    if model.ir_version >= 4:
        return
    RemoveInitializersFromInputsPass()(model)
    model.ir_version = 4


def has_external_data(model: ir.Model) -> bool:
    """Whether any weight of the model (subgraphs included) is memory-mapped from an external data file."""
    return any(
        isinstance(value.const_value, ir.ExternalTensor)
        for graph in model.graphs()
        for value in graph.initializers.values()
    )


def to_proto(model: ir.Model) -> onnx.ModelProto:
    return ir.serde.serialize_model(model)


def model_to_bytes(model: ir.Model) -> bytes:
    """The serialized model, for handing a small in-memory model to a runtime without a file.

    Models whose weights live in external files must be given to runtimes by path instead: bytes carry no
    folder to resolve the files against.
    """
    if has_external_data(model):
        raise ValueError("a model with external data cannot be passed as bytes; save it and use its path")
    return to_proto(model).SerializeToString()


def save_model(
    model: ir.Model,
    path: str | os.PathLike,
    *,
    external_data: bool | None = None,
) -> list[Path]:
    """Write `model` to `path` atomically and return the files written.

    Weights go to `<name>.data` beside the model when `external_data` is True, or when it is None and the
    weights exceed EXTERNAL_DATA_THRESHOLD_BYTES. Everything is written into a temporary folder next to the
    destination and renamed into place only once complete, so a failure never leaves a half-written model.
    """
    path = Path(path)
    if external_data is None:
        external_data = initializer_bytes(model) > EXTERNAL_DATA_THRESHOLD_BYTES
    if not external_data:
        # Weights memory-mapped from the source's external data must be copied into the file itself: kept as
        # references, they would point at files that do not sit beside the new model.
        ir.external_data.load_to_model(model)
    data_name = f"{path.name}.data" if external_data else None
    path.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{path.name}.", dir=path.parent))
    try:
        try:
            ir.save(
                model, staging / path.name, external_data=data_name,
                max_in_flight_bytes=_WRITE_BUFFER_BYTES, max_workers=1,
            )
        except OSError as error:
            raise HwoptError(f"cannot write {path}: {error.strerror or error}") from None
        except Exception as error:  # onnx-ir's SerdeError: something in the graph cannot be serialized
            raise InvalidModelError(f"cannot write {path}: {_brief(error)}") from None
        written = []
        # The data file first: a model file that exists is then always complete.
        for name in ([data_name] if data_name else []) + [path.name]:
            os.replace(staging / name, path.parent / name)
            written.append(path.parent / name)
        return written
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def validate_model(model: ir.Model, *, source: str = "model") -> None:
    """Run the ONNX checker on an in-memory model; raises InvalidModelError naming `source`.

    The checker sees the graph with its big weights set aside as typed inputs (onnx-ir's `call_onnx_api`),
    so checking never copies the weights into a protobuf.
    """
    call_onnx_api(lambda proto: _check_proto(proto, source), model)


def _check_proto(proto: onnx.ModelProto, source: str) -> None:
    if not proto.graph.output:
        raise InvalidModelError(f"{source}: the graph has no outputs")
    newest = onnx.defs.onnx_opset_version()
    for opset in proto.opset_import:
        if opset.domain in ("", "ai.onnx") and opset.version > newest:
            raise InvalidModelError(
                f"{source}: imports ONNX opset {opset.version}; the newest this onnx knows is {newest}"
            )
    try:
        onnx.checker.check_model(_without_external_initializers(proto))
    except onnx.checker.ValidationError as error:
        raise InvalidModelError(f"{source}: invalid ONNX graph: {_brief(error)}") from None
    except Exception as error:  # the checker itself can fail on damaged protos
        raise InvalidModelError(f"{source}: invalid ONNX model ({_brief(error)})") from None


# Bits per element of the sub-byte types, packed several to a byte in raw_data.
_PACKED_BITS = {
    getattr(onnx.TensorProto, name): bits
    for name, bits in (("INT4", 4), ("UINT4", 4), ("FLOAT4E2M1", 4), ("INT2", 2), ("UINT2", 2))
    if hasattr(onnx.TensorProto, name)
}


def _check_tensors(proto: onnx.ModelProto, source: str) -> None:
    """Every weight and constant, subgraphs included, has a known type and as many bytes as its dims say.

    The ONNX checker does not look inside subgraphs' attribute tensors, and onnx-ir reads them lazily, so a
    damaged constant would otherwise surface later as a failure of whichever pass touched it first.
    """
    for tensor in _all_tensor_protos(proto):
        problem = _tensor_problem(tensor)
        if problem:
            raise InvalidModelError(f"{source}: tensor '{tensor.name or '(unnamed)'}' {problem}")


def _check_control_flow(proto: onnx.ModelProto, source: str) -> None:
    """If branches and Loop bodies agree with their node on the number of outputs.

    The basic checker does not compare them, and its full check (strict shape inference) rejects models that
    ONNX Runtime runs and costs memory on big ones, so this one check is done here.
    """
    graphs = [list(proto.graph.node), *(list(f.node) for f in proto.functions)]
    while graphs:
        for node in graphs.pop():
            branches = {a.name: a.g for a in node.attribute if a.HasField("g")}
            graphs.extend([list(g.node) for g in branches.values()])
            graphs.extend([list(g.node) for a in node.attribute for g in a.graphs])
            if node.op_type == "If" and node.domain in ("", "ai.onnx"):
                for name in ("then_branch", "else_branch"):
                    if name in branches and len(branches[name].output) != len(node.output):
                        raise InvalidModelError(
                            f"{source}: If node '{node.name}': {name} has {len(branches[name].output)} "
                            f"outputs, the node has {len(node.output)}"
                        )
            if node.op_type == "Loop" and node.domain in ("", "ai.onnx") and "body" in branches:
                carried = max(len(node.input) - 2, 0)
                body = branches["body"]
                if len(body.input) != carried + 2 or len(body.output) < carried + 1 or \
                        len(node.output) != len(body.output) - 1:
                    raise InvalidModelError(
                        f"{source}: Loop node '{node.name}': its body's inputs/outputs do not match the node's"
                    )


def _all_tensor_protos(proto: onnx.ModelProto) -> Iterator[onnx.TensorProto]:
    graphs = [proto.graph]
    nodes = [node for function in proto.functions for node in function.node]
    while graphs or nodes:
        if graphs:
            graph = graphs.pop()
            yield from graph.initializer
            yield from (sparse.values for sparse in graph.sparse_initializer)
            nodes.extend(graph.node)
            continue
        node = nodes.pop()
        for attribute in node.attribute:
            if attribute.HasField("t"):
                yield attribute.t
            yield from attribute.tensors
            if attribute.HasField("g"):
                graphs.append(attribute.g)
            graphs.extend(attribute.graphs)


def _tensor_problem(tensor: onnx.TensorProto) -> str | None:
    if tensor.data_type not in onnx.TensorProto.DataType.values() or tensor.data_type == onnx.TensorProto.UNDEFINED:
        return f"has an unknown data type ({tensor.data_type})"
    if any(d < 0 for d in tensor.dims):
        return f"has a negative dimension {list(tensor.dims)}"
    if tensor.data_location == onnx.TensorProto.EXTERNAL or not tensor.HasField("raw_data"):
        return None
    if tensor.data_type == onnx.TensorProto.STRING:
        return "is a string tensor with raw_data"
    elements = math.prod(tensor.dims)
    bits = _PACKED_BITS.get(tensor.data_type)
    if bits is not None:
        expected = (elements * bits + 7) // 8
    else:
        expected = elements * onnx.helper.tensor_dtype_to_np_dtype(tensor.data_type).itemsize
    if len(tensor.raw_data) != expected:
        return f"holds {len(tensor.raw_data)} bytes; its type and dims {list(tensor.dims)} need {expected}"
    return None


def _without_external_initializers(proto: onnx.ModelProto) -> onnx.ModelProto:
    """A copy the checker can read wherever the weights live.

    The checker resolves external data against the current directory, not the model's, so it rejects valid
    models loaded from elsewhere. Weights on disk are checked by `_check_external_data`; for the graph check
    they become typed graph inputs, which keeps every check of the graph's structure.
    """
    external = [t for t in proto.graph.initializer if t.data_location == onnx.TensorProto.EXTERNAL]
    if not external:
        return proto
    copy = onnx.ModelProto()
    copy.CopyFrom(proto)
    inline = [t for t in copy.graph.initializer if t.data_location != onnx.TensorProto.EXTERNAL]
    del copy.graph.initializer[:]
    copy.graph.initializer.extend(inline)
    declared = {value.name for value in copy.graph.input}
    copy.graph.input.extend(
        onnx.helper.make_tensor_value_info(t.name, t.data_type, list(t.dims))
        for t in external
        if t.name not in declared
    )
    return copy


def _check_external_data(model: ir.Model, base_dir: Path, source: str) -> None:
    """External weights must stay inside the model's folder and exist with the promised size."""
    for value in model.graph.initializers.values():
        tensor = value.const_value
        if not isinstance(tensor, ir.ExternalTensor):
            continue
        try:
            location = Path(tensor.location)
            resolved = (base_dir / location).resolve()
            inside = not location.is_absolute() and resolved.is_relative_to(base_dir.resolve())
            is_file = resolved.is_file()
        except (ValueError, OSError) as error:  # NUL bytes, names too long for the file system...
            raise InvalidModelError(
                f"{source}: initializer '{value.name}' has an invalid external data location ({error})"
            ) from None
        if not inside:
            raise InvalidModelError(
                f"{source}: initializer '{value.name}' points outside the model's folder ({location})"
            )
        if not is_file:
            raise ModelLoadError(
                f"{source}: external data file '{location}' of initializer '{value.name}' is missing"
            )
        end = (tensor.offset or 0) + (tensor.length or tensor.nbytes)
        if end > resolved.stat().st_size:
            raise ModelLoadError(
                f"{source}: external data file '{location}' is truncated "
                f"(initializer '{value.name}' needs {end} bytes)"
            )


def _brief(error: BaseException) -> str:
    """The first meaningful line of an exception message, so errors stay on one line."""
    for line in str(error).splitlines():
        line = line.strip()
        if line and not line.startswith(("==>", "Traceback")):
            return line[:300]
    return type(error).__name__
