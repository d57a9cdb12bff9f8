import json

import pytest

from optimizer.benchmarks.run_report import BatchResult, LatencySummary, RunReport, RunReportError


def test_a_report_reads_back_as_it_was_written(make_report, tmp_path):
    report = make_report()
    path = tmp_path / "run.json"
    report.write(path)
    assert RunReport.read(path) == report
    assert not [p for p in tmp_path.iterdir() if p.name != "run.json"]  # no temporary left behind


def test_the_headline_latency_is_the_smallest_batch(make_report):
    fast = LatencySummary(1.0, 1.0, 1.0, 1.0, 0.0, 1.0, 1.0, 10, 1.0, 1.0)
    report = make_report()
    report.batches.insert(0, BatchResult(8, fast, 8000.0))
    assert report.p50_ms == 5.0


@pytest.mark.parametrize("damage, message", [
    (lambda d: d.update(schema_version=99), "schema version 99"),
    (lambda d: d.pop("model"), "not a valid run report"),
    (lambda d: d["batches"][0].pop("latency"), "not a valid run report"),
])
def test_a_damaged_report_is_refused_with_a_reason(make_report, damage, message):
    data = make_report().to_dict()
    damage(data)
    with pytest.raises(RunReportError, match=message):
        RunReport.from_json(json.dumps(data))


def test_unknown_fields_from_a_newer_writer_are_ignored(make_report):
    data = make_report().to_dict()
    data["something_new"] = 1
    assert RunReport.from_dict(data).model.name == "tiny"


def test_a_report_that_cannot_be_written_names_the_path_and_leaves_nothing(make_report, tmp_path):
    with pytest.raises(RunReportError, match="missing/run.json: cannot write the run report"):
        make_report().write(tmp_path / "missing" / "run.json")
    assert list(tmp_path.iterdir()) == []
