"""The local history of benchmark runs: one SQLite file, one row per run report.

The full report is kept as JSON (so nothing is lost and old rows read back as they were written); the columns
beside it are what runs are looked up and sorted by. The default file lives in the user's data directory
(`$XDG_DATA_HOME/hwopt/history.sqlite`, else `~/.local/share/hwopt/history.sqlite`); `HWOPT_HISTORY` or `--db`
choose another.
"""

from __future__ import annotations

import os
import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Self

from optimizer.benchmarks.run_report import RunReport, RunReportError
from optimizer.errors import HwoptError

HISTORY_SCHEMA_VERSION = 1

_SCHEMA = """
CREATE TABLE IF NOT EXISTS runs (
    id TEXT PRIMARY KEY,
    created TEXT NOT NULL,
    model TEXT NOT NULL,
    device TEXT NOT NULL,
    target TEXT NOT NULL,
    runtime TEXT NOT NULL,
    precision TEXT NOT NULL,
    kind TEXT NOT NULL,
    label TEXT NOT NULL,
    p50_ms REAL,
    report TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS runs_by_model ON runs (model, created);
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
"""


class HistoryError(HwoptError):
    """A history file that cannot be opened, or a run that is not in it."""


def default_history_path() -> Path:
    if os.environ.get("HWOPT_HISTORY"):
        return Path(os.environ["HWOPT_HISTORY"])
    data_home = os.environ.get("XDG_DATA_HOME") or Path.home() / ".local" / "share"
    return Path(data_home) / "hwopt" / "history.sqlite"


class History:
    """Run reports stored in one SQLite file; `with History(path) as history:` closes it."""

    def __init__(self, path: str | os.PathLike | None = None) -> None:
        self.path = Path(path) if path is not None else default_history_path()
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._db = sqlite3.connect(self.path)
            self._db.executescript(_SCHEMA)
            stored = self._db.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone()
            if stored is None:
                with self._db:
                    self._db.execute("INSERT INTO meta VALUES ('schema_version', ?)", (str(HISTORY_SCHEMA_VERSION),))
            elif int(stored[0]) != HISTORY_SCHEMA_VERSION:
                raise HistoryError(f"{self.path}: history schema version {stored[0]} is not "
                                   f"{HISTORY_SCHEMA_VERSION}; use another --db")
        except (OSError, sqlite3.Error) as error:
            raise HistoryError(f"{self.path}: cannot open the benchmark history ({error})") from None

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def close(self) -> None:
        self._db.close()

    def add(self, report: RunReport) -> str:
        """Store a run (replacing a run with the same id) and return its id."""
        row = (report.id, report.created, report.model.name, report.device, report.target, report.runtime,
               report.precision, report.kind, report.label, report.p50_ms, report.to_json())
        with self._guard(), self._db:
            self._db.execute("INSERT OR REPLACE INTO runs VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)", row)
        return report.id

    def get(self, run_id: str) -> RunReport:
        """A run by its id, or by a unique prefix of it."""
        with self._guard():
            rows = self._db.execute("SELECT id, report FROM runs WHERE substr(id, 1, length(?)) = ?",
                                    (run_id, run_id)).fetchall() if run_id else []
        if not rows:
            raise HistoryError(f"{self.path}: no run '{run_id}'")
        if len(rows) > 1:
            raise HistoryError(f"{self.path}: '{run_id}' matches {len(rows)} runs; give more of the id")
        return self._report(*rows[0])

    def runs(self, *, model: str | None = None, device: str | None = None, kind: str | None = None,
             limit: int | None = None) -> list[RunReport]:
        """Runs, oldest first, optionally only one model's, one device's or one kind's (the latest `limit`)."""
        query, arguments = "SELECT id, report FROM runs", []
        conditions = [(column, value) for column, value in (("model", model), ("device", device), ("kind", kind))
                      if value is not None]
        if conditions:
            query += " WHERE " + " AND ".join(f"{column} = ?" for column, _ in conditions)
            arguments += [value for _, value in conditions]
        query += " ORDER BY created DESC, rowid DESC"
        if limit is not None:
            query += " LIMIT ?"
            arguments.append(limit)
        with self._guard():
            rows = self._db.execute(query, arguments).fetchall()
        return [self._report(*row) for row in reversed(rows)]

    def __len__(self) -> int:
        with self._guard():
            return self._db.execute("SELECT COUNT(*) FROM runs").fetchone()[0]

    def _report(self, run_id: str, text: str) -> RunReport:
        try:
            return RunReport.from_json(text)
        except RunReportError as error:
            raise HistoryError(f"{self.path}: run {run_id}: {error}") from None

    @contextmanager
    def _guard(self) -> Iterator[None]:
        try:
            yield
        except sqlite3.Error as error:
            raise HistoryError(f"{self.path}: {error}") from None
