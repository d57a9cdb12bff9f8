"""The CLI fails cleanly on broken models: over 500 truncated, corrupted and mutated variants of real models.

Every variant (tests/model_mutations.py) must end with exit code 1 or 2 (2 for bad usage) and exactly one line
on stderr, `optimize: error: ...`; `optimize: internal error: ...` is a bug in hwopt. None may crash or hang,
the input files must be unchanged afterwards, and no output may be left behind.

Launching 500 interpreters would take minutes, so the CLI is imported once and each variant runs in a forked
child (`optimizer.cli.main(argv)`, its stdout/stderr redirected at the file-descriptor level, so that output from
C++ libraries counts too); the parent waits with a timeout and sees a crash as a death by signal. A handful of
variants also run through the real `optimize` console script.

Variants that are not invalid by construction (random truncations, corrupted bytes) are first tried in ONNX
Runtime, in the same child; one that it can load and run is dropped and another is generated.

`HWOPT_ROBUSTNESS_REPORT=path.json` writes every outcome to a file; `HWOPT_FUZZ_SEED` changes the random draws.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import random
import re
import shutil
import signal
import stat
import subprocess
import sys
import tempfile
import time
import traceback
from collections import Counter, defaultdict
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np
import onnxruntime
import pytest
from optimizer.benchmarks import zoo

import optimizer.api  # imported once here, so that forked children start warm
import optimizer.cli

sys.path.insert(0, str(Path(__file__).parent))  # --import-mode=importlib puts no test folder on sys.path
import model_mutations as mutations
from model_mutations import MODEL, Subject, Variant

pytestmark = [pytest.mark.zoo, pytest.mark.slow]

MIN_VARIANTS = 500
TIMEOUT_S = 60
WORKERS = 2
MAX_TRIES_PER_KEPT = 6
"""A random category gives up after this many candidates per variant it needs (most are dropped by then)."""
SEED = int(os.environ.get("HWOPT_FUZZ_SEED", "20241124"))
DROPPED_EXIT = 121
"""Exit status of a child whose variant ONNX Runtime could load and run: not broken, so not held against hwopt."""
MAX_ORACLE_INPUT_BYTES = 1 << 30
"""A model whose inputs cannot fit in memory cannot be run: the oracle does not try."""
RUNTIME_TEMP_FILES = {".ses"}
"""Files `import onnxruntime` itself leaves in $TMPDIR (a session id it keeps): not hwopt's to clean up."""
ERROR_PREFIX = "optimize: error: "
INTERNAL_PREFIX = "optimize: internal error:"


# ---------------------------------------------------------------------------------------------------------------
# The subjects: real models and the command lines that must succeed on them unbroken.


def _fetched(fetch, *args):
    try:
        return fetch(*args)
    except zoo.ZooUnavailable as reason:
        pytest.skip(str(reason))


@pytest.fixture(scope="module")
def yolov8n() -> Subject:
    data = _fetched(zoo.yolov8n_path).read_bytes()
    given = "{dir}/" + MODEL
    arg_sets = (
        (given, "-o", "{out}"),
        (given, "-o", "{out}", "--no-benchmark", "-q"),
        (given, "-o", "{out}", "-O0"),
        (given, "-o", "{out}", "-O3", "--json"),
        (given, "-o", "{out}", "--shape", "images=1x3x320x320", "--threads", "1"),
        (given,),  # the default output folder, ./model-hwopt, in the working directory
    )
    rng = np.random.default_rng(0)
    feeds = {"images": rng.random((1, 3, 320, 320), dtype=np.float32)}
    return Subject("yolov8n", data, arg_sets, oracle_feeds=feeds)


@pytest.fixture(scope="module")
def silero_vad() -> Subject:
    data = _fetched(zoo.silero_vad_path).read_bytes()
    feeds = _fetched(zoo.silero_vad_inputs)
    buffer = io.BytesIO()
    np.savez(buffer, **feeds)
    # Generated inputs (64 samples) are too short for its STFT, hence --inputs.
    given, inputs = "{dir}/" + MODEL, ("--inputs", "{dir}/inputs.npz")
    arg_sets = (
        (given, "-o", "{out}", *inputs),
        (given, "-o", "{out}", "-O0", *inputs),
        (given, "-o", "{out}", "-O3", "--no-benchmark", *inputs),
    )
    return Subject("silero-vad", data, arg_sets, {"inputs.npz": buffer.getvalue()}, feeds)


