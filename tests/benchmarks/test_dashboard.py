"""The dashboard page (self-contained, runs embedded safely) and `optimize dashboard` (its flags, errors and
estimates). The page drawing in a real browser is tested in test_dashboard_browser.py."""

import dataclasses
import json
import re
import sys
from pathlib import Path

import pytest
from optimizer.benchmarks.dashboard import render_dashboard, write_dashboard
from optimizer.benchmarks.dashboard.estimates import find_onnx
from optimizer.benchmarks.dashboard.page import ASSETS, SCRIPTS, embed_json
from optimizer.benchmarks.history import History

from optimizer.cli import main

sys.path.insert(0, str(Path(__file__).parent))  # --import-mode=importlib puts no test folder on sys.path
from dashboard_history import JETSON, realistic_runs, write_history

RUNS_SCRIPT = re.compile(r'<script type="application/json" id="hwopt-runs">(.*?)</script>', re.DOTALL)


def embedded(page: str) -> dict:
    return json.loads(RUNS_SCRIPT.search(page).group(1))


@pytest.fixture
def runs(tmp_path):
    return realistic_runs(tmp_path / "models")


@pytest.fixture
def measured_history(runs, tmp_path):
    return write_history(tmp_path / "history.sqlite", [run for run in runs if run.kind == "measured"])


def test_the_page_is_self_contained(runs):
    page = render_dashboard(runs)

    assert not re.search(r"""(src|href)\s*=\s*["']?\s*(https?:|//)""", page, re.IGNORECASE)
    assert "http://" not in page and "https://" not in page
    assert "@import" not in page and not re.search(r"url\(\s*['\"]?(https?:|//)", page)
    assert "default-src 'none'" in page  # and the browser blocks any request the page might still make
    for name in (*SCRIPTS, "dashboard.css"):
        assert (ASSETS / name).read_text(encoding="utf-8").strip() in page
    assert not re.search(r"\{\{\w+\}\}", page)  # every placeholder filled


def test_the_runs_are_embedded_whole(runs):
    data = embedded(render_dashboard(runs, title="nightly"))

    assert data["title"] == "nightly"
    assert data["runs"] == [run.to_dict() for run in runs]
    kinds = {run["model"]["name"]: set() for run in data["runs"]}
    for run in data["runs"]:
        kinds[run["model"]["name"]].add(run["kind"])
    assert all(found == {"measured", "estimated"} for found in kinds.values())


def test_no_text_in_a_run_can_close_the_script_or_start_markup(runs):
    name = '</script><script>alert("x")</script><!--'
    hostile = dataclasses.replace(runs[0], model=dataclasses.replace(runs[0].model, name=name))
    page = render_dashboard([hostile], title="<b>mine</b> & co")

    assert "<" not in RUNS_SCRIPT.search(page).group(1)
    assert page.count("</script>") == 3  # the error hook, the runs and the dashboard's own scripts
    assert embedded(page)["runs"][0]["model"]["name"] == name
    assert "<title>&lt;b&gt;mine&lt;/b&gt; &amp; co</title>" in page


def test_figures_json_cannot_hold_become_null():
    assert json.loads(embed_json({"p50": float("nan"), "throughput": [float("inf"), 1.5]})) == \
        {"p50": None, "throughput": [None, 1.5]}


def test_the_page_is_written_atomically(runs, tmp_path):
    folder = tmp_path / "out"
    folder.mkdir()
    output = folder / "dashboard.html"
    output.write_text("old page")
    with pytest.raises(AttributeError):
        write_dashboard([object()], output)
    assert output.read_text() == "old page"

    assert write_dashboard(runs, output) == output
    assert embedded(output.read_text(encoding="utf-8"))["runs"]
    assert [path.name for path in folder.iterdir()] == ["dashboard.html"]  # no temporary left behind


def test_the_command_writes_the_page_and_says_where(measured_history, tmp_path, capsys):
    output = tmp_path / "page.html"
    assert main(["dashboard", "--db", str(measured_history), "-o", str(output), "--title", "CPU runs"]) == 0

    assert capsys.readouterr().out.strip() == f"wrote {output} (12 runs, 0 estimated)"
    data = embedded(output.read_text(encoding="utf-8"))
    assert data["title"] == "CPU runs" and len(data["runs"]) == 12


