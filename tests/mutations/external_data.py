"""The weights in a file beside the model, and that file missing, short, or pointed outside the model's folder."""

from __future__ import annotations

from collections.abc import Iterator, Mapping

from onnx import ModelProto, TensorProto

from .variants import DATA, Subject, Variant


def with_external_data(data: bytes, location: str = DATA, threshold: int = 1024) -> tuple[bytes, bytes]:
    """The model with every initializer of `threshold` bytes or more moved to `location`: (model, data)."""
    model = ModelProto.FromString(data)
    blob = bytearray()
    for tensor in model.graph.initializer:
        if len(tensor.raw_data) < threshold:
            continue
        offset = len(blob)
        blob += tensor.raw_data
        blob += bytes(-len(blob) % 64)
        _point_to(tensor, location, offset, len(tensor.raw_data))
    return model.SerializeToString(), bytes(blob)


def _point_to(tensor: TensorProto, location: str, offset: int | str, length: int | str) -> None:
    tensor.ClearField("raw_data")
    tensor.data_location = TensorProto.EXTERNAL
    del tensor.external_data[:]
    for key, value in (("location", location), ("offset", offset), ("length", length)):
        entry = tensor.external_data.add()
        entry.key, entry.value = key, str(value)


def external_data(subject: Subject) -> Iterator[Variant]:
    """The external weights file missing, truncated, or pointed outside the model's folder."""
    model_bytes, blob = with_external_data(subject.data)
    model = ModelProto.FromString(model_bytes)
    external = [t for t in model.graph.initializer if t.data_location == TensorProto.EXTERNAL]
    last = max(external, key=lambda t: int(_entry(t, "offset")))
    last_end = int(_entry(last, "offset")) + int(_entry(last, "length"))
    index = 0

    def emit(what: str, model_data: bytes, files: Mapping[str, bytes] | None = None, **kw) -> Variant:
        nonlocal index
        index += 1
        return subject.variant("external data", what, index - 1, model_data,
                               files={DATA: blob} if files is None else files, **kw)

    def relocated(location: str, which: str = "first") -> bytes:
        m = ModelProto.FromString(model_bytes)
        tensor = next(t for t in m.graph.initializer if t.data_location == TensorProto.EXTERNAL)
        if which == "all":
            for t in m.graph.initializer:
                if t.data_location == TensorProto.EXTERNAL:
                    _set_entry(t, "location", location)
        else:
            _set_entry(tensor, "location", location)
        return m.SerializeToString()

    def entry_changed(key: str, value: str | None) -> bytes:
        m = ModelProto.FromString(model_bytes)
        tensor = next(t for t in m.graph.initializer if t.data_location == TensorProto.EXTERNAL)
        _set_entry(tensor, key, value)
        return m.SerializeToString()

    yield emit(f"the weights file {DATA} is missing", model_bytes, files={})
    for size in (0, 1, 100, len(blob) // 3, len(blob) // 2, last_end - 1, last_end - 4096):
        yield emit(f"the weights file truncated to {size} of {len(blob)} bytes", model_bytes,
                   files={DATA: blob[:size]})
    for location in ("../../etc/passwd", "/etc/passwd", "../" + DATA, "/proc/self/environ", "sub/../../x.bin",
                     "~/.bashrc", "file:///etc/passwd", "C:\\weights\\model.onnx.data", "nonexistent.bin",
                     "weights\x00.bin", "a" * 300, ""):
        yield emit(f"an initializer's location is {location[:60]!r}", relocated(location))
    yield emit("every initializer's location is '../../etc/passwd'", relocated("../../etc/passwd", "all"))
    yield emit("the location is a folder", relocated("weights"), files={DATA: blob}, dirs=("weights",))
    yield emit("the location is a symlink to /etc/passwd", relocated("link.bin"),
               symlinks={"link.bin": "/etc/passwd"})
    for key, value in (("offset", str(len(blob) + 64)), ("offset", "-64"), ("offset", "abc"),
                       ("length", str(len(blob) * 2)), ("length", "-1"), ("length", "1e3"),
                       ("offset", str(1 << 62)), ("location", None)):
        shown = "removed" if value is None else f"set to {value!r}"
        yield emit(f"the first initializer's external '{key}' {shown}", entry_changed(key, value))

    def no_entries(m: ModelProto) -> None:
        del next(t for t in m.graph.initializer if t.data_location == TensorProto.EXTERNAL).external_data[:]

    m = ModelProto.FromString(model_bytes)
    no_entries(m)
    yield emit("an initializer marked EXTERNAL has no external_data entries", m.SerializeToString())


def _entry(tensor: TensorProto, key: str) -> str:
    return next(e.value for e in tensor.external_data if e.key == key)


def _set_entry(tensor: TensorProto, key: str, value: str | None) -> None:
    kept = [(e.key, e.value) for e in tensor.external_data if e.key != key]
    del tensor.external_data[:]
    for k, v in kept + ([(key, value)] if value is not None else []):
        entry = tensor.external_data.add()
        entry.key, entry.value = k, v