@pytest.fixture(scope="module")
def zoo_hashes(yolov8n, silero_vad) -> Iterator[None]:
    """The cached zoo files must be untouched by everything in this module."""
    paths = [zoo.yolov8n_path(), zoo.silero_vad_path()]
    before = {p: _sha256(p) for p in paths}
    yield
    assert {p: _sha256(p) for p in paths} == before


# ---------------------------------------------------------------------------------------------------------------
# Running the CLI in forked children.


@dataclass
class Job:
    variant: Variant
    root: Path
    argv: list[str]
    source: Source | None = None
    use_oracle: bool = True
    inputs_before: dict[str, str] = field(default_factory=dict)
    output_before: dict[str, str] | None = None
    pid: int = 0
    started: float = 0.0
    oracle_note: str | None = None


@dataclass
class Outcome:
    category: str
    description: str
    argv: list[str]
    exit_code: int | None
    signal: int | None
    timed_out: bool
    seconds: float
    stdout: str
    stderr: str
    oracle: str | None
    problems: list[str]
    notes: list[str]

    @property
    def failed(self) -> bool:
        return bool(self.problems)


@dataclass
class Source:
    """Where variants of one category come from, and how many of them to keep."""

    name: str
    variants: Iterator[Variant]
    quota: int | None = None
    """None: every variant the generator yields."""
    kept: int = 0
    dropped: int = 0
    in_flight: int = 0
    tries: int = 0
    exhausted: bool = False

    def next(self) -> Variant | None:
        if self.exhausted:
            return None
        if self.quota is not None and (self.kept + self.in_flight >= self.quota
                                       or self.tries >= self.quota * MAX_TRIES_PER_KEPT):
            return None
        try:
            variant = next(self.variants)
        except StopIteration:
            self.exhausted = True
            return None
        self.tries += 1
        self.in_flight += 1
        return variant


def run_variants(sources: Sequence[Source], scratch: Path, feeds: Mapping[str, Mapping[str, np.ndarray]],
                 *, workers: int = WORKERS) -> tuple[list[Outcome], list[Outcome]]:
    """Run every source's variants, `workers` at a time; return (kept outcomes, dropped ones)."""
    kept: list[Outcome] = []
    dropped: list[Outcome] = []
    running: dict[int, Job] = {}
    again: list[Job] = []
    counter = 0
    while True:
        while len(running) < workers:
            if again:
                job = again.pop()
            else:
                picked = next(((s, v) for s in sources for v in [s.next()] if v is not None), None)
                if picked is None:
                    break
                source, variant = picked
                counter += 1
                job = _prepare(variant, scratch / f"{counter:04d}")
                job.source = source
            _start(job, feeds)
            running[job.pid] = job
        if not running:
            return kept, dropped
        for job, status, timed_out in _reap(running):
            outcome, retry = _judge(job, status, timed_out)
            if retry:  # ONNX Runtime itself crashed on it: broken for sure, now run hwopt alone
                job.use_oracle, job.oracle_note = False, outcome.oracle
                again.append(job)
                continue
            if job.source is not None:
                job.source.in_flight -= 1
            if outcome.oracle == "runs":
                dropped.append(outcome)
                if job.source is not None:
                    job.source.dropped += 1
            else:
                kept.append(outcome)
                if job.source is not None:
                    job.source.kept += 1
            if not outcome.failed:  # a failure's files stay, to reproduce it by hand
                shutil.rmtree(job.root, ignore_errors=True)