def test_estimates_are_added_for_each_model_and_measured_precision_but_not_stored(measured_history, tmp_path,
                                                                                  capsys):
    output = tmp_path / "page.html"
    assert main(["dashboard", "--db", str(measured_history), "-o", str(output), "--estimate", JETSON,
                 "--json"]) == 0

    summary = json.loads(capsys.readouterr().out)
    assert summary == {"output": str(output), "runs": 18, "estimated": 6, "notes": []}
    estimated = [run for run in embedded(output.read_text(encoding="utf-8"))["runs"] if run["kind"] == "estimated"]
    assert {(run["model"]["name"], run["precision"]) for run in estimated} == \
        {(model, precision) for model in ("vision-cnn", "text-encoder") for precision in ("fp32", "fp16", "int8")}
    assert all(run["target"] == JETSON and [b["batch"] for b in run["batches"]] == [1, 4, 16] for run in estimated)
    assert all(run["model"]["inputs"] in ({"image": [1, 3, 224, 224]}, {"tokens": [1, 128, 256]})
               for run in estimated)
    with History(measured_history) as history:
        assert len(history) == 12


def test_a_precision_the_profile_lacks_and_a_model_no_longer_on_disk_are_noted(measured_history, runs, tmp_path,
                                                                               capsys):
    for run in runs:
        if run.model.name == "text-encoder":
            Path(run.model.path).unlink(missing_ok=True)
    output = tmp_path / "page.html"
    assert main(["dashboard", "--db", str(measured_history), "-o", str(output), "--estimate", "rpi4"]) == 0

    err = capsys.readouterr().err
    assert "'text-encoder' not estimated: no .onnx found" in err and "--estimate-model text-encoder=" in err
    assert "'vision-cnn' not estimated on rpi4 at fp16" in err
    estimated = [run for run in embedded(output.read_text(encoding="utf-8"))["runs"] if run["kind"] == "estimated"]
    assert sorted(run["precision"] for run in estimated) == ["fp32", "int8"]


def test_estimate_model_names_the_onnx_to_estimate_from(measured_history, runs, tmp_path, capsys):
    model = tmp_path / "elsewhere.onnx"
    Path(next(run for run in runs if run.model.name == "vision-cnn").model.path).rename(model)
    output = tmp_path / "page.html"
    assert main(["dashboard", "--db", str(measured_history), "-o", str(output), "--model", "vision-cnn",
                 "--estimate", JETSON, "--estimate-model", f"vision-cnn={model}", "--quiet"]) == 0

    assert capsys.readouterr() == ("", "")
    page_runs = embedded(output.read_text(encoding="utf-8"))["runs"]
    assert {run["model"]["name"] for run in page_runs} == {"vision-cnn"}
    assert {run["model"]["path"] for run in page_runs if run["kind"] == "estimated"} == {str(model)}


@pytest.mark.parametrize("arguments, code, message", [
    (["--db", "{tmp}/none.sqlite"], 1, "no benchmark history there; record runs with `optimize bench"),
    (["--db", "{empty}"], 1, "the benchmark history is empty; record runs with `optimize bench"),
    (["--db", "{db}", "--model", "resnet"], 2, "--model resnet: not in"),
    (["--db", "{db}", "--estimate", "nonesuch"], 2, "unknown target 'nonesuch'"),
    (["--db", "{db}", "--estimate", "cpu"], 2, "--estimate cpu: the profile has no datasheet peak"),
    (["--db", "{db}", "--estimate-model", "{tmp}/m.onnx"], 2, "no such file"),
    (["--db", "{db}", "--estimate-model", "{db}"], 2, "--estimate-model needs --estimate TARGET"),
    (["--db", "{db}", "-o", "{tmp}/missing/page.html"], 2, "does not exist"),
    (["--db", "{db}", "-o", "{tmp}"], 2, "is a directory"),
])
def test_command_errors_are_one_line_with_the_exit_code(arguments, code, message, measured_history, tmp_path,
                                                        capsys):
    empty = tmp_path / "empty.sqlite"
    History(empty).close()
    values = {"tmp": tmp_path, "db": measured_history, "empty": empty}
    assert main(["dashboard", *(argument.format(**values) for argument in arguments)]) == code

    err = capsys.readouterr().err
    assert err.startswith("optimize: error: ") and message in err and err.count("\n") == 1
    assert not (tmp_path / "none.sqlite").exists()  # a mistyped --db is not created


def test_an_artifact_folder_is_estimated_from_its_source_model(tmp_path, runs):
    source = tmp_path / "original.onnx"
    source.write_bytes(b"onnx")
    artifact = tmp_path / "original-hwopt"
    artifact.mkdir()
    (artifact / "model.onnx").write_bytes(b"onnx")
    (artifact / "report.json").write_text(json.dumps({"source": str(source)}))
    report = dataclasses.replace(runs[0], model=dataclasses.replace(runs[0].model, path=str(artifact)))
    assert find_onnx([report]) == source

    source.unlink()
    assert find_onnx([report]) == artifact / "model.onnx"
    (artifact / "model.onnx").unlink()
    assert find_onnx([report]) is None
