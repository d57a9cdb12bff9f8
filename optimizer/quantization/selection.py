"""Which nodes a quantization pass may touch: exclusions by node name or op type, as globs."""

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
