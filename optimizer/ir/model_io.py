"""Load and save models: clear errors for bad files, validation, atomic writes, external data for big models.

Weights stored as external data stay on disk: onnx-ir memory-maps them, so a model over 2 GB loads and saves
without reading all of its weights into memory at once.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

import onnx
import onnx_ir as ir

from optimizer.errors import InvalidModelError, ModelLoadError, UsageError
from optimizer.ir.graph_info import initializer_bytes

# Protobuf cannot serialize a message over 2 GiB; above this many bytes of weights, save them beside the model.
EXTERNAL_DATA_THRESHOLD_BYTES = 1 << 30
# How much weight data may be in memory at once while writing external data; bounds peak memory on huge models.
_WRITE_BUFFER_BYTES = 256 << 20


def load_model(path: str | os.PathLike, *, check: bool = True) -> ir.Model:
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
    return from_proto(proto, base_dir=path.parent, source=str(path), check=check)


def from_proto(
    proto: onnx.ModelProto,
    *,
    base_dir: str | os.PathLike | None = None,
    source: str = "model",
    check: bool = True,
) -> ir.Model:
    """Turn a ModelProto into an onnx-ir model; `base_dir` is where its external data files live."""
    if proto.ir_version <= 0 or not proto.HasField("graph"):
        raise ModelLoadError(f"{source}: not an ONNX model (no IR version or no graph)")
    if check:
        _check_proto(proto, source)
    try:
        model = ir.serde.deserialize_model(proto)
    except Exception as error:
        raise InvalidModelError(f"{source}: cannot be read as an ONNX graph ({_brief(error)})") from None
    if base_dir is not None:
        ir.external_data.set_base_dir(model.graph, base_dir)
        _check_external_data(model, Path(base_dir), source)
    return model


def to_proto(model: ir.Model) -> onnx.ModelProto:
    return ir.serde.serialize_model(model)


def model_to_bytes(model: ir.Model) -> bytes:
    """The serialized model, for handing a small in-memory model to a runtime without a file.

    Models whose weights live in external files must be given to runtimes by path instead: bytes carry no
    folder to resolve the files against.
    """
    if any(isinstance(v.const_value, ir.ExternalTensor) for v in model.graph.initializers.values()):
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
    data_name = f"{path.name}.data" if external_data else None
    path.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{path.name}.", dir=path.parent))
    try:
        ir.save(
            model, staging / path.name, external_data=data_name, max_in_flight_bytes=_WRITE_BUFFER_BYTES, max_workers=1
        )
        written = []
        # The data file first: a model file that exists is then always complete.
        for name in ([data_name] if data_name else []) + [path.name]:
            os.replace(staging / name, path.parent / name)
            written.append(path.parent / name)
        return written
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def validate_model(model: ir.Model, *, source: str = "model") -> None:
    """Run the ONNX checker on an in-memory model; raises InvalidModelError naming `source`."""
    _check_proto(to_proto(model), source)


def _check_proto(proto: onnx.ModelProto, source: str) -> None:
    try:
        onnx.checker.check_model(_without_external_initializers(proto))
    except onnx.checker.ValidationError as error:
        raise InvalidModelError(f"{source}: invalid ONNX graph: {_brief(error)}") from None
    except Exception as error:  # the checker itself can fail on damaged protos
        raise InvalidModelError(f"{source}: invalid ONNX model ({_brief(error)})") from None


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
        location = Path(tensor.location)
        resolved = (base_dir / location).resolve()
        if location.is_absolute() or not resolved.is_relative_to(base_dir.resolve()):
            raise InvalidModelError(
                f"{source}: initializer '{value.name}' points outside the model's folder ({location})"
            )
        if not resolved.is_file():
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
