"""Broken variants of a real ONNX model, for testing that the CLI fails cleanly (tests/test_cli_robustness.py).

Each generator yields `Variant`s: the files to lay out in a fresh folder, the command line to run on them and the
exit codes allowed. Every variant is meant to be invalid:

- by construction where a rule of ONNX is broken on purpose (a node reads a tensor nobody produces, a required
  attribute is gone, weights are shorter than their dims say, external data points outside the model's folder);
- by the oracle otherwise: a random truncation or a byte changed in the protobuf structure may still leave a
  model that loads. Such variants carry `oracle=<subject name>`; the runner first tries them in ONNX Runtime
  and drops the ones it can load and run, so that only broken models are held against hwopt.

Byte-level corruption only touches the protobuf structure (tags, lengths, varints, names), never the weight
payloads (`raw_data` and friends): a weight with a flipped bit is still a valid model.

Argument templates use `{dir}` (the variant's folder, which holds its files) and `{out}` (an output folder that
does not exist yet, unless `existing_output` says otherwise).
"""

from __future__ import annotations

import base64
import gzip
import io
import json
import pickle
import random
import re
import struct
import sys
import tarfile
import zipfile
import zlib
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np
import onnx
from google.protobuf import json_format
from onnx import AttributeProto, ModelProto, TensorProto, helper, numpy_helper

MODEL = "model.onnx"
DATA = "model.onnx.data"
USAGE_EXIT = frozenset({2})
FAILURE_EXIT = frozenset({1, 2})


@dataclass(frozen=True)
class Variant:
    category: str
    description: str
    args: tuple[str, ...]
    """The command line after `optimize`, with `{dir}` and `{out}` still to fill in."""
    files: Mapping[str, bytes] = field(default_factory=dict)
    dirs: tuple[str, ...] = ()
    symlinks: Mapping[str, str] = field(default_factory=dict)
    fifos: tuple[str, ...] = ()
    existing_output: Mapping[str, bytes] | None = None
    """Files already in `{out}` before the run ({} for an empty folder; None: `{out}` does not exist)."""
    exit_codes: frozenset[int] = FAILURE_EXIT
    oracle: str | None = None
    """Not invalid by construction: the name of the subject whose inputs ONNX Runtime should try it with."""


@dataclass(frozen=True)
class Subject:
    """A real model to break, and how to run the CLI on it."""

    name: str
    data: bytes = field(repr=False)
    arg_sets: tuple[tuple[str, ...], ...]
    """Command lines (model first) rotated over the variants; each must succeed on the unbroken model."""
    extra_files: Mapping[str, bytes] = field(default_factory=dict, repr=False)
    oracle_feeds: Mapping[str, np.ndarray] = field(default_factory=dict, repr=False)
    _proto: list = field(default_factory=list, repr=False, compare=False)

    def proto(self) -> ModelProto:
        """A fresh copy of the parsed model, to mutate."""
        if not self._proto:
            self._proto.append(ModelProto.FromString(self.data))
        copy = ModelProto()
        copy.CopyFrom(self._proto[0])
        return copy

    def variant(self, category: str, description: str, index: int, model: bytes | None = None, **kw) -> Variant:
        """A variant whose model file is `model`, run with the index-th command line of the rotation."""
        files = dict(self.extra_files)
        if model is not None:
            files[MODEL] = model
        files.update(kw.pop("files", {}))
        args = kw.pop("args", self.arg_sets[index % len(self.arg_sets)])
        existing = {} if "{out}" in args and index % 5 == 4 else None  # now and then, an empty folder exists
        kw.setdefault("existing_output", existing)
        return Variant(f"{category} ({self.name})", description, tuple(args), files, **kw)


# ---------------------------------------------------------------------------------------------------------------
# The protobuf wire format, just enough to know which bytes are structure and which are weights.

_MESSAGES: dict[str, dict[int, tuple[str, str | None]]] = {
    "ModelProto": {1: ("ir_version", None), 2: ("producer_name", None), 3: ("producer_version", None),
                   4: ("domain", None), 5: ("model_version", None), 6: ("doc_string", None),
                   7: ("graph", "GraphProto"), 8: ("opset_import", "OperatorSetIdProto"),
                   14: ("metadata_props", "StringStringEntryProto"), 25: ("functions", "FunctionProto")},
    "GraphProto": {1: ("node", "NodeProto"), 2: ("name", None), 5: ("initializer", "TensorProto"),
                   10: ("doc_string", None), 11: ("input", "ValueInfoProto"), 12: ("output", "ValueInfoProto"),
                   13: ("value_info", "ValueInfoProto")},
    "NodeProto": {1: ("input", None), 2: ("output", None), 3: ("name", None), 4: ("op_type", None),
                  5: ("attribute", "AttributeProto"), 6: ("doc_string", None), 7: ("domain", None)},
    "AttributeProto": {1: ("name", None), 2: ("f", None), 3: ("i", None), 4: ("s", None),
                       5: ("t", "TensorProto"), 6: ("g", "GraphProto"), 7: ("floats", None), 8: ("ints", None),
                       9: ("strings", None), 10: ("tensors", "TensorProto"), 11: ("graphs", "GraphProto"),
                       13: ("doc_string", None), 20: ("type", None)},
    "TensorProto": {1: ("dims", None), 2: ("data_type", None), 4: ("float_data", None),
                    5: ("int32_data", None), 6: ("string_data", None), 7: ("int64_data", None),
                    8: ("name", None), 9: ("raw_data", None), 10: ("double_data", None),
                    11: ("uint64_data", None), 12: ("doc_string", None),
                    13: ("external_data", "StringStringEntryProto"), 14: ("data_location", None)},
    "ValueInfoProto": {1: ("name", None), 2: ("type", "TypeProto"), 3: ("doc_string", None)},
    "TypeProto": {1: ("tensor_type", "TypeProto.Tensor"), 6: ("denotation", None)},
    "TypeProto.Tensor": {1: ("elem_type", None), 2: ("shape", "TensorShapeProto")},
    "TensorShapeProto": {1: ("dim", "TensorShapeProto.Dimension")},
    "TensorShapeProto.Dimension": {1: ("dim_value", None), 2: ("dim_param", None), 3: ("denotation", None)},
    "OperatorSetIdProto": {1: ("domain", None), 2: ("version", None)},
    "StringStringEntryProto": {1: ("key", None), 2: ("value", None)},
    "FunctionProto": {1: ("name", None), 4: ("input", None), 5: ("output", None), 6: ("attribute", None),
                      7: ("node", "NodeProto"), 9: ("opset_import", "OperatorSetIdProto"), 10: ("domain", None)},
}
_WEIGHTS = {("TensorProto", number) for number in (4, 5, 6, 7, 9, 10, 11)}
_SINGULAR = {"graph", "name", "op_type", "domain", "type", "tensor_type", "shape", "elem_type", "data_type",
             "raw_data", "ir_version", "dim_value", "dim_param", "i", "f", "s", "t", "g", "key", "value",
             "version", "data_location", "doc_string", "producer_name", "producer_version", "model_version"}
