"""Accuracy metrics for the accuracy budget: built-ins by name, or a user's `module:function`.

A metric takes the model's outputs over the evaluation data (a list, one dict of output arrays per sample) and
the labels, and returns a number where higher is better.
"""

from __future__ import annotations

import importlib
import os
from pathlib import Path

import numpy as np

from optimizer.errors import UsageError
from optimizer.inputs import read_npz

LABELS_KEY = "labels"


def top1(outputs: list[dict[str, np.ndarray]], labels) -> float:
    """Share of samples whose first output's argmax (over the last axis) equals the label."""
    predictions = np.concatenate([np.argmax(next(iter(sample.values())), axis=-1).ravel() for sample in outputs])
    labels = np.asarray(labels).ravel()
    if predictions.shape != labels.shape:
        raise UsageError(f"top1: {predictions.size} predictions for {labels.size} labels")
    return float(np.mean(predictions == labels))


BUILTIN_METRICS = {"top1": top1}


def resolve_metric(spec: str):
    if spec in BUILTIN_METRICS:
        return BUILTIN_METRICS[spec]
    module_name, _, function_name = spec.partition(":")
    if not module_name or not function_name:
        raise UsageError(f"--metric '{spec}': expected MODULE:FUNCTION or one of {', '.join(BUILTIN_METRICS)}")
    try:
        module = importlib.import_module(module_name)
    except ImportError as error:
        raise UsageError(f"--metric '{spec}': cannot import {module_name} ({error})") from None
    function = getattr(module, function_name, None)
    if not callable(function):
        raise UsageError(f"--metric '{spec}': {module_name} has no function {function_name}")
    return function


def load_eval_data(path: str | os.PathLike) -> tuple[list[dict[str, np.ndarray]], np.ndarray]:
    """Samples and labels from an .npz: each input stacked along a first axis, plus a 'labels' array."""
    path = Path(path)
    arrays = read_npz(path)
    if LABELS_KEY not in arrays:
        raise UsageError(f"{path}: no '{LABELS_KEY}' array; has {', '.join(arrays) or 'nothing'}")
    labels = arrays.pop(LABELS_KEY)
    if not arrays:
        raise UsageError(f"{path}: no input arrays beside '{LABELS_KEY}'")
    count = {len(array) for array in arrays.values()}
    if len(count) != 1 or count != {len(labels)}:
        raise UsageError(f"{path}: inputs and labels must have the same number of samples along axis 0")
    samples = [{name: array[index:index + 1] for name, array in arrays.items()} for index in range(len(labels))]
    return samples, labels
