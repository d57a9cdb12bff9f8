"""The protobuf wire format, just enough to know which bytes of a model are structure and which are weights."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

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


@dataclass(frozen=True)
class Span:
    start: int
    end: int
    kind: str
    """tag, length (of a length-delimited field), varint (a value), fixed (a 32/64-bit value), bytes (a string)."""
    path: str
    """Where in the model: e.g. graph.node[12].attribute[3].ints[1]."""


def read_varint(data: bytes, pos: int) -> tuple[int, int]:
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
        key, after_tag = read_varint(data, pos)
        number, wire = key >> 3, key & 7
        name, submessage = fields.get(number, (f"field{number}", None))
        index = seen.get(number, 0)
        seen[number] = index + 1
        here = f"{path}.{name}" if name in _SINGULAR else f"{path}.{name}[{index}]"
        here = here.lstrip(".")
        spans.append(Span(pos, after_tag, "tag", here))
        if wire == 0:
            _, pos = read_varint(data, after_tag)
            spans.append(Span(after_tag, pos, "varint", here))
        elif wire in (1, 5):
            pos = after_tag + (8 if wire == 1 else 4)
            spans.append(Span(after_tag, pos, "fixed", here))
        elif wire == 2:
            length, start = read_varint(data, after_tag)
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


def field_start(spans: Sequence[Span], path_prefix: str) -> Span:
    return next(s for s in spans if s.kind == "tag" and s.path.startswith(path_prefix))