# Fields whose change never makes a model invalid (documentation, node names, shape hints): not worth a try.
_HARMLESS = re.compile(r"doc_string|metadata_props|producer_|model_version|denotation|value_info|node\[\d+\]\.name$")


@dataclass(frozen=True)
class Span:
    start: int
    end: int
    kind: str
    """tag, length (of a length-delimited field), varint (a value), fixed (a 32/64-bit value), bytes (a string)."""
    path: str
    """Where in the model: e.g. graph.node[12].attribute[3].ints[1]."""


def _read_varint(data: bytes, pos: int) -> tuple[int, int]:
    value = shift = 0
    while True:
        byte = data[pos]
        pos += 1
        value |= (byte & 0x7F) << shift
        if not byte & 0x80:
            return value, pos
        shift += 7


def structure_spans(data: bytes, message: str = "ModelProto") -> list[Span]:
    """Every structural element of a serialized message (weights payloads left out), in file order."""
    spans: list[Span] = []
    _walk(data, 0, len(data), message, "", spans)
    return spans


def _walk(data: bytes, pos: int, end: int, message: str, path: str, spans: list[Span]) -> None:
    fields = _MESSAGES.get(message, {})
    seen: dict[int, int] = {}
    while pos < end:
        key, after_tag = _read_varint(data, pos)
        number, wire = key >> 3, key & 7
        name, submessage = fields.get(number, (f"field{number}", None))
        index = seen.get(number, 0)
        seen[number] = index + 1
        here = f"{path}.{name}" if name in _SINGULAR else f"{path}.{name}[{index}]"
        here = here.lstrip(".")
        spans.append(Span(pos, after_tag, "tag", here))
        if wire == 0:
            _, pos = _read_varint(data, after_tag)
            spans.append(Span(after_tag, pos, "varint", here))
        elif wire in (1, 5):
            pos = after_tag + (8 if wire == 1 else 4)
            spans.append(Span(after_tag, pos, "fixed", here))
        elif wire == 2:
            length, start = _read_varint(data, after_tag)
            spans.append(Span(after_tag, start, "length", here))
            pos = start + length
            if (message, number) in _WEIGHTS:
                continue  # a changed weight is still a valid model
            if submessage:
                _walk(data, start, pos, submessage, here, spans)
            elif length:
                spans.append(Span(start, pos, "bytes", here))
        else:
            raise ValueError(f"unexpected wire type {wire} at byte {pos} ({here})")


def _field_start(spans: Sequence[Span], path_prefix: str) -> Span:
    return next(s for s in spans if s.kind == "tag" and s.path.startswith(path_prefix))


# ---------------------------------------------------------------------------------------------------------------
# Byte-level damage: truncations, garbage, files that are no ONNX at all, corrupted structure.


