"""Progress on stderr for long work (calibration, accuracy search, benchmarks), drawn only for a person.

A bar is drawn only when stderr is a terminal and the command was not asked to be quiet or to print JSON, so
scripts, CI logs and piped output never see carriage returns. Work reports progress through a plain callable,
`progress(stage, fraction)`, and knows nothing about terminals. Work deep inside a pipeline (calibration, the
accuracy search) calls `report_progress`, which reaches the bar the command put up with `showing(bar)`, so no
callback has to be threaded through every layer between the command and the loop.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from typing import TextIO

_active: ContextVar[Callable[[str, float], None] | None] = ContextVar("hwopt_progress", default=None)

BAR_WIDTH = 24
REDRAW_SECONDS = 0.1


class ProgressBar:
    """`bar(stage, fraction)` redraws one line; a new stage ends the previous one's line."""

    def __init__(self, stream: TextIO | None = None, *, enabled: bool | None = None) -> None:
        self.stream = stream or sys.stderr
        self.enabled = self.stream.isatty() if enabled is None else enabled
        self._stage: str | None = None
        self._drawn = 0.0

    def __call__(self, stage: str, fraction: float) -> None:
        if not self.enabled:
            return
        now = time.monotonic()
        finished = fraction >= 1.0
        if stage == self._stage and not finished and now - self._drawn < REDRAW_SECONDS:
            return
        if self._stage is not None and stage != self._stage:
            self.stream.write("\n")
        self._stage, self._drawn = stage, now
        filled = round(BAR_WIDTH * min(max(fraction, 0.0), 1.0))
        self.stream.write(f"\r{stage:<24} [{'#' * filled}{'.' * (BAR_WIDTH - filled)}] {fraction:4.0%}")
        self.stream.flush()

    def close(self) -> None:
        if self.enabled and self._stage is not None:
            self.stream.write("\n")
            self.stream.flush()
        self._stage = None


def progress_for(args) -> ProgressBar | None:
    """The bar for a command's parsed `args` (None under --quiet or --json)."""
    if getattr(args, "quiet", False) or getattr(args, "json", False):
        return None
    bar = ProgressBar()
    return bar if bar.enabled else None


@contextmanager
def showing(bar: ProgressBar | None) -> Iterator[None]:
    """Send `report_progress` calls made inside the block to `bar` (None: nowhere), and end its line after."""
    token = _active.set(bar)
    try:
        yield
    finally:
        _active.reset(token)
        if bar is not None:
            bar.close()


def report_progress(stage: str, fraction: float) -> None:
    """Progress of long work, shown when a command is showing a bar; free otherwise."""
    bar = _active.get()
    if bar is not None:
        bar(stage, fraction)