def _prepare(variant: Variant, root: Path) -> Job:
    """Lay out the variant's files under root/in; root/out is the output folder, root/cwd the working one."""
    inputs, output = root / "in", root / "out"
    for folder in (inputs, root / "cwd", root / "tmp"):
        folder.mkdir(parents=True)
    for name, data in variant.files.items():
        (inputs / name).parent.mkdir(parents=True, exist_ok=True)
        (inputs / name).write_bytes(data)
    for name in variant.dirs:
        (inputs / name).mkdir(parents=True, exist_ok=True)
    for name, target in variant.symlinks.items():
        (inputs / name).symlink_to(target)
    for name in variant.fifos:
        os.mkfifo(inputs / name)
    if variant.existing_output is not None:
        output.mkdir()
        for name, data in variant.existing_output.items():
            (output / name).write_bytes(data)
    argv = [arg.replace("{dir}", str(inputs)).replace("{out}", str(output)) for arg in variant.args]
    light = Variant(variant.category, variant.description, variant.args, {}, oracle=variant.oracle,
                    exit_codes=variant.exit_codes, existing_output=variant.existing_output)
    job = Job(light, root, argv, use_oracle=variant.oracle is not None)
    job.inputs_before = _snapshot(inputs)
    job.output_before = _snapshot(output) if output.exists() else None
    return job


def _start(job: Job, feeds: Mapping[str, Mapping[str, np.ndarray]]) -> None:
    for stream in (sys.stdout, sys.stderr):
        stream.flush()
    (job.root / "started").unlink(missing_ok=True)
    pid = os.fork()
    if pid == 0:
        _child(job, feeds.get(job.variant.oracle or "", {}))  # never returns
    try:
        os.setpgid(pid, pid)
    except OSError:
        pass  # the child got there first
    job.pid, job.started = pid, time.monotonic()


