"""Which nodes a quantization pass may touch (exclusions by node name or op type, as globs), and how the
precision tables name them."""

from __future__ import annotations

import fnmatch
from collections.abc import Sequence

import onnx_ir as ir


def is_excluded(node: ir.Node, exclude: Sequence[str]) -> bool:
    """True when a pattern in `exclude` matches the node's name or op type (`fnmatch` globs: "/head/*",
    "Softmax", "*attention*")."""
    name = node.name or ""
    return any(fnmatch.fnmatchcase(name, pattern) or fnmatch.fnmatchcase(node.op_type, pattern)
               for pattern in exclude)


def label_of(node: ir.Node) -> str:
    """How the precision tables name a node: its name, else its first output, else its op type."""
    return node.name or (node.outputs[0].name if node.outputs else None) or node.op_type
