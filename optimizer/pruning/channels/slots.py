"""The union-find under the channel analysis: one slot per (tensor, channel), with pinned and owner marks.

Slots are numbered tensor by tensor as the analysis meets them; `tie` merges slot k of one tensor with slot k
of another, and `pin` records why a slot must stay. Path compression keeps `find` near constant time, which
matters little for yolov8n (5k channels) but does for a wide transformer.
"""

from __future__ import annotations

from collections import defaultdict

import onnx_ir as ir


def channel_count(value: ir.Value | None) -> int | None:
    """The size of axis 1 when shape inference knows it (None for scalars, vectors or unknown shapes)."""
    if value is None or value.shape is None or len(value.shape) < 2:
        return None
    dim = value.shape[1]
    return dim if isinstance(dim, int) else None


class Slots:
    """Union-find over every channel slot, with the slots' pinned and producer marks."""

    def __init__(self) -> None:
        self.offsets: dict[str, tuple[int, int]] = {}
        self.parent: list[int] = []
        self.pinned: dict[int, str] = {}
        self.owners: dict[int, set[str]] = defaultdict(set)

    def register(self, value: ir.Value | None, count: int | None = None) -> range | None:
        if value is None or not value.name:
            return None
        if value.name in self.offsets:
            start, size = self.offsets[value.name]
            return range(start, start + size)
        count = channel_count(value) if count is None else count
        if count is None:
            return None
        start = len(self.parent)
        self.parent.extend(range(start, start + count))
        self.offsets[value.name] = (start, count)
        if value.const_value is not None or value.is_graph_input():
            # Weights and graph inputs cannot lose channels: a tie to them keeps the whole unit.
            self.pin(value, "a graph input or constant carries it" if value.is_graph_input() else
                     "a constant carries it")
        return range(start, start + count)

    def find(self, slot: int) -> int:
        root = slot
        while self.parent[root] != root:
            root = self.parent[root]
        while self.parent[slot] != root:
            self.parent[slot], slot = root, self.parent[slot]
        return root

    def union(self, a: int, b: int) -> None:
        ra, rb = self.find(a), self.find(b)
        if ra != rb:
            self.parent[max(ra, rb)] = min(ra, rb)

    def pin(self, value: ir.Value | None, reason: str) -> None:
        slots = self.register(value)
        for slot in slots or ():
            self.pinned.setdefault(slot, f"{value.name}: {reason}")

    def tie(self, a: ir.Value | None, b: ir.Value | None, reason: str = "channel counts differ") -> None:
        """Tie channel k of `a` to channel k of `b`; pin both when their channel counts are unknown or differ."""
        sa, sb = self.register(a), self.register(b)
        if sa is None or sb is None or len(sa) != len(sb):
            self.pin(a, reason)
            self.pin(b, reason)
            return
        for x, y in zip(sa, sb):
            self.union(x, y)

    def own(self, value: ir.Value, owner: str, count: int) -> None:
        for slot in self.register(value, count) or ():
            self.owners[slot].add(owner)