def _child(job: Job, oracle_feeds: Mapping[str, np.ndarray]) -> None:
    code = 1
    try:
        os.setpgid(0, 0)
        devnull = os.open(os.devnull, os.O_RDWR)
        os.dup2(devnull, 0)
        if job.use_oracle:
            os.dup2(devnull, 1)
            os.dup2(devnull, 2)
            verdict = onnxruntime_verdict(job.root / "in" / MODEL, oracle_feeds)
            (job.root / "oracle").write_text(verdict)
            if verdict == "runs":
                os._exit(DROPPED_EXIT)
        for fd, name in ((1, "stdout"), (2, "stderr")):
            target = os.open(job.root / name, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
            os.dup2(target, fd)
            os.close(target)
        sys.stdout = io.TextIOWrapper(io.FileIO(1, "w", closefd=False), line_buffering=True)
        sys.stderr = io.TextIOWrapper(io.FileIO(2, "w", closefd=False), line_buffering=True)
        sys.stdin = io.TextIOWrapper(io.FileIO(0, "r", closefd=False))
        os.chdir(job.root / "cwd")
        os.environ["TMPDIR"] = tempfile.tempdir = str(job.root / "tmp")
        (job.root / "started").touch()
        code = optimizer.cli.main(job.argv)
    except SystemExit as exit:  # what the console script would do with it
        code = exit.code if isinstance(exit.code, int) else (0 if exit.code is None else 1)
        if isinstance(exit.code, str):
            print(exit.code, file=sys.stderr)
    except BaseException:  # noqa: BLE001  escaped main(): Python would print the traceback and exit 1
        traceback.print_exc()
        code = 1
    finally:
        for stream in (sys.stdout, sys.stderr):
            try:
                stream.flush()
            except Exception:  # noqa: BLE001, S110  a closed stream must not stop the exit
                pass
        os._exit(code if isinstance(code, int) and 0 <= code < 256 else 1)


def _reap(running: dict[int, Job]) -> list[tuple[Job, int, bool]]:
    """Wait until at least one child ends (or runs out of time); return (job, wait status, timed out)."""
    while True:
        finished = []
        for pid, job in list(running.items()):
            done, status = os.waitpid(pid, os.WNOHANG)
            if done:
                finished.append((running.pop(pid), status, False))
            elif time.monotonic() - job.started > TIMEOUT_S:
                try:
                    os.killpg(pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
                _, status = os.waitpid(pid, 0)
                finished.append((running.pop(pid), status, True))
        if finished:
            return finished
        time.sleep(0.005)


def _judge(job: Job, status: int, timed_out: bool) -> tuple[Outcome, bool]:
    """The outcome of one run and whether to run it again without the oracle."""
    seconds = time.monotonic() - job.started
    oracle_file = job.root / "oracle"
    oracle = oracle_file.read_text() if oracle_file.exists() else job.oracle_note
    hwopt_ran = (job.root / "started").exists()
    exit_code = os.waitstatus_to_exitcode(status) if os.WIFEXITED(status) else None
    killed_by = os.WTERMSIG(status) if os.WIFSIGNALED(status) else None
    outcome = Outcome(job.variant.category, job.variant.description, job.argv, exit_code, killed_by, timed_out,
                      seconds, _read(job.root / "stdout"), _read(job.root / "stderr"), oracle, [], [])
    if job.use_oracle and not hwopt_ran:
        if exit_code == DROPPED_EXIT and oracle == "runs":
            return outcome, False
        if killed_by is not None or timed_out:
            how = "timed out" if timed_out else f"crashed ({signal.Signals(killed_by).name})"
            outcome.oracle = f"rejects: ONNX Runtime {how}"
            return outcome, True
        outcome.problems.append(f"harness: the oracle failed (exit {exit_code})")
        return outcome, False
    outcome.problems.extend(_contract_problems(outcome, job.variant.exit_codes))
    outcome.problems.extend(_leftovers(job, outcome.notes))
    return outcome, False


def _contract_problems(outcome: Outcome, exit_codes: frozenset[int]) -> list[str]:
    """The one-line-error contract: exit code, stderr, no crash, no hang."""
    if outcome.timed_out:
        return [f"hang: killed after {TIMEOUT_S} s"]
    if outcome.signal is not None:
        return [f"crash: killed by {signal.Signals(outcome.signal).name}"]
    problems = []
    if outcome.exit_code not in exit_codes:
        problems.append(f"exit code {outcome.exit_code}, expected {' or '.join(map(str, sorted(exit_codes)))}")
    lines = outcome.stderr.splitlines()
    if outcome.stderr.startswith(INTERNAL_PREFIX):
        problems.append("internal error")
    elif len(lines) != 1 or not lines[0].startswith(ERROR_PREFIX) or not lines[0][len(ERROR_PREFIX):].strip():
        problems.append(f"stderr is not one '{ERROR_PREFIX.strip()}' line ({len(lines)} lines)")
    return problems


def _leftovers(job: Job, notes: list[str]) -> list[str]:
    """Inputs unchanged; nothing written to the output folder, the working folder or the temporary folder."""
    problems = []
    inputs_after = _snapshot(job.root / "in")
    if inputs_after != job.inputs_before:
        changed = sorted(k for k in inputs_after.keys() | job.inputs_before.keys()
                         if inputs_after.get(k) != job.inputs_before.get(k))
        problems.append(f"input files changed: {', '.join(changed)}")
    output = job.root / "out"
    if job.output_before is None:
        if output.exists():
            files = _files_under(output)
            if files:
                problems.append(f"output left behind: {', '.join(files)}")
            else:
                notes.append("an empty output folder was left behind")
    elif _snapshot(output) != job.output_before:
        problems.append(f"output folder changed: {', '.join(_files_under(output)) or 'emptied'}")
    for folder, what in ((job.root / "cwd", "working folder"), (job.root / "tmp", "temporary folder")):
        files = [f for f in _files_under(folder) if f not in RUNTIME_TEMP_FILES]
        if files:
            problems.append(f"files left in the {what}: {', '.join(files)}")
        elif any(folder.iterdir()):
            notes.append(f"empty folders left in the {what}")
    if outcome_stdout := _read(job.root / "stdout"):
        notes.append(f"stdout not empty: {outcome_stdout[:100]!r}")
    return problems


def onnxruntime_verdict(path: Path, hints: Mapping[str, np.ndarray]) -> str:
    """'runs' when ONNX Runtime loads the model and runs it on plausible inputs, else 'rejects: why'."""
    options = onnxruntime.SessionOptions()
    options.intra_op_num_threads = options.inter_op_num_threads = 1
    options.graph_optimization_level = onnxruntime.GraphOptimizationLevel.ORT_DISABLE_ALL
    options.log_severity_level = 4
    try:
        session = onnxruntime.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
    except Exception as error:  # noqa: BLE001  any failure to load is a rejection
        return f"rejects: cannot load: {_first_line(error)}"
    try:
        feeds = {}
        for spec in session.get_inputs():
            dtype = _ORT_TYPES.get(spec.type)
            if dtype is None:
                return f"rejects: input '{spec.name}' has type {spec.type}"
            hint = hints.get(spec.name)
            dims = list(spec.shape or [])
            if hint is not None and hint.ndim == len(dims):
                shape = [d if isinstance(d, int) and d >= 0 else h for d, h in zip(dims, hint.shape)]
            else:
                shape = [d if isinstance(d, int) and d >= 0 else 1 for d in dims]
            size = int(np.prod(shape, dtype=np.float64)) * dtype.itemsize
            if size > MAX_ORACLE_INPUT_BYTES:
                return f"rejects: input '{spec.name}' of shape {shape} needs {size} bytes"
            if hint is not None and list(hint.shape) == shape:
                feeds[spec.name] = hint.astype(dtype)
            else:
                feeds[spec.name] = np.ones(shape, dtype)
        session.run(None, feeds)
    except Exception as error:  # noqa: BLE001  any failure to run is a rejection
        return f"rejects: cannot run: {_first_line(error)}"
    return "runs"


_ORT_TYPES = {f"tensor({name})": np.dtype(dtype) for name, dtype in (
    ("float", "float32"), ("double", "float64"), ("float16", "float16"), ("int8", "int8"), ("int16", "int16"),
    ("int32", "int32"), ("int64", "int64"), ("uint8", "uint8"), ("uint16", "uint16"), ("uint32", "uint32"),
    ("uint64", "uint64"), ("bool", "bool"))}


# ---------------------------------------------------------------------------------------------------------------
# Small helpers.


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as file:
        for block in iter(lambda: file.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _snapshot(folder: Path) -> dict[str, str]:
    """Every entry under `folder`: a hash for files, the target for links, the kind for anything else."""
    entries = {}
    for parent, dirs, files in os.walk(folder):
        for name in dirs + files:
            path = Path(parent) / name
            info = path.lstat()
            key = str(path.relative_to(folder))
            if stat.S_ISLNK(info.st_mode):
                entries[key] = f"link to {os.readlink(path)}"
            elif stat.S_ISREG(info.st_mode):
                entries[key] = _sha256(path)
            else:
                entries[key] = f"mode {stat.S_IFMT(info.st_mode):o}"
    return entries


def _files_under(folder: Path) -> list[str]:
    return sorted(str(p.relative_to(folder)) for p in folder.rglob("*") if not p.is_dir())


def _read(path: Path) -> str:
    return path.read_text(errors="replace") if path.exists() else ""


def _first_line(error: BaseException) -> str:
    return next((line.strip() for line in str(error).splitlines() if line.strip()), type(error).__name__)[:200]


def _cause(outcome: Outcome) -> str:
    """What a failure is about, with paths and numbers masked, so that failures group by cause."""
    line = outcome.stderr.strip().splitlines()[-1] if outcome.stderr.strip() else ""
    line = re.sub(r"/tmp/\S+?/(in|out)/", "", line)
    line = re.sub(r"'[^']*'", "'…'", line)
    line = re.sub(r"\d+", "N", line)
    return f"{'; '.join(outcome.problems)} | {line[:160]}"


def summarize(kept: Sequence[Outcome], dropped: Sequence[Outcome], sources: Sequence[Source],
              seconds: float) -> str:
    lines = [f"{len(kept)} variants in {seconds:.0f} s ({len(dropped)} more dropped: ONNX Runtime ran them)"]
    for source in sources:
        failed = sum(o.failed for o in kept if o.category == source.name)
        lines.append(f"  {source.name:52} {source.kept:4} kept  {source.dropped:4} dropped  {failed:4} failed")
    exits = Counter(o.exit_code for o in kept)
    lines.append(f"exit codes: {dict(sorted(exits.items(), key=str))}")
    groups: dict[str, list[Outcome]] = defaultdict(list)
    for outcome in kept:
        if outcome.failed:
            groups[_cause(outcome)].append(outcome)
    if groups:
        lines.append(f"{sum(len(g) for g in groups.values())} failures in {len(groups)} groups:")
    for cause, members in sorted(groups.items(), key=lambda item: -len(item[1])):
        lines.append(f"- {len(members)} x {cause}")
        for outcome in members[:3]:
            lines.append(f"    [{outcome.category}] {outcome.description}")
            lines.append(f"      optimize {' '.join(outcome.argv)}")
            lines.append(f"      exit {outcome.exit_code}, stderr: {outcome.stderr.strip()[:300]!r}")
    return "\n".join(lines)


def _write_report(kept: Sequence[Outcome], dropped: Sequence[Outcome], suffix: str = "") -> None:
    destination = os.environ.get("HWOPT_ROBUSTNESS_REPORT")
    if destination:
        destination = Path(destination)
        destination.with_stem(destination.stem + suffix).write_text(json.dumps(
            {"kept": [o.__dict__ for o in kept], "dropped": [o.__dict__ for o in dropped]}, indent=1))


# ---------------------------------------------------------------------------------------------------------------
# The tests.


def _seeded(name: str) -> random.Random:
    return random.Random(f"{SEED}:{name}")


def test_the_unbroken_models_optimize(tmp_path, yolov8n, silero_vad, zoo_hashes):
    """Each command line the variants use succeeds on the unbroken model: their failures mean something."""
    model_bytes, weights = mutations.with_external_data(yolov8n.data)
    unbroken = [Variant(f"unbroken ({s.name})", " ".join(args), args, {**s.extra_files, MODEL: s.data},
                        exit_codes=frozenset({0}))
                for s in (yolov8n, silero_vad) for args in s.arg_sets]
    unbroken.append(Variant("unbroken (yolov8n)", "weights in an external data file", yolov8n.arg_sets[0],
                            {MODEL: model_bytes, mutations.DATA: weights}, exit_codes=frozenset({0})))
    outcomes, _ = run_variants([Source("unbroken", iter(unbroken))], tmp_path, {})

    failures = [o for o in outcomes if o.exit_code != 0 or o.signal is not None or o.timed_out]
    assert not failures, "\n".join(f"{o.category} {o.description}: exit {o.exit_code}, {o.stderr.strip()}"
                                   for o in failures)


def test_broken_models_fail_with_a_one_line_error(tmp_path, yolov8n, silero_vad, zoo_hashes):
    sources = [
        Source("truncated (yolov8n)", mutations.truncations(yolov8n, _seeded("truncated")), 120),
        Source("garbage (yolov8n)", mutations.garbage(yolov8n, _seeded("garbage")), 50),
        Source("not ONNX (yolov8n)", mutations.not_onnx(yolov8n)),
        Source("corrupted structure (yolov8n)", mutations.corrupted_structure(yolov8n, _seeded("structure")), 200),
        Source("semantic (yolov8n)", mutations.semantic(yolov8n)),
        Source("external data (yolov8n)", mutations.external_data(yolov8n)),
        Source("bad usage (yolov8n)", mutations.bad_usage(yolov8n)),
        Source("truncated (silero-vad)", mutations.truncations(silero_vad, _seeded("silero truncated")), 30),
        Source("corrupted structure (silero-vad)",
               mutations.corrupted_structure(silero_vad, _seeded("silero structure")), 50),
        Source("broken subgraph (silero-vad)", mutations.silero_subgraphs(silero_vad)),
    ]
    feeds = {s.name: s.oracle_feeds for s in (yolov8n, silero_vad)}
    started = time.monotonic()
    kept, dropped = run_variants(sources, tmp_path, feeds)
    seconds = time.monotonic() - started
    summary = summarize(kept, dropped, sources, seconds)
    print(summary)
    _write_report(kept, dropped)

    assert len(kept) >= MIN_VARIANTS, summary
    assert not [o for o in kept if o.failed], summary


def test_broken_models_fail_without_verification(tmp_path, yolov8n, silero_vad, zoo_hashes):
    """Without verification hwopt's own checks must catch every broken model: with --no-benchmark too, ONNX
    Runtime never sees it; with benchmarking on, the timing run is the first to load it."""

    def unverified(variants: Iterator[Variant], flags: tuple[str, ...]) -> Iterator[Variant]:
        for variant in variants:
            if variant.description.endswith(f"set to {1 << 40}"):
                continue  # a huge but well-formed static dim is only wrong once something runs the model
            args = (*variant.args, *(f for f in flags if f not in variant.args))
            yield replace(variant, category=f"{variant.category} {' '.join(flags)}", args=args)

    checks_only = ("--no-verify", "--no-benchmark")
    sources = [
        Source("semantic (yolov8n) " + " ".join(checks_only), unverified(mutations.semantic(yolov8n), checks_only)),
        Source("external data (yolov8n) " + " ".join(checks_only),
               unverified(mutations.external_data(yolov8n), checks_only)),
        Source("broken subgraph (silero-vad) " + " ".join(checks_only),
               unverified(mutations.silero_subgraphs(silero_vad), checks_only)),
        Source("semantic (yolov8n) --no-verify", unverified(mutations.semantic(yolov8n), ("--no-verify",))),
    ]
    feeds = {s.name: s.oracle_feeds for s in (yolov8n, silero_vad)}
    started = time.monotonic()
    kept, dropped = run_variants(sources, tmp_path, feeds)
    summary = summarize(kept, dropped, sources, time.monotonic() - started)
    print(summary)
    _write_report(kept, dropped, "-no-verify")

    assert not [o for o in kept if o.failed], summary


def test_the_console_script_fails_cleanly(tmp_path, yolov8n, silero_vad, zoo_hashes):
    """A few variants through the real `optimize` executable: the same contract, in a fresh interpreter."""
    script = Path(sys.executable).with_name("optimize")
    command = [str(script)] if script.exists() else [sys.executable, "-m", "optimizer"]
    truncated = mutations.truncations(yolov8n, _seeded("script"))
    corrupt = {v.description: v for v in (next(truncated) for _ in range(7))}
    picks = [
        *(v for d, v in corrupt.items() if d.startswith(("empty file", "header only"))),
        next(v for v in mutations.garbage(yolov8n, _seeded("script")) if "zero bytes" in v.description),
        *(v for v in mutations.not_onnx(yolov8n) if v.description in ("a small PNG image",
                                                                      "a zip archive holding the model")),
        next(mutations.semantic(yolov8n)),
        next(v for v in mutations.semantic(yolov8n) if v.description.startswith("cycle")),
        next(v for v in mutations.external_data(yolov8n) if "../../etc/passwd" in v.description),
        *(v for v in mutations.bad_usage(yolov8n) if v.description in ("unknown target",
                                                                       "the model file does not exist")),
        next(mutations.silero_subgraphs(silero_vad)),
    ]
    outcomes = []
    for n, variant in enumerate(picks):
        job = _prepare(variant, tmp_path / f"{n:02d}")
        started = time.monotonic()
        try:
            result = subprocess.run([*command, *job.argv], check=False, cwd=job.root / "cwd", capture_output=True, text=True,
                                    timeout=TIMEOUT_S, env={**os.environ, "TMPDIR": str(job.root / "tmp")},
                                    stdin=subprocess.DEVNULL)
            code, killed, hung, out, err = result.returncode, None, False, result.stdout, result.stderr
        except subprocess.TimeoutExpired as expired:
            code, killed, hung, out, err = None, None, True, expired.stdout or "", expired.stderr or ""
        if code is not None and code < 0:
            code, killed = None, -code
        (job.root / "stdout").write_text(out if isinstance(out, str) else out.decode(errors="replace"))
        outcome = Outcome(variant.category, variant.description, job.argv, code, killed, hung,
                          time.monotonic() - started, out, err, None, [], [])
        outcome.problems = _contract_problems(outcome, variant.exit_codes) + _leftovers(job, outcome.notes)
        outcomes.append(outcome)

    assert len(outcomes) >= 10
    failed = [o for o in outcomes if o.failed]
    assert not failed, "\n".join(f"[{o.category}] {o.description}: {'; '.join(o.problems)}; exit {o.exit_code}, "
                                 f"stderr {o.stderr.strip()[:300]!r}" for o in failed)
