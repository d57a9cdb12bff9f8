"""What a broken variant is (files, command line, allowed exit codes) and the real models they are made from."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

import numpy as np
from onnx import ModelProto

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
