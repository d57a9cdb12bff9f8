"""Fixtures for the channel pruning tests; the model builders live in channel_models.py."""

import sys
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).parent))  # --import-mode=importlib puts no test folder on sys.path

from channel_models import RICH, build, rich_weights


@pytest.fixture
def rich_model():
    return build(RICH, **rich_weights(np.random.default_rng(0)))


@pytest.fixture
def feeds():
    return {"x": np.random.default_rng(1).standard_normal((1, 3, 8, 8)).astype(np.float32)}
