"""Numerical verification: run the original and the optimized model on the same inputs and compare outputs.

Both run in ONNX Runtime with its own graph optimizations off, so what is compared is exactly what hwopt's
passes changed. Float outputs get max abs error, max rel error and cosine similarity; integer and boolean
outputs must match exactly (a class index or a mask that flips is a real difference, however small).
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field

import numpy as np

from optimizer.backends.onnxruntime import create_session
from optimizer.errors import UsageError, VerificationError

DEFAULT_MIN_COSINE = 0.9999
ORIGINAL = "original model"
OPTIMIZED = "optimized model"


@dataclass(frozen=True)
class FidelityThresholds:
    min_cosine: float = DEFAULT_MIN_COSINE
    max_abs_error: float | None = None
    """Off by default: an absolute bound means little without knowing the output's scale."""
    outputs: tuple[str, ...] | None = None
    """The outputs whose fidelity decides (None: all). The others are still compared and reported: e.g. a
    sentence embedding decides, the raw hidden states at padded positions it masks out do not."""

    def decides(self, name: str) -> bool:
        return self.outputs is None or name.split("[")[0] in self.outputs


@dataclass
class OutputFidelity:
    name: str
    shape: list[int]
    max_abs_error: float
    max_rel_error: float
    cosine: float
    mismatched_elements: int
    passed: bool
    decides: bool = True
    """False for an output the user did not name in FidelityThresholds.outputs: reported, not judged."""


@dataclass
class Verification:
    passed: bool
    inputs_source: str
    thresholds: FidelityThresholds
    outputs: list[OutputFidelity] = field(default_factory=list)

    @property
    def worst_cosine(self) -> float:
        return min((o.cosine for o in self.outputs), default=1.0)

    def failure_message(self) -> str:
        bad = [o for o in self.outputs if not o.passed and o.decides]
        parts = [
            f"'{o.name}' cosine {o.cosine:.6f}, max abs error {o.max_abs_error:.3g}"
            + (f", {o.mismatched_elements} elements differ" if o.mismatched_elements else "")
            for o in bad
        ]
        return (f"the optimized model does not match the original (needs cosine >= "
                f"{self.thresholds.min_cosine}): " + "; ".join(parts))


def compare_outputs(
    name: str, reference: np.ndarray, candidate: np.ndarray, thresholds: FidelityThresholds
) -> OutputFidelity:
    reference, candidate = np.asarray(reference), np.asarray(candidate)
    if reference.shape != candidate.shape:
        return OutputFidelity(name, list(reference.shape), float("inf"), float("inf"), 0.0, reference.size, False)
    if reference.dtype.kind not in "fc":
        # Exact match required; the errors are still reported as they are (strings only by count).
        mismatched = int(np.count_nonzero(reference != candidate))
        if reference.dtype.kind in "iub":
            numeric = compare_outputs(name, reference.astype(np.float64), candidate.astype(np.float64), thresholds)
            return OutputFidelity(name, numeric.shape, numeric.max_abs_error, numeric.max_rel_error,
                                  numeric.cosine, mismatched, mismatched == 0)
        return OutputFidelity(name, list(reference.shape), float(mismatched > 0), float(mismatched > 0),
                              1.0 if mismatched == 0 else 0.0, mismatched, mismatched == 0)
    ref = reference.astype(np.float64).ravel()
    cand = candidate.astype(np.float64).ravel()
    # NaN or inf in the same places is agreement; anywhere else it is a mismatch.
    ref_finite, cand_finite = np.isfinite(ref), np.isfinite(cand)
    same_special = (~ref_finite & ~cand_finite) & ((ref == cand) | (np.isnan(ref) & np.isnan(cand)))
    mismatched = int(np.count_nonzero((ref_finite != cand_finite) | (~ref_finite & ~same_special)))
    both = ref_finite & cand_finite
    ref, cand = ref[both], cand[both]
    diff = np.abs(ref - cand)
    max_abs = float(diff.max()) if diff.size else 0.0
    # Relative to the reference, floored at a millionth of its largest magnitude so near-zeros don't explode.
    floor = max(float(np.abs(ref).max()) * 1e-6, np.finfo(np.float32).tiny) if ref.size else 1.0
    max_rel = float((diff / np.maximum(np.abs(ref), floor)).max()) if diff.size else 0.0
    similarity = cosine(ref, cand)
    passed = mismatched == 0 and similarity >= thresholds.min_cosine
    if thresholds.max_abs_error is not None:
        passed = passed and max_abs <= thresholds.max_abs_error
    return OutputFidelity(name, list(reference.shape), max_abs, max_rel, similarity, mismatched, passed)


