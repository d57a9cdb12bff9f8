"""Runs `optimizer.cli.main` on many variants, each in a forked child, and judges how each run ended.

Launching hundreds of interpreters would take minutes, so the CLI is imported once and each variant runs in a
forked child (`optimizer.cli.main(argv)`, its stdout/stderr redirected at the file-descriptor level, so that output
from C++ libraries counts too); the parent waits with a timeout and sees a crash as a death by signal.

Variants that are not invalid by construction (random truncations, corrupted bytes) are first tried in ONNX
Runtime, in the same child; one that it can load and run is dropped and another is generated.

Each variant gets a folder of its own: `in` (its files), `out` (the output folder), `cwd` (the working folder) and
`tmp` ($TMPDIR). After the run the inputs must be unchanged and nothing may be left in the other three.
"""

from __future__ import annotations

import gc
import io
import os
import shutil
import signal
import stat
import sys
import tempfile
import time
import traceback
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from cli_outcomes import TIMEOUT_S, Outcome, contract_problems
from mutations import MODEL, Variant
from onnxruntime_oracle import onnxruntime_verdict

import optimizer.api  # imported once here, so that forked children start warm
import optimizer.cli
from optimizer.artifact import sha256_of as sha256

WORKERS = 2
MAX_TRIES_PER_KEPT = 6
"""A random category gives up after this many candidates per variant it needs (most are dropped by then)."""
DROPPED_EXIT = 121
"""Exit status of a child whose variant ONNX Runtime could load and run: not broken, so not held against hwopt."""
RUNTIME_TEMP_FILES = {".ses"}
"""Files `import onnxruntime` itself leaves in $TMPDIR (a session id it keeps): not hwopt's to clean up."""


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


@dataclass
class Job:
    """One variant laid out on disk, and its run."""

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
                job = prepare(variant, scratch / f"{counter:04d}")
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


def prepare(variant: Variant, root: Path) -> Job:
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
    # The child must never finalize the parent's objects: garbage left by earlier tests (an ONNX Runtime session
    # or an OpenVINO model in a reference cycle) would be collected in the child, whose destructor then waits on
    # condition variables of threads that fork did not copy (seen: children hanging in pthread_cond_destroy
    # under gc_collect_main). Frozen objects are never collected in the child.
    gc.freeze()
    pid = os.fork()
    if pid == 0:
        _child(job, feeds.get(job.variant.oracle or "", {}))  # never returns
    gc.unfreeze()
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
    outcome.problems.extend(contract_problems(outcome, job.variant.exit_codes))
    outcome.problems.extend(leftovers(job, outcome.notes))
    return outcome, False


def leftovers(job: Job, notes: list[str]) -> list[str]:
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
                entries[key] = sha256(path)
            else:
                entries[key] = f"mode {stat.S_IFMT(info.st_mode):o}"
    return entries


def _files_under(folder: Path) -> list[str]:
    return sorted(str(p.relative_to(folder)) for p in folder.rglob("*") if not p.is_dir())


def _read(path: Path) -> str:
    return path.read_text(errors="replace") if path.exists() else ""

