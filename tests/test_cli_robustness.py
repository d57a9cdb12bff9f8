"""The CLI fails cleanly on broken models: over 500 truncated, corrupted and mutated variants of real models.

Every variant (tests/mutations/) must end with exit code 1 or 2 (2 for bad usage) and exactly one line
on stderr, `optimize: error: ...`; `optimize: internal error: ...` is a bug in hwopt. None may crash or hang,
the input files must be unchanged afterwards, and no output may be left behind (tests/cli_outcomes.py).

Each variant runs in a forked child of this process (tests/cli_harness.py); variants that are not invalid by
construction are first tried in ONNX Runtime, and dropped if it can load and run them (tests/onnxruntime_oracle.py).
A handful of variants also run through the real `optimize` console script.

`HWOPT_ROBUSTNESS_REPORT=path.json` writes every outcome to a file; `HWOPT_FUZZ_SEED` changes the random draws.
"""

from __future__ import annotations

import io
import os
import random
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
from optimizer.benchmarks import zoo

sys.path.insert(0, str(Path(__file__).parent))  # --import-mode=importlib puts no test folder on sys.path
import mutations
from cli_harness import Source, leftovers, prepare, run_variants, sha256
from cli_outcomes import TIMEOUT_S, Outcome, contract_problems, summarize, write_report
from mutations import MODEL, Subject, Variant

pytestmark = [pytest.mark.zoo, pytest.mark.slow]

MIN_VARIANTS = 500
SEED = int(os.environ.get("HWOPT_FUZZ_SEED", "20241124"))


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
    before = {p: sha256(p) for p in paths}
    yield
    assert {p: sha256(p) for p in paths} == before


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
    write_report(kept, dropped)

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
    write_report(kept, dropped, "-no-verify")

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
        job = prepare(variant, tmp_path / f"{n:02d}")
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
        outcome.problems = contract_problems(outcome, variant.exit_codes) + leftovers(job, outcome.notes)
        outcomes.append(outcome)

    assert len(outcomes) >= 10
    failed = [o for o in outcomes if o.failed]
    assert not failed, "\n".join(f"[{o.category}] {o.description}: {'; '.join(o.problems)}; exit {o.exit_code}, "
                                 f"stderr {o.stderr.strip()[:300]!r}" for o in failed)
