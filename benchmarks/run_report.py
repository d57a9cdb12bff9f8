"""The benchmark run report: one JSON per `optimize bench` run, with a versioned schema.

A report is either measured (timed here or on a remote agent) or estimated (a roofline figure for a device that
is not here). The two kinds share the schema so the history and the dashboard can list them together, and
`kind` keeps them apart wherever they are shown: an estimate is never drawn or ranked as a measurement.
"""

from __future__ import annotations

import json
import os
import uuid
from dataclasses import asdict, dataclass, field, fields
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

from optimizer.errors import HwoptError

RUN_REPORT_SCHEMA_VERSION = 1

Kind = Literal["measured", "estimated"]


class RunReportError(HwoptError):
    """A report file or history row that is not a run report this hwopt can read."""


@dataclass(frozen=True)
class LatencySummary:
    """Latency of one batch size over the timed runs, in milliseconds."""

    p50_ms: float
    p90_ms: float
    p99_ms: float
    mean_ms: float
    std_ms: float
    min_ms: float
    max_ms: float
    runs: int
    ci95_low_ms: float
    """The median's 95% confidence interval (distribution-free, from order statistics)."""
    ci95_high_ms: float
    stopped_by: str = "ci"
    """Why timing stopped: `ci` (the interval got tight), `time` (budget spent), `runs` (run cap reached)."""


@dataclass(frozen=True)
class BatchResult:
    batch: int
    latency: LatencySummary
    throughput_per_s: float
    """Samples per second at the median latency: batch / p50."""


@dataclass(frozen=True)
class MemoryUsage:
    peak_rss_bytes: int
    """The process's peak resident set size while the model was loaded and run (VmHWM, reset before loading)."""
    rss_before_bytes: int
    """Resident set size before the model was loaded: what the peak includes that is not the model's."""
    runtime_arena_bytes: int | None = None
    """The runtime's own working memory where it reports one (TensorRT's engine device memory), else None."""
    arena_source: str | None = None


@dataclass(frozen=True)
class OperatorTime:
    """Time spent in one operator type per inference, as the runtime's profiler reports it."""

    op_type: str
    total_ms: float
    percent: float
    calls: int
    """Kernel calls of this type per inference."""


@dataclass(frozen=True)
class Environment:
    hostname: str
    os: str
    python: str
    architecture: str
    cpu_model: str
    isa: list[str]
    logical_cores: int
    threads: int | None
    """The inference threads asked for (None: the runtime's default)."""
    runtimes: dict[str, str]
    """Runtime -> version, for every runtime importable here."""
    load_average: list[float]
    """1, 5 and 15 minute load averages when the run started: a busy machine explains a slow figure."""


@dataclass(frozen=True)
class ModelInfo:
    name: str
    """What the model is called in tables and plots (the source model's stem unless the user names it)."""
    path: str
    sha256: str
    """Checksum of the entry file: two runs of the same bytes compare like with like."""
    size_bytes: int
    """The artifact's files for its runtime, summed."""
    inputs: dict[str, list[int]] = field(default_factory=dict)
    """Input shapes at batch 1, as run."""


@dataclass
class RunReport:
    model: ModelInfo
    device: str
    """A device label people recognise: the host's CPU model, or a target profile's description."""
    target: str
    runtime: str
    runtime_version: str
    precision: str
    batches: list[BatchResult]
    kind: Kind = "measured"
    label: str = ""
    """The candidate's name in comparisons, e.g. "int8 openvino"; the user may set it."""
    threads: int | None = None
    memory: MemoryUsage | None = None
    load_seconds: float | None = None
    """From the artifact on disk to a session that has run once (the runtime's own compile included)."""
    compile_seconds: float | None = None
    """hwopt compiling a plain model into an artifact first; None when an artifact was given."""
    operators: list[OperatorTime] = field(default_factory=list)
    """Operator types by time per inference, hottest first."""
    environment: Environment | None = None
    fidelity: dict[str, float] | None = None
    """From the artifact's optimize report: worst output cosine against the original, when one is beside it."""
    accuracy: float | None = None
    """A task metric the user recorded with the run (top-1, mAP...), when there is one."""
    estimate: dict[str, Any] | None = None
    """For estimated runs: the roofline's bound, FLOPs and bytes."""
    notes: list[str] = field(default_factory=list)
    source: str = "local"
    """Where it ran: `local`, or the agent's URL."""
    id: str = field(default_factory=lambda: uuid.uuid4().hex[:12])
    created: str = field(default_factory=lambda: datetime.now(UTC).isoformat(timespec="seconds"))
    schema_version: int = RUN_REPORT_SCHEMA_VERSION

    @property
    def p50_ms(self) -> float | None:
        """The batch-1 median (else the smallest batch's): the one figure a table shows."""
        if not self.batches:
            return None
        return min(self.batches, key=lambda b: b.batch).latency.p50_ms

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2)

    def write(self, path: str | os.PathLike) -> None:
        """Write atomically: a half-written report never replaces a good one."""
        path = Path(path)
        temporary = path.with_name(f".{path.name}.tmp-{os.getpid()}")
        try:
            temporary.write_text(self.to_json() + "\n", encoding="utf-8")
            os.replace(temporary, path)
        except OSError as error:
            temporary.unlink(missing_ok=True)
            raise RunReportError(f"{path}: cannot write the run report ({error.strerror})") from None

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> RunReport:
        if not isinstance(data, dict):
            raise RunReportError("a run report must be a JSON object")
        version = data.get("schema_version")
        if version != RUN_REPORT_SCHEMA_VERSION:
            raise RunReportError(f"run report schema version {version!r} is not {RUN_REPORT_SCHEMA_VERSION}")
        try:
            data = {key: value for key, value in data.items() if key in _FIELDS}
            data["model"] = ModelInfo(**data["model"])
            data["batches"] = [BatchResult(batch["batch"], LatencySummary(**batch["latency"]),
                                           batch["throughput_per_s"]) for batch in data["batches"]]
            if data.get("memory") is not None:
                data["memory"] = MemoryUsage(**data["memory"])
            data["operators"] = [OperatorTime(**op) for op in data.get("operators", [])]
            if data.get("environment") is not None:
                data["environment"] = Environment(**data["environment"])
            return cls(**data)
        except (KeyError, TypeError) as error:
            raise RunReportError(f"not a valid run report ({type(error).__name__}: {error})") from None

    @classmethod
    def from_json(cls, text: str) -> RunReport:
        try:
            return cls.from_dict(json.loads(text))
        except json.JSONDecodeError as error:
            raise RunReportError(f"not JSON ({error})") from None

    @classmethod
    def read(cls, path: str | os.PathLike) -> RunReport:
        try:
            return cls.from_json(Path(path).read_text(encoding="utf-8"))
        except OSError as error:
            raise RunReportError(f"{path}: cannot read ({error.strerror})") from None
        except RunReportError as error:
            raise RunReportError(f"{path}: {error}") from None


_FIELDS = {f.name for f in fields(RunReport)}
