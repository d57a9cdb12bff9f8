"""The real models of shared/zoo.md, each with its real inputs and the static shape it is deployed at.

Tests and benchmarks share this table so they measure the same thing; `fetch` skips the calling test with the
zoo's reason when the package registry cannot be reached.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from optimizer.benchmarks import zoo


@dataclass(frozen=True)
class RealModel:
    name: str
    path: Callable[[], Path]
    inputs: Callable[[], dict[str, np.ndarray]]
    shapes: dict[str, tuple[int, ...]] | None
    """Shapes to fix dynamic dims to, as a deployment would (None: keep the model dynamic)."""


REAL_MODELS = {
    "yolov8n": RealModel("yolov8n", zoo.yolov8n_path, zoo.yolov8n_inputs, {"images": (1, 3, 320, 320)}),
    "silero-vad": RealModel("silero-vad", zoo.silero_vad_path, zoo.silero_vad_inputs, None),
    "minilm": RealModel("minilm", zoo.minilm_path, zoo.minilm_inputs, None),
}


def fetch(name: str) -> tuple[Path, dict[str, np.ndarray], RealModel]:
    """The model file and its inputs; skips the current pytest test if the zoo is unavailable."""
    model = REAL_MODELS[name]
    try:
        return model.path(), model.inputs(), model
    except zoo.ZooUnavailable as reason:
        import pytest

        pytest.skip(f"{name}: {reason}")
