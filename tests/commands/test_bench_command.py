import json

import pytest

from optimizer.benchmarks.history import History
from optimizer.benchmarks.run_report import RunReport
from optimizer.cli import main
from optimizer.commands.bench import parse_batches, parse_duration


def test_bench_prints_the_run_stores_it_and_writes_the_report(demo_artifact, tmp_path, capsys):
    db, output = tmp_path / "h.sqlite", tmp_path / "run.json"
    assert main(["bench", str(demo_artifact), "--db", str(db), "--time", "0.2s", "--threads", "1",
                 "-o", str(output)]) == 0
    printed = capsys.readouterr().out
    assert "p50" in printed and "samples/s" in printed and "stored as run" in printed
    report = RunReport.read(output)
    with History(db) as history:
        assert history.get(report.id) == report


def test_bench_json_is_the_run_report(demo_artifact, tmp_path, capsys):
    assert main(["bench", str(demo_artifact), "--no-history", "--runs", "12", "--json", "--no-operators"]) == 0
    report = RunReport.from_json(capsys.readouterr().out)
    assert report.batches[0].latency.runs == 12 and report.operators == []


def test_compare_shows_runs_side_by_side_with_speed_ups(demo_artifact, tmp_path, capsys):
    db = str(tmp_path / "h.sqlite")
    for label in ("first", "second"):
        assert main(["bench", str(demo_artifact), "--db", db, "--runs", "15", "--label", label, "-q"]) == 0
    assert main(["compare", "--db", db]) == 0
    table = capsys.readouterr().out
    assert "first" in table and "second" in table and "speed-up vs first" in table and "1.00x" in table
    assert main(["compare", "--db", db, "--json", "--model", "demo"]) == 0
    assert [r["label"] for r in json.loads(capsys.readouterr().out)] == ["first", "second"]


def test_compare_reads_report_files(demo_artifact, tmp_path, capsys):
    paths = [tmp_path / f"{n}.json" for n in "ab"]
    for path in paths:
        main(["bench", str(demo_artifact), "--no-history", "--runs", "10", "-q", "-o", str(path)])
    assert main(["compare", *map(str, paths)]) == 0
    assert capsys.readouterr().out.count("demo") >= 2


@pytest.mark.parametrize("argv, message", [
    (["bench", "{a}", "--batch", "1,x"], "invalid --batch"),
    (["bench", "{a}", "--time", "soon"], "invalid duration"),
    (["bench", "{a}", "--time", "1s", "--runs", "3"], "not allowed with argument"),
    (["bench", "{a}", "--estimate"], "--estimate needs --target"),
    (["bench", "{a}", "--precision", "int8"], "--precision is for --estimate"),
    (["bench", "{a}", "--token", "x"], "--token is for --remote"),
    (["bench", "{a}", "--remote", "http://127.0.0.1:9"], "needs the agent's token"),
    (["bench", "{a}", "--target", "cpu"], "already compiled"),
    (["compare", "--db", "{db}"], "no benchmark history yet"),
    (["compare", "abc", "--model", "m"], "not both"),
])
def test_bad_usage_is_one_line_with_exit_code_2(demo_artifact, tmp_path, capsys, monkeypatch, argv, message):
    monkeypatch.delenv("HWOPT_AGENT_TOKEN", raising=False)
    argv = [a.replace("{a}", str(demo_artifact)).replace("{db}", str(tmp_path / "none.sqlite")) for a in argv]
    assert main([*argv, "--no-history"] if argv[0] == "bench" else argv) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and err.startswith("optimize: error:") and message in err


def test_durations_and_batches_parse():
    assert parse_duration("10s") == 10 and parse_duration("500ms") == 0.5 and parse_duration("2m") == 120
    assert parse_duration("7") == 7 and parse_batches("1,8,32") == [1, 8, 32]
