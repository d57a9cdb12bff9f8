"""Byte-level damage to a model file: truncations, random garbage, one change to its protobuf structure.

None of these is invalid by construction (a cut or a changed byte may still leave a loadable model), so every
variant carries `oracle=<subject name>`. Weight payloads are never touched: a flipped bit there is still valid.
"""

from __future__ import annotations

import random
import re
from collections.abc import Iterator

from .variants import Subject, Variant
from .wire_format import Span, field_start, read_varint, structure_spans

# Fields whose change never makes a model invalid (documentation, node names, shape hints): not worth a try.
_HARMLESS = re.compile(r"doc_string|metadata_props|producer_|model_version|denotation|value_info|node\[\d+\]\.name$")


def truncations(subject: Subject, rng: random.Random) -> Iterator[Variant]:
    """The model cut short: at fixed landmarks (0 bytes, header only, inside the graph...), then at random."""
    data = subject.data
    spans = structure_spans(data)
    graph = field_start(spans, "graph")
    first_node = field_start(spans, "graph.node[0]")
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
            old, _ = read_varint(data, span.start)
            position = rng.randrange(span.start, span.end)
            low = rng.choice([b for b in range(128) if b != data[position] & 0x7F])
            mutated[position] = (data[position] & 0x80) | low  # the same varint length, another value
            new, _ = read_varint(bytes(mutated), span.start)
            what = f"length of {span.path} changed from {old} to {new}"
        elif kind == "varint":
            old, _ = read_varint(data, span.start)
            mutated[span.start] = rng.choice([b for b in range(256) if b != data[span.start]])
            try:
                new = f"{read_varint(bytes(mutated), span.start)[0]}"
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
