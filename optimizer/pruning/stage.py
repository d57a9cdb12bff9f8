"""Pruning as the first step of `optimize`: once, on the imported model, before any runtime's candidate is built.

Every candidate (ONNX Runtime, OpenVINO...) starts from the pruned model, so the pruning (and its recovery on
calibration data, the slow part) runs once. The artifact is verified against the *pruned* model: pruning
changes the function on purpose, and what verification must catch is a runtime or a pass that computes the
pruned model wrongly. What pruning itself cost is measured separately against the original, on the
calibration data and on the verification inputs, and reported (PruningReport.fidelity).
"""

from __future__ import annotations

import dataclasses
import logging
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import onnx_ir as ir

from optimizer import ir as hir
from optimizer.errors import UsageError
from optimizer.passes import FixInputShapes, FixInputShapesConfig
from optimizer.pruning.options import PruningOptions
from optimizer.pruning.report import PruningReport
from optimizer.verify import cosine

logger = logging.getLogger("optimizer")
PRUNED_FILE = "pruned.onnx"
NO_DATA_WARNING = ("no calibration data given: pruned by weight magnitude without recovery; give unlabeled "
                   "inputs with --calibration for the label-free recovery")


def prune_imported(working: ir.Model, options: PruningOptions, scratch: Path, *,
                   shapes: Mapping[str, tuple[int, ...]], preprocessing: Any = None,
                   threads: int | None = None) -> tuple[Path, PruningReport]:
    """Prune `working` in place and save it to `scratch` (what candidates load and verification runs)."""
    # The passes are imported when pruning is asked for: `optimize` without --prune does not load them.
    from optimizer.pruning.prune import prune_model
    from optimizer.quantization.calibration import calibration_data

    if not isinstance(options, PruningOptions):
        raise UsageError(f"pruning must be a PruningOptions, not {type(options).__name__}")
    if shapes:
        # FLOPs in the report need static shapes; the pipeline would fix them next anyway.
        FixInputShapes(FixInputShapesConfig(shapes=dict(shapes)))(working)
    samples = None
    warnings = []
    if options.calibration is not None:
        data = calibration_data(options.calibration, hir.input_specs(working), preprocessing=preprocessing,
                                limit=options.calibration_samples, shapes=shapes)
        samples = [{name: np.asarray(array) for name, array in sample.items()} for sample in data]
    elif options.recover:
        options = dataclasses.replace(options, recover=False)
        warnings.append(NO_DATA_WARNING)
    report = prune_model(working, options, samples, threads=threads)
    report.warnings[:0] = warnings
    for warning in warnings:
        logger.warning(warning)
    path = scratch / PRUNED_FILE
    hir.save_model(working, path, external_data=hir.has_external_data(working) or None)
    return path, report


def fine_tune_module(module: Any, options: PruningOptions, example_inputs: Any,
                     samples: Any) -> tuple[Any, PruningOptions, str]:
    """A PyTorch module pruned and fine-tuned against its own outputs (optimizer/pruning/distill.py) before
    export, the pruning options left for the exported ONNX, and the report's line on the fine-tune.

    The ONNX pass then finds the zeros the fine-tune kept (they score lowest, so the masks agree) and adds no
    recovery of its own: the fine-tune was the recovery. `samples`: the module's inputs as it takes them (a list
    of tensors, tuples or dicts), else `example_inputs` alone."""
    from optimizer.pruning.distill import fine_tune_pruned

    if isinstance(samples, (list, tuple)) and samples and not isinstance(samples[0], (str, os.PathLike)):
        inputs = list(samples)
    elif example_inputs is not None:
        inputs = [example_inputs]
    else:
        raise UsageError("fine-tuning a pruned PyTorch module needs its inputs: pass example_inputs (or "
                         "PruningOptions(calibration=[...]) with samples as the module takes them)")
    result = fine_tune_pruned(module, options, inputs)
    line = (f"distillation fine-tune (PyTorch): {result.steps} steps on {len(inputs)} sample(s), teacher-student "
            f"MSE {result.loss_before:.4g} -> {result.loss_after:.4g} in {result.seconds:.1f} s")
    # The fine-tune fixed the masks: the ONNX pass re-finds them by magnitude, without data of its own.
    exported = dataclasses.replace(options, calibration=None, recover=False, importance="l1", sensitivity=False)
    return result.module, exported, line


def record_pruning_cost(report: PruningReport, original: Mapping[str, np.ndarray],
                        pruned: Mapping[str, np.ndarray]) -> None:
    """The pruned model's outputs against the original's on the run's verification inputs, into the report."""
    cosines = [cosine(original[name], pruned[name]) for name in original if name in pruned]
    if cosines:
        report.fidelity["verification_inputs"] = round(min(cosines), 6)