def truncations(subject: Subject, rng: random.Random) -> Iterator[Variant]:
    """The model cut short: at fixed landmarks (0 bytes, header only, inside the graph...), then at random."""
    data = subject.data
    spans = structure_spans(data)
    graph = _field_start(spans, "graph")
    first_node = _field_start(spans, "graph.node[0]")
    last_node = [s for s in spans if s.kind == "tag" and s.path.startswith("graph.node[")][-1]
    weights = [s for s in spans if s.kind == "length" and s.path.endswith("raw_data")]
    landmarks = {
        0: "empty file (0 bytes)",
        1: "first byte only",
        2: "first 2 bytes",
        3: "first 3 bytes",
        8: "first 8 bytes",
        64: "first 64 bytes",
        graph.start: "header only: every byte before the graph field",
        graph.start + 1: "header and the graph's tag byte",
        first_node.start: "header and the graph's length prefix, no node",
        first_node.start + 5: "inside the first node",
        last_node.start: "before the last node",
        len(data) // 2: "half the file",
        len(data) - 1: "all but the last byte",
        len(data) - 2: "all but the last 2 bytes",
        len(data) - 100: "all but the last 100 bytes",
    }
    if weights:
        landmarks[weights[0].end + 10] = "inside the first weight's raw_data"
        landmarks[weights[len(weights) // 2].start] = "at a weight's length prefix"
        landmarks[weights[-1].end + 1] = "inside the last weight's raw_data"
    index = 0
    for offset, what in sorted(landmarks.items()):
        yield subject.variant("truncated", f"{what}: first {offset} of {len(data)} bytes", index,
                              data[:offset], oracle=subject.name)
        index += 1
    structural = [s for s in spans if s.kind != "bytes"]
    while True:
        if index % 2:
            offset = rng.randrange(1, len(data))
            what = "at a random offset"
        else:
            span = rng.choice(structural)
            offset = rng.randrange(span.start, span.end + 1)
            what = f"at a {span.kind} of {span.path}"
        yield subject.variant("truncated", f"{what}: first {offset} of {len(data)} bytes", index,
                              data[:offset], oracle=subject.name)
        index += 1


def garbage(subject: Subject, rng: random.Random) -> Iterator[Variant]:
    """Random bytes of many sizes, some dressed up with the first bytes of a real ONNX file."""
    header = subject.data[:16]
    fixed = [
        ("all zero bytes (4 KiB)", bytes(4096)),
        ("all 0xFF bytes (4 KiB)", b"\xff" * 4096),
        ("one zero byte", b"\x00"),
        ("one 0x08 byte (the ir_version tag, no value)", b"\x08"),
        ("the model's bytes reversed", subject.data[::-1]),
        ("the model with every byte XOR 0x5A", bytes(b ^ 0x5A for b in subject.data[:1 << 20])),
        ("the model's first 16 bytes repeated to 64 KiB", header * 4096),
        ("a varint that never ends", b"\x08" + b"\xff" * 64),
        ("a length prefix of 2^63", b"\x3a" + b"\xff" * 9 + b"\x7f"),
        ("the graph field's tag, then a length far beyond the file", b"\x08\x08\x3a\xff\xff\xff\x7f" + bytes(64)),
    ]
    index = 0
    for what, data in fixed:
        yield subject.variant("garbage", what, index, data, oracle=subject.name)
        index += 1
    sizes = (1, 2, 3, 7, 16, 100, 1000, 4096, 65536, 1 << 20, 5 << 20)
    while True:
        size = sizes[index % len(sizes)]
        data = rng.randbytes(size)
        what = f"{size} random bytes"
        if index % 3 == 0:
            data = header + data
            what = f"the model's first 16 bytes and {size} random bytes"
        elif index % 3 == 1:
            cut = rng.randrange(len(subject.data) // 2)
            data = subject.data[:cut] + data
            what = f"the model's first {cut} bytes, then {size} random bytes"
        yield subject.variant("garbage", what, index, data, oracle=subject.name)
        index += 1


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
        ("an .npz of arrays", _npz()),
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


def corrupted_structure(subject: Subject, rng: random.Random) -> Iterator[Variant]:
    """One change to the protobuf structure (a tag, a length, a value, a name), never to a weight's bytes."""
    data = subject.data
    spans = [s for s in structure_spans(data) if not _HARMLESS.search(s.path)]
    by_kind: dict[str, list[Span]] = {}
    for span in spans:
        by_kind.setdefault(span.kind, []).append(span)
    index = 0
    while True:
        kind = ("tag", "length", "varint", "bytes", "delete", "insert", "tag", "length")[index % 8]
        span = rng.choice(by_kind["tag" if kind in ("delete", "insert") else kind])
        mutated = bytearray(data)
        if kind == "tag":
            bit = rng.randrange(8)
            mutated[span.start] ^= 1 << bit
            what = f"bit {bit} of the tag of {span.path} flipped"
        elif kind == "length":
            old, _ = _read_varint(data, span.start)
            position = rng.randrange(span.start, span.end)
            low = rng.choice([b for b in range(128) if b != data[position] & 0x7F])
            mutated[position] = (data[position] & 0x80) | low  # the same varint length, another value
            new, _ = _read_varint(bytes(mutated), span.start)
            what = f"length of {span.path} changed from {old} to {new}"
        elif kind == "varint":
            old, _ = _read_varint(data, span.start)
            mutated[span.start] = rng.choice([b for b in range(256) if b != data[span.start]])
            try:
                new = f"{_read_varint(bytes(mutated), span.start)[0]}"
            except IndexError:
                new = "a varint that runs off the end"
            what = f"value of {span.path} changed from {old} to {new}"
        elif kind == "bytes":
            position = rng.randrange(span.start, span.end)
            mutated[position] = rng.choice([b for b in range(256) if b != data[position]])
            text = data[span.start:span.end].decode("utf-8", "replace")
            what = f"byte {position - span.start} of {span.path} ('{text[:60]}') changed"
        elif kind == "delete":
            count = rng.randint(1, 8)
            del mutated[span.start:span.start + count]
            what = f"{count} byte(s) deleted at the tag of {span.path}"
        else:
            count = rng.randint(1, 8)
            mutated[span.start:span.start] = rng.randbytes(count)
            what = f"{count} random byte(s) inserted before {span.path}"
        yield subject.variant("corrupted structure", f"{what} (byte {span.start})", index, bytes(mutated),
                              oracle=subject.name)
        index += 1


# ---------------------------------------------------------------------------------------------------------------
# Semantic damage, made with onnx's protobuf classes: the file parses, the model breaks a rule of ONNX.


Mutation = Callable[[ModelProto], str]
"""Breaks the model in place and says how."""


def semantic(subject: Subject) -> Iterator[Variant]:
    """Rules of ONNX broken on purpose in the main graph (each invalid by construction unless marked)."""
    for index, (mutation, proven) in enumerate(_semantic_mutations(subject.proto())):
        model = subject.proto()
        what = mutation(model)
        yield subject.variant("semantic", what, index, model.SerializeToString(),
                              oracle=None if proven else subject.name)


def _semantic_mutations(model: ModelProto) -> list[tuple[Mutation, bool]]:
    graph = model.graph
    produced = {o for n in graph.node for o in n.output}
    picks = _spread(range(len(graph.node)), 12)
    mutations: list[tuple[Mutation, bool]] = []

    def rename_input(k: int, slot: int) -> Mutation:
        def mutate(m: ModelProto) -> str:
            node = m.graph.node[k]
            old = node.input[slot]
            node.input[slot] = f"no_such_tensor_{k}"
            return f"node {k} ({node.op_type} '{node.name}') input {slot} '{old}' renamed to a missing tensor"
        return mutate

    for k in picks:
        slot = max(range(len(graph.node[k].input)), key=lambda s: graph.node[k].input[s] in produced)
        mutations.append((rename_input(k, slot), True))

    def set_op_type(k: int, op_type: str) -> Mutation:
        def mutate(m: ModelProto) -> str:
            node = m.graph.node[k]
            old, node.op_type = node.op_type, op_type
            return f"node {k} ({old} '{node.name}') op_type changed to unknown '{op_type}'"
        return mutate

    for k, op_type in zip(_spread(range(len(graph.node)), 6), ("NoSuchOp", "conv", "", "Conv2D", "Sigmoid ", "Mull")):
        if graph.node[k].op_type != op_type:
            mutations.append((set_op_type(k, op_type), True))

    def set_domain(k: int, domain: str) -> Mutation:
        def mutate(m: ModelProto) -> str:
            node = m.graph.node[k]
            node.domain = domain
            return f"node {k} ({node.op_type} '{node.name}') moved to domain '{domain}', not in opset_import"
        return mutate

    for k, domain in zip(_spread(range(len(graph.node)), 5),
                         ("com.example.missing", "ai.onnx.ml", "com.microsoft", "ai.onnx.preview.training", "x")):
        mutations.append((set_domain(k, domain), True))

    def wrong_attribute_type(op_type: str, attribute: str, make: Callable[[str], AttributeProto]) -> Mutation:
        def mutate(m: ModelProto) -> str:
            node = _first(m, op_type, attribute)
            old = _pop_attribute(node, attribute)
            new = make(attribute)
            node.attribute.append(new)
            type_name = AttributeProto.AttributeType.Name
            return f"{op_type} '{node.name}' attribute '{attribute}' is {type_name(new.type)}, not {type_name(old.type)}"
        return mutate

    for op_type, attribute, make in (
        ("Conv", "kernel_shape", lambda n: helper.make_attribute(n, 3.0)),
        ("Conv", "group", lambda n: helper.make_attribute(n, "one")),
        ("Conv", "strides", lambda n: helper.make_attribute(n, [1.5, 1.5])),
        ("Concat", "axis", lambda n: helper.make_attribute(n, [1, 2])),
        ("Split", "axis", lambda n: helper.make_attribute(n, numpy_helper.from_array(np.array(1)))),
        ("MaxPool", "kernel_shape", lambda n: helper.make_attribute(n, "5x5")),
        ("Softmax", "axis", lambda n: helper.make_attribute(n, 1.0)),
        ("Cast", "to", lambda n: helper.make_attribute(n, "float")),
    ):
        if _has(graph, op_type, attribute):
            mutations.append((wrong_attribute_type(op_type, attribute, make), True))

    def attribute_type_lies(m: ModelProto) -> str:
        node = _first(m, "Conv", "group")
        attribute = next(a for a in node.attribute if a.name == "group")
        attribute.type = AttributeProto.FLOAT
        return f"Conv '{node.name}' attribute 'group' says FLOAT but holds an INT"

    def attribute_without_type(m: ModelProto) -> str:
        node = _first(m, "Conv", "group")
        attribute = next(a for a in node.attribute if a.name == "group")
        attribute.type = AttributeProto.UNDEFINED
        return f"Conv '{node.name}' attribute 'group' has type UNDEFINED"

    if _has(graph, "Conv", "group"):
        mutations += [(attribute_type_lies, True), (attribute_without_type, True)]

    def drop_attribute(op_type: str, attribute: str, nth: int) -> Mutation:
        def mutate(m: ModelProto) -> str:
            node = [n for n in m.graph.node if n.op_type == op_type][nth]
            _pop_attribute(node, attribute)
            return f"{op_type} '{node.name}' lost its required attribute '{attribute}'"
        return mutate

    for op_type, attribute in (("Concat", "axis"), ("Cast", "to"), ("MaxPool", "kernel_shape")):
        count = sum(1 for n in graph.node if n.op_type == op_type and any(a.name == attribute for a in n.attribute))
        for nth in _spread(range(count), 3):
            mutations.append((drop_attribute(op_type, attribute, nth), True))

    def unknown_attribute(m: ModelProto) -> str:
        node = m.graph.node[0]
        node.attribute.append(helper.make_attribute("no_such_attribute", 1))
        return f"{node.op_type} '{node.name}' has an attribute its schema does not define"

    mutations.append((unknown_attribute, True))

    weights = [i for i, t in enumerate(graph.initializer) if t.raw_data and len(t.raw_data) >= 8]

    def raw_data_length(k: int, how: str) -> Mutation:
        def mutate(m: ModelProto) -> str:
            tensor = m.graph.initializer[k]
            old = len(tensor.raw_data)
            tensor.raw_data = {"one byte short": tensor.raw_data[:-1], "half": tensor.raw_data[: old // 2],
                               "4 bytes too long": tensor.raw_data + bytes(4), "empty": b"",
                               "doubled": tensor.raw_data * 2}[how]
            return (f"initializer '{tensor.name}' dims {list(tensor.dims)}: raw_data {how} "
                    f"({len(tensor.raw_data)} bytes, needs {old})")
        return mutate

    hows = ("one byte short", "half", "4 bytes too long", "empty", "doubled")
    for n, k in enumerate(_spread(weights, 10)):
        mutations.append((raw_data_length(k, hows[n % len(hows)]), True))

    def set_dims(k: int, dims: list[int]) -> Mutation:
        def mutate(m: ModelProto) -> str:
            tensor = m.graph.initializer[k]
            old = list(tensor.dims)
            del tensor.dims[:]
            tensor.dims.extend(dims)
            return f"initializer '{tensor.name}' dims {old} changed to {dims} (raw_data unchanged)"
        return mutate

    absurd = ([-1], [-4, 4], [1 << 40], [1 << 62, 1 << 62], [0], [2**31, 2**31, 8], [-(1 << 62)], [3, 0, 7])
    for k, dims in zip(_spread(weights, len(absurd)), absurd):
        mutations.append((set_dims(k, dims), True))

    def data_type(k: int, value: int) -> Mutation:
        def mutate(m: ModelProto) -> str:
            tensor = m.graph.initializer[k]
            tensor.data_type = value
            return f"initializer '{tensor.name}' data_type set to {value} (not a TensorProto.DataType)"
        return mutate

    for k, value in zip(_spread(weights, 2), (0, 999)):
        mutations.append((data_type(k, value), True))

    def input_dim(value: int) -> Mutation:
        def mutate(m: ModelProto) -> str:
            dim = m.graph.input[0].type.tensor_type.shape.dim[0]
            dim.dim_value = value
            return f"graph input '{m.graph.input[0].name}' dim 0 set to {value}"
        return mutate

    for value in (-5, 0, 1 << 40):
        mutations.append((input_dim(value), False))

    def input_elem_type(m: ModelProto) -> str:
        value = m.graph.input[0]
        value.type.tensor_type.elem_type = 0
        return f"graph input '{value.name}' has element type UNDEFINED"

    mutations.append((input_elem_type, True))

    def duplicate_output(k: int, j: int) -> Mutation:
        def mutate(m: ModelProto) -> str:
            first, second = m.graph.node[k], m.graph.node[j]
            old = second.output[0]
            second.output[0] = first.output[0]
            return (f"node {j} ({second.op_type}) output '{old}' renamed to '{first.output[0]}', "
                    f"already produced by node {k} ({first.op_type})")
        return mutate

    half = len(graph.node) // 2
    for k, j in zip(_spread(range(half), 4), _spread(range(half, len(graph.node)), 4)):
        mutations.append((duplicate_output(k, j), True))

    def output_shadows(what: str) -> Mutation:
        def mutate(m: ModelProto) -> str:
            node = m.graph.node[len(m.graph.node) // 2]
            name = m.graph.input[0].name if what == "input" else m.graph.initializer[0].name
            node.output[0] = name
            return f"node {node.op_type} '{node.name}' writes to the graph {what} '{name}'"
        return mutate

    mutations += [(output_shadows("input"), True)]
    if graph.initializer:
        mutations.append((output_shadows("initializer"), True))

    def duplicate_initializer(m: ModelProto) -> str:
        copy = m.graph.initializer.add()
        copy.CopyFrom(m.graph.initializer[1])
        return f"initializer '{copy.name}' defined twice"

    if len(graph.initializer) > 1:
        mutations.append((duplicate_initializer, True))

    def duplicate_graph_input(m: ModelProto) -> str:
        copy = m.graph.input.add()
        copy.CopyFrom(m.graph.input[0])
        return f"graph input '{copy.name}' declared twice"

    mutations.append((duplicate_graph_input, True))

    def duplicate_graph_output(m: ModelProto) -> str:
        copy = m.graph.output.add()
        copy.CopyFrom(m.graph.output[0])
        return f"graph output '{copy.name}' declared twice"

    mutations.append((duplicate_graph_output, False))

    def cycle(k: int, length: int) -> Mutation:
        def mutate(m: ModelProto) -> str:
            chain = _chain(m, k, length)
            head, tail = m.graph.node[chain[0]], m.graph.node[chain[-1]]
            slot = next(s for s, name in enumerate(head.input) if name in _produced(m) or s == 0)
            head.input[slot] = tail.output[0]
            ops = " -> ".join(m.graph.node[i].op_type for i in chain)
            return f"cycle: node {chain[0]} reads the output of node {chain[-1]} ({ops} -> back)"
        return mutate

    for k, length in ((0, 3), (len(graph.node) // 3, 2), (len(graph.node) // 2, 4), (len(graph.node) - 8, 1)):
        mutations.append((cycle(k, length), True))

    def reversed_order(m: ModelProto) -> str:
        nodes = list(m.graph.node)[::-1]
        del m.graph.node[:]
        m.graph.node.extend(nodes)
        return "nodes listed in reverse (not topologically sorted)"

    mutations.append((reversed_order, False))

    def ghost_output(how: str) -> Mutation:
        def mutate(m: ModelProto) -> str:
            if how == "renamed":
                old = m.graph.output[0].name
                m.graph.output[0].name = "nothing_produces_this"
                return f"graph output '{old}' renamed to 'nothing_produces_this'"
            extra = m.graph.output.add()
            extra.CopyFrom(m.graph.output[0])
            extra.name = "ghost_output"
            return "extra graph output 'ghost_output' that no node produces"
        return mutate

    mutations += [(ghost_output("renamed"), True), (ghost_output("added"), True)]

    def opset(version: int) -> Mutation:
        def mutate(m: ModelProto) -> str:
            entry = next(o for o in m.opset_import if o.domain in ("", "ai.onnx"))
            old, entry.version = entry.version, version
            return f"default opset {old} changed to {version}"
        return mutate

    for version in (0, -1, 10_000, 1 << 40, 2):
        mutations.append((opset(version), True))

    def no_opset(m: ModelProto) -> str:
        del m.opset_import[:]
        return "no opset_import at all"

    def opset_twice(m: ModelProto) -> str:
        entry = m.opset_import.add()
        entry.domain, entry.version = "", 11
        return "default domain imported twice (its own version and 11)"

    mutations += [(no_opset, True), (opset_twice, True)]

    def ir_version(version: int) -> Mutation:
        def mutate(m: ModelProto) -> str:
            old, m.ir_version = m.ir_version, version
            return f"ir_version {old} changed to {version}"
        return mutate

    for version in (0, -1, 2, 1_000_000, 1 << 62):
        mutations.append((ir_version(version), True))

    def empty_graph(how: str) -> Mutation:
        def mutate(m: ModelProto) -> str:
            if how in ("nodes", "nodes and weights", "everything"):
                del m.graph.node[:]
            if how in ("nodes and weights", "everything"):
                del m.graph.initializer[:]
                del m.graph.value_info[:]
            if how == "everything":
                del m.graph.input[:]
                del m.graph.output[:]
            if how == "outputs":
                del m.graph.output[:]
            if how == "no graph":
                m.ClearField("graph")
            return {"nodes": "graph emptied of nodes (outputs kept)",
                    "nodes and weights": "graph emptied of nodes and initializers (outputs kept)",
                    "everything": "empty graph: no node, input, output or initializer",
                    "outputs": "graph without outputs",
                    "no graph": "model without a graph"}[how]
        return mutate

    for how, proven in (("nodes", True), ("nodes and weights", True), ("everything", False),
                        ("outputs", False), ("no graph", True)):
        mutations.append((empty_graph(how), proven))

    def missing_required_input(m: ModelProto) -> str:
        node = _first(m, "Conv")
        del node.input[1:]
        return f"Conv '{node.name}' lost its weight input (only X left)"

    def too_many_inputs(m: ModelProto) -> str:
        node = _first(m, "Sigmoid")
        node.input.append(node.input[0])
        return f"Sigmoid '{node.name}' given 2 inputs"

    def no_outputs(m: ModelProto) -> str:
        node = m.graph.node[len(m.graph.node) // 4]
        del node.output[:]
        return f"node {node.op_type} '{node.name}' has no outputs"

    mutations += [(missing_required_input, True), (too_many_inputs, True), (no_outputs, True)]

    def recursive_function(m: ModelProto) -> str:
        function = helper.make_function("local", "Loop", ["x"], ["y"],
                                        [helper.make_node("Loop", ["x"], ["y"], domain="local")],
                                        [helper.make_opsetid("", 17), helper.make_opsetid("local", 1)])
        m.functions.append(function)
        m.opset_import.append(helper.make_opsetid("local", 1))
        node = m.graph.node[1]
        node.op_type, node.domain = "Loop", "local"
        del node.input[1:]
        return f"node {node.name} calls a model-local function that calls itself forever"

    mutations.append((recursive_function, True))
    return mutations


def silero_subgraphs(subject: Subject) -> Iterator[Variant]:
    """Broken `If` subgraphs (silero-vad keeps its whole network inside one), each under every command line."""
    index = 0
    for mutation in _subgraph_mutations():
        model = subject.proto()
        what = mutation(model)
        data = model.SerializeToString()
        for _ in subject.arg_sets:
            yield subject.variant("broken subgraph", what, index, data)
            index += 1


def _subgraph_mutations() -> list[Mutation]:
    def the_if(m: ModelProto) -> onnx.NodeProto:
        return next(n for n in m.graph.node if n.op_type == "If")

    def branch(m: ModelProto, name: str = "else_branch") -> onnx.GraphProto:
        return next(a for a in the_if(m).attribute if a.name == name).g

    def drop_branch(name: str) -> Mutation:
        def mutate(m: ModelProto) -> str:
            _pop_attribute(the_if(m), name)
            return f"If lost its required '{name}'"
        return mutate

    def branch_as_int(m: ModelProto) -> str:
        node = the_if(m)
        _pop_attribute(node, "then_branch")
        node.attribute.append(helper.make_attribute("then_branch", 1))
        return "If 'then_branch' is an INT, not a GRAPH"

    def rename_in_branch(k: int) -> Mutation:
        def mutate(m: ModelProto) -> str:
            graph = branch(m)
            produced = {o for n in graph.node for o in n.output}
            k_node = next(i for i in range(k, len(graph.node)) if any(x in produced for x in graph.node[i].input))
            node = graph.node[k_node]
            slot = next(s for s, x in enumerate(node.input) if x in produced)
            node.input[slot] = "no_such_tensor_in_branch"
            return f"else_branch node {k_node} ({node.op_type} '{node.name}') reads a missing tensor"
        return mutate

    def unknown_op_in_branch(m: ModelProto) -> str:
        node = next(n for n in branch(m).node if n.op_type == "Conv")
        node.op_type = "NoSuchOp"
        return f"else_branch node '{node.name}' has unknown op type 'NoSuchOp'"

    def drop_branch_output(m: ModelProto) -> str:
        graph = branch(m)
        name = graph.output[-1].name
        del graph.output[-1]
        return f"else_branch has 1 output, the If has 2 (dropped '{name}')"

    def ghost_branch_output(m: ModelProto) -> str:
        graph = branch(m, "then_branch")
        graph.output[0].name = "nothing_produces_this"
        return "then_branch output renamed to a tensor nothing produces"

    def outer_scope_missing(m: ModelProto) -> str:
        graph = branch(m)
        node = next(n for n in graph.node if n.input and n.op_type != "Constant")
        node.input[0] = "outer_scope_tensor_that_does_not_exist"
        return f"else_branch node '{node.name}' reads an outer-scope tensor that does not exist"

    def branch_cycle(m: ModelProto) -> str:
        graph = branch(m)
        chain = _chain_in(graph, next(i for i, n in enumerate(graph.node) if n.op_type == "Conv"), 2)
        head = graph.node[chain[0]]
        head.input[0] = graph.node[chain[-1]].output[0]
        return "cycle inside else_branch"

    def branch_duplicate_output(m: ModelProto) -> str:
        graph = branch(m)
        convs = [n for n in graph.node if n.op_type == "Conv"]
        convs[1].output[0] = convs[0].output[0]
        return "two Conv nodes in else_branch write the same tensor"

    def branch_bad_constant(m: ModelProto) -> str:
        graph = branch(m)
        node = next(n for n in graph.node if n.op_type == "Constant"
                    and n.attribute[0].t.raw_data and len(n.attribute[0].t.raw_data) > 8)
        tensor = node.attribute[0].t
        tensor.raw_data = tensor.raw_data[:-3]
        return f"else_branch Constant '{node.output[0]}' holds 3 bytes fewer than its dims need"

    def branch_constant_too_long(m: ModelProto) -> str:
        graph = branch(m)
        node = next(n for n in graph.node if n.op_type == "Constant" and len(n.attribute[0].t.raw_data) > 8)
        node.attribute[0].t.raw_data += bytes(4)
        return f"else_branch Constant '{node.output[0]}' holds 4 bytes more than its dims need"

    def branch_constant_bad_type(m: ModelProto) -> str:
        graph = branch(m)
        node = [n for n in graph.node if n.op_type == "Constant"][10]
        node.attribute[0].t.data_type = 84
        return f"else_branch Constant '{node.output[0]}' has data_type 84 (not a TensorProto.DataType)"

    def nested_if_broken(m: ModelProto) -> str:
        inner = next(n for n in branch(m).node if n.op_type == "If")
        _pop_attribute(inner, "else_branch")
        return f"the If nested in else_branch ('{inner.name}') lost its 'else_branch'"

    def subgraph_opset_domain(m: ModelProto) -> str:
        node = next(n for n in branch(m).node if n.op_type == "Relu")
        node.domain = "com.example.missing"
        return f"else_branch Relu '{node.name}' in a domain that is not imported"

    def if_condition_missing(m: ModelProto) -> str:
        node = the_if(m)
        del node.input[:]
        return "If has no condition input"

    return [drop_branch("then_branch"), drop_branch("else_branch"), branch_as_int, rename_in_branch(5),
            rename_in_branch(60), unknown_op_in_branch, drop_branch_output, ghost_branch_output,
            outer_scope_missing, branch_cycle, branch_duplicate_output, branch_bad_constant,
            branch_constant_too_long, branch_constant_bad_type, nested_if_broken,
            subgraph_opset_domain, if_condition_missing]


# ---------------------------------------------------------------------------------------------------------------
# External data: the weights in a file beside the model, and that file missing, short or out of bounds.


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


# ---------------------------------------------------------------------------------------------------------------
# Bad usage of a valid model: each must exit with 2.


def bad_usage(subject: Subject) -> Iterator[Variant]:
    model = subject.data
    given = "{dir}/" + MODEL
    first_input = subject.proto().graph.input[0].name
    shape = f"{first_input}=1x3x320x320"
    cases: list[tuple[str, tuple[str, ...], dict]] = [
        ("unknown target", (given, "-o", "{out}", "--target", "tpu-9000"), {}),
        ("empty target name", (given, "-o", "{out}", "--target", ""), {}),
        ("--shape without '='", (given, "-o", "{out}", "--shape", first_input), {}),
        ("--shape without dims", (given, "-o", "{out}", "--shape", f"{first_input}="), {}),
        ("--shape without a name", (given, "-o", "{out}", "--shape", "=1x3x320x320"), {}),
        ("--shape with a letter", (given, "-o", "{out}", "--shape", f"{first_input}=1x3xax320"), {}),
        ("--shape with a zero dim", (given, "-o", "{out}", "--shape", f"{first_input}=0x3x320x320"), {}),
        ("--shape with a negative dim", (given, "-o", "{out}", "--shape", f"{first_input}=-1x3x320x320"), {}),
        ("--shape with commas", (given, "-o", "{out}", "--shape", f"{first_input}=1,3,320,320"), {}),
        ("--shape for an unknown input", (given, "-o", "{out}", "--shape", "no_such_input=1x3x320x320"), {}),
        ("--shape twice for one input", (given, "-o", "{out}", "--shape", shape, "--shape", shape), {}),
        ("--shape of the wrong rank", (given, "-o", "{out}", "--shape", f"{first_input}=1x3x320"), {}),
        ("--shape that changes a static dim", (given, "-o", "{out}", "--shape", f"{first_input}=1x4x320x320"),
         {}),
        ("the model file does not exist", ("{dir}/missing.onnx", "-o", "{out}"), {}),
        ("the model path is a folder", ("{dir}/folder.onnx", "-o", "{out}"), {"dirs": ("folder.onnx",)}),
        ("the model path is empty", ("", "-o", "{out}"), {}),
        ("an existing model.onnx in the output folder, no --force", (given, "-o", "{out}"),
         {"existing_output": {"model.onnx": b"an earlier result\n"}}),
        ("an existing report.json in the output folder, no --force", (given, "-o", "{out}"),
         {"existing_output": {"report.json": b"{}\n"}}),
        ("the output folder is the input's folder, with --force", (given, "-o", "{dir}", "--force"), {}),
        ("the output path is the input model file", (given, "-o", given, "--force"), {}),
        ("the output path is an existing file", (given, "-o", "{dir}/a-file"), {"files": {"a-file": b"x"}}),
        ("opt level O7", (given, "-o", "{out}", "-O", "7"), {}),
        ("opt level 'fast'", (given, "-o", "{out}", "-O", "fast"), {}),
        ("--threads 0", (given, "-o", "{out}", "--threads", "0"), {}),
        ("--threads -2", (given, "-o", "{out}", "--threads", "-2"), {}),
        ("--min-cosine 2", (given, "-o", "{out}", "--min-cosine", "2"), {}),
        ("--min-cosine nan", (given, "-o", "{out}", "--min-cosine", "nan"), {}),
        ("an unknown option", (given, "-o", "{out}", "--frobnicate"), {}),
        ("no arguments", (), {}),
        ("two model paths", (given, given, "-o", "{out}"), {}),
        ("--inputs file missing", (given, "-o", "{out}", "--inputs", "{dir}/missing.npz"), {}),
        ("--inputs is a text file", (given, "-o", "{out}", "--inputs", "{dir}/inputs.txt"),
         {"files": {"inputs.txt": b"1 2 3\n"}}),
        ("--inputs lacks the model's input", (given, "-o", "{out}", "--inputs", "{dir}/other.npz"),
         {"files": {"other.npz": _npz()}}),
        ("--inputs is a folder", (given, "-o", "{out}", "--inputs", "{dir}"), {}),
        ("the model path is a named pipe", ("{dir}/pipe.onnx", "-o", "{out}"),
         {"fifos": ("pipe.onnx",), "exit_codes": FAILURE_EXIT}),
        ("the model path is /dev/null", ("/dev/null", "-o", "{out}"), {"exit_codes": FAILURE_EXIT}),
        ("`targets` with an unknown name", ("targets", "tpu-9000"), {}),
        ("`targets` with an unknown option", ("targets", "--frobnicate"), {}),
    ]
    for index, (what, args, extra) in enumerate(cases):
        files = dict(subject.extra_files)
        files[MODEL] = model
        files.update(extra.pop("files", {}))
        extra.setdefault("exit_codes", USAGE_EXIT)
        yield Variant(f"bad usage ({subject.name})", what, args, files, **extra)


# ---------------------------------------------------------------------------------------------------------------
# Helpers.


def _spread(items: Sequence | range, count: int) -> list:
    """`count` items spread evenly over `items`, first and last included."""
    items = list(items)
    if len(items) <= count:
        return items
    step = (len(items) - 1) / (count - 1)
    return [items[round(i * step)] for i in range(count)]


def _first(model: ModelProto, op_type: str, attribute: str | None = None) -> onnx.NodeProto:
    return next(n for n in model.graph.node
                if n.op_type == op_type and (attribute is None or any(a.name == attribute for a in n.attribute)))


def _has(graph: onnx.GraphProto, op_type: str, attribute: str) -> bool:
    return any(n.op_type == op_type and any(a.name == attribute for a in n.attribute) for n in graph.node)


def _pop_attribute(node: onnx.NodeProto, name: str) -> AttributeProto:
    index = next(i for i, a in enumerate(node.attribute) if a.name == name)
    attribute = AttributeProto()
    attribute.CopyFrom(node.attribute[index])
    del node.attribute[index]
    return attribute


def _produced(model: ModelProto) -> set[str]:
    return {o for n in model.graph.node for o in n.output}


def _chain(model: ModelProto, start: int, length: int) -> list[int]:
    return _chain_in(model.graph, start, length)


def _chain_in(graph: onnx.GraphProto, start: int, length: int) -> list[int]:
    """Node indices start, c1, ..., each reading the previous one's output: a path to close into a cycle."""
    chain = [start]
    for _ in range(length):
        outputs = set(graph.node[chain[-1]].output)
        chain.append(next(i for i in range(chain[-1] + 1, len(graph.node))
                          if outputs & set(graph.node[i].input)))
    return chain


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


def _npz() -> bytes:
    buffer = io.BytesIO()
    np.savez(buffer, x=np.zeros((1, 4), np.float32))
    return buffer.getvalue()


def _read_head(path: str, size: int) -> bytes:
    with open(path, "rb") as file:
        return file.read(size)


def describe(variant: Variant) -> str:
    return f"[{variant.category}] {variant.description}"


def as_json(variant: Variant) -> str:
    """A short record of a variant for reports (its files by size, not content)."""
    return json.dumps({"category": variant.category, "description": variant.description,
                       "args": list(variant.args), "files": {k: len(v) for k, v in variant.files.items()}})

