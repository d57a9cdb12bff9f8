"""Read-only helpers over an onnx-ir model: node iteration into subgraphs, op counts, input specs, sizes."""

from __future__ import annotations

import collections
from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np
import onnx_ir as ir

from optimizer.errors import InvalidModelError


def is_standard_op(node: ir.Node) -> bool:
    """Whether the node is an operator of the default ONNX domain (written "" or "ai.onnx")."""
    return node.domain in ("", "ai.onnx")


def all_nodes(model: ir.Model) -> Iterator[ir.Node]:
    """Every node of the main graph, its subgraphs (If/Loop/Scan bodies) and the model's functions."""
    yield from ir.traversal.RecursiveGraphIterator(model.graph)
    for function in model.functions.values():
        yield from ir.traversal.RecursiveGraphIterator(function)


def count_nodes(model: ir.Model) -> int:
    return sum(1 for _ in all_nodes(model))


def op_histogram(model: ir.Model) -> dict[str, int]:
    """Node count per op type (custom domains spelled `domain::Op`), most frequent first."""
    counts = collections.Counter(
        node.op_type if is_standard_op(node) else f"{node.domain}::{node.op_type}"
        for node in all_nodes(model)
    )
    return dict(counts.most_common())


def initializer_bytes(model: ir.Model) -> int:
    """Bytes of weights in the main graph and its subgraphs, without reading external data."""
    return sum(
        value.const_value.nbytes
        for graph in model.graphs()
        for value in graph.initializers.values()
        if value.const_value is not None
    )


@dataclass(frozen=True)
class InputSpec:
    """What a graph input expects: name, NumPy dtype and shape (ints, or strings / None for dynamic dims)."""

    name: str
    dtype: np.dtype
    shape: tuple[int | str | None, ...] | None

    def __str__(self) -> str:
        dims = "?" if self.shape is None else "x".join(str(d if d is not None else "?") for d in self.shape)
        return f"{self.name}: {self.dtype} [{dims}]"


def input_specs(model: ir.Model) -> list[InputSpec]:
    """The model's real inputs (graph inputs that are not also initializers)."""
    specs = []
    for value in model.graph.inputs:
        if value.name in model.graph.initializers:
            continue
        specs.append(InputSpec(value.name, _numpy_dtype(value), _dims(value.shape)))
    return specs


def _numpy_dtype(value: ir.Value) -> np.dtype:
    if value.dtype is None or value.dtype == ir.DataType.UNDEFINED:
        raise InvalidModelError(f"graph input '{value.name}' has no element type")
    try:
        return value.dtype.numpy()
    except TypeError:
        raise InvalidModelError(
            f"graph input '{value.name}' has type {value.dtype.name}, which hwopt cannot feed"
        ) from None


def _dims(shape: ir.Shape | None) -> tuple[int | str | None, ...] | None:
    if shape is None:
        return None
    dims: list[int | str | None] = []
    for dim in shape:
        if isinstance(dim, int):
            dims.append(dim)
        else:
            dims.append(dim.value)  # SymbolicDim: a name, or None when anonymous
    return tuple(dims)



def all_names(model: ir.Model) -> set[str]:
    """Every value and node name in the model, subgraphs included, for passes that add nodes with fresh names."""
    names: set[str] = set()
    for graph in model.graphs():
        names.update(value.name for value in graph.inputs if value.name)
        names.update(graph.initializers)
        for node in graph:
            if node.name:
                names.add(node.name)
            names.update(value.name for value in node.outputs if value.name)
    return names


def unique_name(taken: set[str], base: str) -> str:
    """`base`, or `base` with a counter when `taken` has it; the name returned is added to `taken`."""
    name, suffix = base, 1
    while name in taken:
        name = f"{base}_{suffix}"
        suffix += 1
    taken.add(name)
    return name
