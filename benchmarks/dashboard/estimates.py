"""Roofline estimates of the history's models for devices that are not here (`optimize dashboard --estimate`).

Each model is estimated at the precisions its measured runs used and at their batch sizes, with the input
shapes they ran with, so an estimate lines up with the measurements it is shown beside. The ONNX to estimate
from is found through the runs' model paths: the original model an artifact was optimized from (report.json's
`source`) is preferred, since the roofline counts arithmetic and bytes at the precision asked and a quantized
graph's extra Quantize/Dequantize nodes would only add traffic that a deployed engine fuses away.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from optimizer.benchmarks.estimate import can_estimate, estimate_run
from optimizer.benchmarks.run_report import RunReport

from optimizer.artifact import ArtifactError, load_artifact
from optimizer.errors import HwoptError
from optimizer.targets import TargetProfile

ESTIMATED_PRECISIONS = ("fp32", "fp16", "int8")
"""Precisions estimated for a model with no measured run to copy them from (one given by --estimate-model)."""


@dataclass
class Estimates:
    runs: list[RunReport] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    """What was not estimated, and why: printed by the command, never silently dropped."""


def estimate_models(runs: Iterable[RunReport], profiles: Iterable[TargetProfile],
                    model_files: Mapping[str, Path] | None = None) -> Estimates:
    """Estimates on each profile of every model with a measured run in `runs`, and of `model_files`
    (name -> .onnx, which also overrides where a model of that name is looked for)."""
    model_files = dict(model_files or {})
    measured: dict[str, list[RunReport]] = {}
    for run in runs:
        if run.kind == "measured":
            measured.setdefault(run.model.name, []).append(run)
    result = Estimates()
    profiles = list(profiles)
    for name in [*measured, *(n for n in model_files if n not in measured)]:
        model_runs = measured.get(name, [])
        path = model_files.get(name) or find_onnx(model_runs)
        if path is None:
            looked = ", ".join(sorted({run.model.path for run in model_runs})) or "nowhere"
            result.notes.append(f"'{name}' not estimated: no .onnx found at {looked}; give one with "
                                f"--estimate-model {name}=MODEL.onnx")
            continue
        for profile in profiles:
            _estimate_model(name, path, model_runs, profile, result)
    return result


def _estimate_model(name: str, path: Path, model_runs: list[RunReport], profile: TargetProfile,
                    result: Estimates) -> None:
    precisions = _measured_precisions(model_runs) or list(ESTIMATED_PRECISIONS)
    lacking = [p for p in precisions if not can_estimate(profile, p)]
    if lacking:
        result.notes.append(f"'{name}' not estimated on {profile.name} at {', '.join(lacking)}: its profile has "
                            "no datasheet peak or bandwidth for that")
    batches = sorted({batch.batch for run in model_runs for batch in run.batches}) or [1]
    latest = max(model_runs, key=lambda run: run.created, default=None)
    shapes = latest.model.inputs if latest is not None else {}
    for precision in precisions:
        if precision in lacking:
            continue
        try:
            result.runs.append(estimate_run(path, profile, precision, batches=batches, name=name, shapes=shapes))
        except HwoptError as error:
            result.notes.append(f"'{name}' not estimated on {profile.name} at {precision}: {error}")


def _measured_precisions(runs: list[RunReport]) -> list[str]:
    """The precisions measured, as the roofline names them (int8-dynamic computes in int8), in a fixed order."""
    measured = {run.precision.split("-")[0] for run in runs}
    return [precision for precision in (*ESTIMATED_PRECISIONS, "bf16") if precision in measured]


def find_onnx(runs: list[RunReport]) -> Path | None:
    """An .onnx of the model the runs measured: FP32 runs' first (an unquantized graph), newest first."""
    ordered = sorted(runs, key=lambda run: run.created, reverse=True)
    ordered.sort(key=lambda run: run.precision != "fp32")
    for run in ordered:
        for candidate in _onnx_candidates(Path(run.model.path)):
            if candidate.suffix == ".onnx" and candidate.is_file():
                return candidate
    return None


def _onnx_candidates(path: Path) -> Iterator[Path]:
    """The model file itself, or in an artifact folder: its source model, its entry, then model.onnx."""
    if not path.is_dir():
        yield path
        return
    source = _optimize_source(path)
    if source is not None:
        yield source if source.is_absolute() else path.parent / source
        yield source
    try:
        yield load_artifact(path, check_files=False).entry_path
    except ArtifactError:
        pass
    yield path / "model.onnx"


def _optimize_source(folder: Path) -> Path | None:
    try:
        report = json.loads((folder / "report.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    source = report.get("source") if isinstance(report, dict) else None
    return Path(source) if isinstance(source, str) and source else None
