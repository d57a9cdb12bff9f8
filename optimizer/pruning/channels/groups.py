"""Which channels must be removed together: a union-find over (tensor, channel) slots of the main graph.

Removing output channel k of a Conv only keeps the graph valid if every tensor that carries that channel loses
it too: the activation after it, the other operand of a residual Add, the matching range of a Concat output,
the BatchNormalization parameters in between, and the input columns of every Conv that reads it. Each channel
of each tensor (axis 1, NCHW; the feature axis of 2-D Gemm/MatMul inputs, which is also axis 1) is a slot; ops
that keep channel indices tie slots together, ops that own channels (Conv rows, Gemm/MatMul output features)
mark them as producers, and anything that reads channels in a way we cannot rewrite pins them. A class of tied
slots (a *unit*) can be removed only if nothing in it is pinned and something in it produces it.

Units are gathered into groups by the set of producers they hold: all the output channels of one Conv form one
group, a residual Add of two Convs one group, and a Concat of two Convs keeps two groups (its output carries
both). Everything here is keyed by value name, so the analysis also applies to a clone of the model.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field

import numpy as np
import onnx_ir as ir

from optimizer.pruning.channels.constants import attribute_int, constant_array
from optimizer.pruning.channels.slots import Slots, channel_count

# Ops that keep the channel axis as it is: output channel k depends only on input channel k.
PASS_THROUGH = frozenset({
    "Relu", "LeakyRelu", "Sigmoid", "Tanh", "Elu", "Selu", "Celu", "HardSigmoid", "HardSwish", "Softplus",
    "Softsign", "Gelu", "Mish", "Erf", "Clip", "Identity", "Neg", "Abs", "Exp", "Log", "Sqrt", "Reciprocal",
    "Floor", "Ceil", "Round", "Sign", "Cast", "Dropout", "MaxPool", "AveragePool", "GlobalAveragePool",
    "GlobalMaxPool", "LpPool", "GlobalLpPool", "Resize", "Upsample", "BatchNormalization",
    "InstanceNormalization",
})
# Elementwise ops with broadcasting: every operand carrying channels is tied to the output's channels.
ELEMENTWISE = frozenset({"Add", "Sub", "Mul", "Div", "Max", "Min", "Sum", "Mean", "Pow", "PRelu", "Where"})
# Inputs of a pass-through op other than the data that are per-channel parameters (sliced with the channels).
PER_CHANNEL_INPUTS = {"BatchNormalization": (1, 2, 3, 4), "InstanceNormalization": (1, 2)}


@dataclass
class ChannelGroup:
    index: int
    units: np.ndarray
    """The union-find roots of the group's channels, in the order of its first producer's rows."""
    producers: list[str]
    """Names of the nodes (or their first output) that own these channels: their weight rows go with them."""
    pinned: str = ""
    """Why the group cannot be pruned ('' when it can)."""

    @property
    def size(self) -> int:
        return len(self.units)


@dataclass
class ChannelGraph:
    slots: dict[str, np.ndarray]
    """Value name -> the root (unit id) of each of its channels."""
    groups: list[ChannelGroup]
    producer_outputs: dict[str, str] = field(default_factory=dict)
    """Producer node name -> the name of its output value."""

    def keep_masks(self, removed: np.ndarray) -> dict[str, np.ndarray]:
        """Value name -> boolean keep mask over its channels, for the values that lose any."""
        masks = {}
        for name, roots in self.slots.items():
            keep = ~np.isin(roots, removed)
            if not keep.all():
                masks[name] = keep
        return masks

    @property
    def prunable(self) -> list[ChannelGroup]:
        return [group for group in self.groups if not group.pinned]


def node_name(node: ir.Node) -> str:
    return node.name or (node.outputs[0].name if node.outputs else "")


def analyze(model: ir.Model) -> ChannelGraph:
    """The channel groups of the main graph (shapes must be inferred: channel counts come from them)."""
    graph = model.graph
    slots = Slots()
    producer_outputs: dict[str, str] = {}
    for value in graph.inputs:
        slots.pin(value, "graph input")
    for node in graph:
        _visit(node, slots, producer_outputs)
    for value in graph.outputs:
        slots.pin(value, "graph output")
    for node in graph:
        for value in node.outputs:
            if any(use.graph is not graph for use, _ in value.uses()):
                slots.pin(value, "read inside a subgraph")
    return _build(slots, producer_outputs)


def _visit(node: ir.Node, slots: Slots, producers: dict[str, str]) -> None:
    op = node.op_type if node.domain in ("", "ai.onnx") else f"{node.domain}::{node.op_type}"
    handled = False
    if op == "Conv":
        handled = _conv(node, slots, producers)
    elif op in ("Gemm", "MatMul"):
        handled = _dense(node, slots, producers)
    elif op in PASS_THROUGH:
        handled = _pass_through(node, slots)
    elif op in ELEMENTWISE:
        handled = _elementwise(node, slots)
    elif op == "Concat":
        handled = _concat(node, slots)
    elif op == "Split":
        handled = _split(node, slots)
    if not handled:
        reason = f"read by {op} '{node_name(node)}', which cannot be rewritten"
        for value in (*node.inputs, *node.outputs):
            slots.pin(value, reason)


def _conv(node: ir.Node, slots: Slots, producers: dict[str, str]) -> bool:
    weight = node.inputs[1] if len(node.inputs) > 1 else None
    bias = node.inputs[2] if len(node.inputs) > 2 else None
    if weight is None or weight.const_value is None or (bias is not None and bias.const_value is None):
        return False
    rows, columns = weight.const_value.shape[:2]
    x, y = node.inputs[0], node.outputs[0]
    groups, inputs = attribute_int(node, "group", 1), channel_count(x)
    if groups == 1 and inputs == columns:
        slots.register(x)  # a consumer: its input channels become weight columns, which shrink freely
    elif groups == rows == inputs and columns == 1:
        slots.register(y, rows)
        slots.tie(x, y)  # depthwise: channel k in is channel k out, and the group count follows
    else:
        return False
    slots.own(y, node_name(node), rows)
    producers[node_name(node)] = y.name
    return True


def _dense(node: ir.Node, slots: Slots, producers: dict[str, str]) -> bool:
    x, y = node.inputs[0], node.outputs[0]
    weight = node.inputs[1]
    if x is None or x.shape is None or len(x.shape) != 2 or weight is None or weight.const_value is None:
        return False  # only [batch, features] inputs: there axis 1 is the feature axis the weight reads
    if node.op_type == "Gemm":
        if attribute_int(node, "transA", 0):
            return False
        transposed = attribute_int(node, "transB", 0)
    else:
        transposed = 0
    shape = weight.const_value.shape
    if len(shape) != 2:
        return False
    columns, rows = (shape[1], shape[0]) if transposed else (shape[0], shape[1])
    bias = node.inputs[2] if node.op_type == "Gemm" and len(node.inputs) > 2 else None
    if bias is not None and (bias.const_value is None or tuple(bias.const_value.shape) not in
                             ((), (1,), (rows,), (1, rows))):
        return False  # a bias with a row per batch item would not broadcast after shrinking
    if channel_count(x) != columns:
        return False
    slots.register(x)
    slots.own(y, node_name(node), rows)
    producers[node_name(node)] = y.name
    return True


def _pass_through(node: ir.Node, slots: Slots) -> bool:
    x, y = node.inputs[0], node.outputs[0]
    for extra in node.outputs[1:]:
        if extra is not None and extra.uses():
            return False  # MaxPool indices, BatchNormalization training statistics
    for index in PER_CHANNEL_INPUTS.get(node.op_type, ()):
        if index < len(node.inputs) and node.inputs[index] is not None and node.inputs[index].const_value is None:
            return False
    if node.op_type in ("Resize", "Upsample"):
        sizes = node.inputs[3] if len(node.inputs) > 3 else None
        if sizes is not None or channel_count(x) != channel_count(y):
            return False  # explicit sizes name the channel count; a scale on axis 1 changes it
    if node.op_type == "Clip" and any(constant_array(v) is None or constant_array(v).size != 1
                                      for v in node.inputs[1:] if v is not None):
        return False
    slots.tie(x, y)
    return True


def _elementwise(node: ir.Node, slots: Slots) -> bool:
    y = node.outputs[0]
    out_rank = len(y.shape) if y.shape is not None else None
    count = channel_count(y)
    if out_rank is None or count is None:
        return False
    for x in node.inputs:
        if x is None or x.shape is None:
            return False
        axis = 1 - (out_rank - len(x.shape))  # the operand's axis that broadcasts onto the output's axis 1
        if axis < 0 or x.shape[axis] == 1 and count != 1:
            continue  # the operand is the same for every channel
        if x.shape[axis] != count:
            return False
        if constant_array(x) is not None:
            continue  # a per-channel constant: shrink slices it with the output's channels
        if axis != 1:
            return False
        slots.tie(x, y)
    slots.register(y)
    return True


def _concat(node: ir.Node, slots: Slots) -> bool:
    y = node.outputs[0]
    if y.shape is None or any(x is None or x.shape is None for x in node.inputs):
        return False
    axis = attribute_int(node, "axis", 0) % len(y.shape)
    if axis != 1:
        for x in node.inputs:
            slots.tie(x, y)
        return True
    out = slots.register(y)
    counts = [channel_count(x) for x in node.inputs]
    if out is None or None in counts or sum(counts) != len(out):
        return False
    start = out.start
    for x, count in zip(node.inputs, counts):
        for offset, slot in enumerate(slots.register(x)):
            slots.union(slot, start + offset)
        start += count
    return True


def _split(node: ir.Node, slots: Slots) -> bool:
    x = node.inputs[0]
    if x is None or x.shape is None:
        return False
    axis = attribute_int(node, "axis", 0) % len(x.shape)
    if axis != 1:
        for y in node.outputs:
            slots.tie(x, y)
        return True
    source = slots.register(x)
    counts = [channel_count(y) for y in node.outputs]
    if source is None or None in counts or sum(counts) != len(source):
        return False
    if len(node.inputs) > 1 and node.inputs[1] is not None and constant_array(node.inputs[1]) is None:
        return False  # sizes computed at run time cannot be rewritten
    start = source.start
    for y, count in zip(node.outputs, counts):
        for offset, slot in enumerate(slots.register(y)):
            slots.union(start + offset, slot)
        start += count
    return True


def _build(slots: Slots, producer_outputs: dict[str, str]) -> ChannelGraph:
    roots = np.array([slots.find(slot) for slot in range(len(slots.parent))], dtype=np.int64)
    pinned: dict[int, str] = {}
    for slot, reason in slots.pinned.items():
        pinned.setdefault(int(roots[slot]), reason)
    owners: dict[int, set[str]] = defaultdict(set)
    for slot, names in slots.owners.items():
        owners[int(roots[slot])] |= names
    value_slots = {name: roots[start:start + size] for name, (start, size) in slots.offsets.items()}
    by_owners: dict[frozenset[str], dict[int, None]] = defaultdict(dict)
    for producer, output in producer_outputs.items():
        for root in value_slots[output].tolist():  # in row order; a dict keeps each unit once
            key = frozenset(owners[root])
            if producer == min(key):
                by_owners[key][root] = None
    groups = []
    for key, units in by_owners.items():
        reason = next((pinned[root] for root in units if root in pinned), "")
        groups.append(ChannelGroup(len(groups), np.array(list(units), dtype=np.int64), sorted(key),
                                   reason))
    return ChannelGraph(value_slots, groups, producer_outputs)