def cosine(a: np.ndarray, b: np.ndarray) -> float:
    """Cosine similarity of two arrays of any shape, flattened, in float64 (1.0 for two zero arrays)."""
    a = np.asarray(a).astype(np.float64, copy=False).ravel()
    b = np.asarray(b).astype(np.float64, copy=False).ravel()
    norm_a, norm_b = float(np.linalg.norm(a)), float(np.linalg.norm(b))
    if norm_a == 0.0 and norm_b == 0.0:
        return 1.0
    if norm_a == 0.0 or norm_b == 0.0:
        return 0.0
    return float(np.clip(np.dot(a, b) / (norm_a * norm_b), -1.0, 1.0))


def run_reference(model: str | os.PathLike | bytes, feeds: Mapping[str, np.ndarray], *, label: str,
                  threads: int | None = None) -> dict[str, np.ndarray]:
    session = create_session(model, optimization="disabled", threads=threads, label=label)
    return session.run(feeds)


def verify(
    original: str | os.PathLike | bytes,
    optimized: str | os.PathLike | bytes,
    feeds: Mapping[str, np.ndarray],
    *,
    inputs_source: str,
    thresholds: FidelityThresholds = FidelityThresholds(),
    threads: int | None = None,
) -> Verification:
    """Compare the two models on `feeds`. Outputs are matched by name; a missing output fails."""
    expected = run_reference(original, feeds, label=ORIGINAL, threads=threads)
    actual = run_reference(optimized, feeds, label=OPTIMIZED, threads=threads)
    return compare_runs(expected, actual, inputs_source=inputs_source, thresholds=thresholds)


def compare_runs(
    expected: Mapping[str, object],
    actual: Mapping[str, object],
    *,
    inputs_source: str,
    thresholds: FidelityThresholds = FidelityThresholds(),
) -> Verification:
    """Compare outputs already computed (the original's in ONNX Runtime, the artifact's in its runtime)."""
    missing = [name for name in expected if name not in actual]
    if missing:
        raise VerificationError(f"the optimized model lost output(s) {', '.join(missing)}")
    outputs = [
        fidelity
        for name in expected
        for fidelity in _compare_output_values(name, expected[name], actual[name], thresholds)
    ]
    unknown = sorted(set(thresholds.outputs or ()) - set(expected))
    if unknown:
        raise UsageError(f"--fidelity-output names unknown output(s) {', '.join(unknown)}; the model's outputs "
                         f"are {', '.join(expected)}")
    for output in outputs:
        output.decides = thresholds.decides(output.name)
    return Verification(all(o.passed for o in outputs if o.decides), inputs_source, thresholds, outputs)


def _compare_output_values(name: str, reference, candidate, thresholds: FidelityThresholds) -> list[OutputFidelity]:
    """Tensors compare directly; a sequence output compares element by element (`name[i]`); an empty
    optional must stay empty."""
    if reference is None or candidate is None:
        agree = reference is None and candidate is None
        return [OutputFidelity(name, [], 0.0 if agree else float("inf"), 0.0 if agree else float("inf"),
                               1.0 if agree else 0.0, 0 if agree else 1, agree)]
    if isinstance(reference, list) or isinstance(candidate, list):
        if not (isinstance(reference, list) and isinstance(candidate, list)) or len(reference) != len(candidate):
            return [OutputFidelity(name, [], float("inf"), float("inf"), 0.0, 1, False)]
        return [
            fidelity
            for index, (ref, cand) in enumerate(zip(reference, candidate))
            for fidelity in _compare_output_values(f"{name}[{index}]", ref, cand, thresholds)
        ]
    return [compare_outputs(name, reference, candidate, thresholds)]
