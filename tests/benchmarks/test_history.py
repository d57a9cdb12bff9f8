import sqlite3

import pytest

from optimizer.benchmarks.history import History, HistoryError, default_history_path


def test_runs_are_stored_and_found_by_id_prefix_model_and_device(make_report, tmp_path):
    with History(tmp_path / "h.sqlite") as history:
        first = make_report(created="2026-01-01T00:00:00+00:00")
        second = make_report(created="2026-01-02T00:00:00+00:00", device="Jetson", kind="estimated")
        other = make_report(created="2026-01-03T00:00:00+00:00",
                            model=type(first.model)("other", "/m", "cd" * 32, 1))
        for report in (first, second, other):
            history.add(report)
        assert len(history) == 3
        assert history.get(first.id[:6]) == first
        assert [r.id for r in history.runs()] == [first.id, second.id, other.id]  # oldest first
        assert [r.id for r in history.runs(model="tiny")] == [first.id, second.id]
        assert [r.id for r in history.runs(device="Jetson")] == [second.id]
        assert [r.id for r in history.runs(kind="measured")] == [first.id, other.id]
        assert [r.id for r in history.runs(limit=2)] == [second.id, other.id]  # the latest two


def test_a_missing_or_ambiguous_id_is_named(make_report, tmp_path):
    with History(tmp_path / "h.sqlite") as history:
        a, b = make_report(id="aaa111"), make_report(id="aaa222")
        history.add(a)
        history.add(b)
        with pytest.raises(HistoryError, match="no run 'zzz'"):
            history.get("zzz")
        with pytest.raises(HistoryError, match="matches 2 runs"):
            history.get("aaa")


def test_a_file_that_is_not_a_history_is_a_clear_error(make_report, tmp_path):
    path = tmp_path / "h.sqlite"
    path.write_bytes(b"not a database at all" * 100)
    with pytest.raises(HistoryError, match="cannot open the benchmark history"):
        History(path)


def test_a_history_from_another_schema_version_is_refused(make_report, tmp_path):
    path = tmp_path / "h.sqlite"
    History(path).close()
    with sqlite3.connect(path) as db:
        db.execute("UPDATE meta SET value = '99' WHERE key = 'schema_version'")
    with pytest.raises(HistoryError, match="schema version 99"):
        History(path)


def test_the_default_file_follows_the_environment(monkeypatch, tmp_path):
    monkeypatch.delenv("HWOPT_HISTORY", raising=False)
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path))
    assert default_history_path() == tmp_path / "hwopt" / "history.sqlite"
    monkeypatch.setenv("HWOPT_HISTORY", str(tmp_path / "mine.sqlite"))
    assert default_history_path() == tmp_path / "mine.sqlite"


def test_an_id_prefix_is_not_a_pattern(make_report, tmp_path):
    with History(tmp_path / "h.sqlite") as history:
        history.add(make_report(id="abc123"))
        for pattern in ("%", "_bc", ""):
            with pytest.raises(HistoryError, match="no run"):
                history.get(pattern)
