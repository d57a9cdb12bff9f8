"""Files a user might pass instead of an ONNX model: text, images, archives, pickles, parts of a model."""

from __future__ import annotations

import base64
import gzip
import io
import pickle
import struct
import sys
import tarfile
import zipfile
import zlib
from collections.abc import Iterator, Mapping

import numpy as np
import onnx
from google.protobuf import json_format
from onnx import ModelProto

from .variants import MODEL, Subject, Variant


def not_onnx(subject: Subject) -> Iterator[Variant]:
    """Files a user might pass by mistake: text, images, archives (one of them holding the model), pickles."""
    proto = subject.proto()
    graph_only = proto.graph.SerializeToString()
    first_weight = proto.graph.initializer[0].SerializeToString() if proto.graph.initializer else b"\x08\x01"
    files = [
        ("plain text", b"hello, this is not a model\n"),
        ("UTF-16 text with a BOM", "not a model\n".encode("utf-16")),
        ("an empty JSON object", b"{}"),
        ("the model as protobuf JSON", json_format.MessageToJson(_without_weights(proto)).encode()),
        ("the model in ONNX text syntax", onnx.printer.to_text(_without_weights(proto)).encode()),
        ("a Python script", b"import torch\nmodel = torch.load('model.pt')\n"),
        ("an HTML error page", b"<!DOCTYPE html><html><body><h1>404 Not Found</h1></body></html>\n"),
        ("a Git LFS pointer instead of the model", b"version https://git-lfs.github.com/spec/v1\n"
         b"oid sha256:" + b"0" * 64 + b"\nsize 12345678\n"),
        ("a PNG signature only", b"\x89PNG\r\n\x1a\n"),
        ("a small PNG image", _png(8, 8)),
        ("a JPEG header", b"\xff\xd8\xff\xe0\x00\x10JFIF\x00\x01\x01\x00\x00\x01\x00\x01\x00\x00" + bytes(64)),
        ("a PDF header", b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n1 0 obj\n<<>>\nendobj\n"),
        ("a zip archive holding the model", _zip({MODEL: subject.data})),
        ("an empty zip archive", _zip({})),
        ("the model gzip-compressed", gzip.compress(subject.data, compresslevel=1)),
        ("a tar archive holding the model", _tar({MODEL: subject.data})),
        ("an .npz of arrays", npz_bytes()),
        ("a pickled dict", pickle.dumps({"weights": [1.0, 2.0]})),
        ("the start of an ELF executable", _read_head(sys.executable, 8192)),
        ("the model base64-encoded", base64.b64encode(subject.data[:1 << 20])),
        ("a GraphProto on its own, not in a ModelProto", graph_only),
        ("a TensorProto on its own (a weight)", first_weight),
        ("a PyTorch checkpoint (zip with data.pkl)", _zip({"archive/data.pkl": pickle.dumps({"a": 1}),
                                                           "archive/version": b"3\n"})),
    ]
    for index, (what, data) in enumerate(files):
        yield subject.variant("not ONNX", what, index, data, oracle=subject.name)


def _without_weights(model: ModelProto) -> ModelProto:
    copy = ModelProto()
    copy.CopyFrom(model)
    for tensor in copy.graph.initializer:
        tensor.ClearField("raw_data")
    return copy


def _png(width: int, height: int) -> bytes:
    def chunk(kind: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))

    rows = b"".join(b"\x00" + bytes(range(width * 3)) for _ in range(height))
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(rows)) + chunk(b"IEND", b"")


def _zip(members: Mapping[str, bytes]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_STORED) as archive:
        for name, data in members.items():
            archive.writestr(name, data)
    return buffer.getvalue()


def _tar(members: Mapping[str, bytes]) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as archive:
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            archive.addfile(info, io.BytesIO(data))
    return buffer.getvalue()


def npz_bytes() -> bytes:
    """A valid .npz holding one array, `x`: an input no model here has."""
    buffer = io.BytesIO()
    np.savez(buffer, x=np.zeros((1, 4), np.float32))
    return buffer.getvalue()


def _read_head(path: str, size: int) -> bytes:
    with open(path, "rb") as file:
        return file.read(size)

