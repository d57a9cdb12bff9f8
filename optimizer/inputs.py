"""Inputs for verification and timing: a user's `.npz`, calibration samples, or data generated from specs.

Generated data follows the model's input specs: floats from a standard normal, integers in {0, 1} (valid
indices for any embedding or Gather), booleans at random. Dynamic dims take the size given with `--shape`, or
1 for a leading (batch) dim and DEFAULT_DYNAMIC_DIM elsewhere; a dim name shared by several inputs gets the same
size in all of them (input_ids and attention_mask share "sequence").
"""

from __future__ import annotations

import math
import os
import zipfile
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np

from optimizer.errors import UsageError
from optimizer.ir import InputSpec

Feeds = dict[str, np.ndarray]
DEFAULT_DYNAMIC_DIM = 64
# Generated inputs larger than this are refused: a model that needs more wants real inputs and shapes.
MAX_GENERATED_BYTES = 4 << 30


def load_npz(path: str | os.PathLike, specs: Sequence[InputSpec]) -> Feeds:
    """Read one set of inputs from an .npz whose keys are the model's input names."""
    path = Path(path)
    if not path.is_file():
        raise UsageError(f"{path}: no such inputs file")
    return check_feeds(read_npz(path), specs, source=str(path))


def read_npz(path: str | os.PathLike, names: Sequence[str] | None = None) -> dict[str, np.ndarray]:
    """The arrays of an .npz (only `names` when given), with a one-line UsageError for a damaged file."""
    try:
        with np.load(path, allow_pickle=False) as archive:
            return {name: archive[name] for name in (archive.files if names is None else names)}
    except (OSError, ValueError, EOFError, zipfile.BadZipFile) as error:
        raise UsageError(f"{path}: not a readable .npz of input arrays ({error})") from None


def check_feeds(feeds: Mapping[str, np.ndarray], specs: Sequence[InputSpec], *, source: str) -> Feeds:
    """Keep the model's inputs from `feeds`, cast to the input dtypes, and name any that are missing."""
    missing = [spec.name for spec in specs if spec.name not in feeds]
    if missing:
        raise UsageError(f"{source}: missing input(s) {', '.join(missing)}; has {', '.join(feeds) or 'none'}")
    checked = {}
    for spec in specs:
        array = np.asarray(feeds[spec.name])
        if array.dtype != spec.dtype:
            if array.dtype.kind != spec.dtype.kind and not (array.dtype.kind in "iu" and spec.dtype.kind in "iu"):
                raise UsageError(
                    f"{source}: input '{spec.name}' is {array.dtype}, the model expects {spec.dtype}"
                )
            array = array.astype(spec.dtype)
        if spec.shape is not None and len(spec.shape) != array.ndim:
            raise UsageError(
                f"{source}: input '{spec.name}' has rank {array.ndim}, the model expects rank {len(spec.shape)}"
            )
        checked[spec.name] = array
    return checked



def resolve_shape(
    spec: InputSpec, shapes: Mapping[str, Sequence[int]], named_dims: dict[str, int]
) -> tuple[int, ...]:
    if spec.name in shapes:
        return tuple(int(d) for d in shapes[spec.name])
    if spec.shape is None:
        raise UsageError(f"input '{spec.name}' has no known rank; give its shape with --shape {spec.name}=...")
    dims = []
    for axis, dim in enumerate(spec.shape):
        if isinstance(dim, int) and dim >= 0:
            dims.append(dim)
        elif isinstance(dim, str) and dim in named_dims:
            dims.append(named_dims[dim])
        else:
            size = 1 if axis == 0 else DEFAULT_DYNAMIC_DIM
            if isinstance(dim, str):
                named_dims[dim] = size
            dims.append(size)
    return tuple(dims)


def generate_inputs(
    specs: Sequence[InputSpec], shapes: Mapping[str, Sequence[int]] | None = None, *, seed: int = 0
) -> Feeds:
    rng = np.random.default_rng(seed)
    shapes = shapes or {}
    # Sizes given for one input fix its named dims for every other input that shares them.
    named_dims: dict[str, int] = {}
    for spec in specs:
        if spec.name in shapes and spec.shape is not None and len(spec.shape) == len(shapes[spec.name]):
            for dim, size in zip(spec.shape, shapes[spec.name]):
                if isinstance(dim, str):
                    named_dims.setdefault(dim, int(size))
    feeds = {}
    for spec in specs:
        shape = resolve_shape(spec, shapes, named_dims)
        size = math.prod(shape) * spec.dtype.itemsize
        if size > MAX_GENERATED_BYTES:
            raise UsageError(f"input '{spec.name}' of shape {'x'.join(map(str, shape))} would need "
                             f"{size / 2**30:.3g} GiB of generated data; pass --shape or --inputs")
        kind = spec.dtype.kind
        if kind == "f":
            feeds[spec.name] = rng.standard_normal(shape, dtype=np.float32).astype(spec.dtype, copy=False)
        elif kind in "iu":
            feeds[spec.name] = rng.integers(0, 2, size=shape).astype(spec.dtype)
        elif kind == "b":
            feeds[spec.name] = rng.integers(0, 2, size=shape).astype(bool)
        else:
            raise UsageError(f"cannot generate data for input '{spec.name}' of type {spec.dtype}; "
                             "pass real inputs with --inputs FILE.npz")
    return feeds
