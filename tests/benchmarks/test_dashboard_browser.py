"""The dashboard renders in a real browser: headless Chromium opens the page `optimize dashboard` writes from a
history of two models, three candidates (FP32, FP16, INT8) measured on the host and estimated for a Jetson,
and every plot must draw, with no error on the page and nothing on the console.

What Chromium prints was checked by experiment (Chromium 156, Debian): with --enable-logging=stderr, every
console message, console.error and uncaught exceptions included, is one `INFO:CONSOLE` line on stderr, with no
level to tell errors apart. The page itself never writes to the console, so any CONSOLE line fails the test.
The rest of stderr is Chromium's own noise (D-Bus, GPU) and is ignored.

Set HWOPT_SCREENSHOT=PATH to keep the screenshot (docs/dashboard.png is made this way).
"""

import dataclasses
import os
import shutil
import subprocess
import sys
from html.parser import HTMLParser
from pathlib import Path

import pytest
from optimizer.benchmarks.dashboard import write_dashboard
from optimizer.benchmarks.history import History
from optimizer.benchmarks.run_report import BatchResult, LatencySummary, ModelInfo, RunReport

from optimizer.cli import main

sys.path.insert(0, str(Path(__file__).parent))  # --import-mode=importlib puts no test folder on sys.path
from dashboard_history import HOST, JETSON, realistic_runs, write_history

PLOTS = {"pareto", "device-bars", "throughput", "operators", "history", "table"}
BROWSERS = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")
BROWSER_TIMEOUT_S = 120


def find_browser() -> str | None:
    return next((path for path in map(shutil.which, BROWSERS) if path), None)


class Elements(HTMLParser):
    """Every element's tag and attributes, the text inside each data-plot section and in #hwopt-status."""

    def __init__(self) -> None:
        super().__init__()
        self.elements: list[tuple[str, dict]] = []
        self.plot_text: dict[str, list[str]] = {}
        self.status_text = ""
        self._in_status = False
        self._open_plots: list[tuple[str, int]] = []
        self._depth = 0

    def handle_starttag(self, tag, attrs):
        attributes = dict(attrs)
        self.elements.append((tag, attributes))
        if tag in ("br", "meta", "link", "input", "img", "hr"):
            return
        self._depth += 1
        self._in_status = attributes.get("id") == "hwopt-status"
        if "data-plot" in attributes:
            self._open_plots.append((attributes["data-plot"], self._depth))
            self.plot_text[attributes["data-plot"]] = []

    def handle_endtag(self, tag):
        self._in_status = False
        if self._open_plots and self._open_plots[-1][1] == self._depth:
            self._open_plots.pop()
        self._depth -= 1

    def handle_data(self, data):
        if self._in_status:
            self.status_text += data
        for name, _ in self._open_plots:
            self.plot_text[name].append(data)

    def with_attribute(self, name: str) -> list[tuple[str, dict]]:
        return [(tag, attributes) for tag, attributes in self.elements if name in attributes]


def rendered_plots(browser: str, page: Path, profile: Path) -> tuple[dict, dict[str, dict]]:
    """(the body's attributes, data-plot name -> the section's attributes) of the page as Chromium drew it."""
    result = run_browser(browser, page, profile, "--dump-dom")
    assert result.returncode == 0, result.stderr[-2000:]
    console = [line for line in result.stderr.splitlines() if "CONSOLE" in line]
    assert not console, "the page wrote to the console:\n" + "\n".join(console)
    dom = Elements()
    dom.feed(result.stdout)
    body = next(attributes for tag, attributes in dom.elements if tag == "body")
    body["errors"] = dom.status_text.strip()  # what the page's error hook recorded, for the failure message
    return body, {attributes["data-plot"]: attributes for _, attributes in dom.with_attribute("data-plot")}


def run_browser(browser: str, page: Path, profile: Path, *arguments: str) -> subprocess.CompletedProcess:
    command = [browser, "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", "--hide-scrollbars",
               f"--user-data-dir={profile}", "--enable-logging=stderr", "--v=0", "--virtual-time-budget=5000",
               *arguments, page.as_uri()]
    return subprocess.run(command, capture_output=True, text=True, timeout=BROWSER_TIMEOUT_S, check=False)


@pytest.fixture(scope="module")
def browser():
    found = find_browser()
    if found is None:
        pytest.skip(f"no headless browser found (looked for {', '.join(BROWSERS)}); "
                    "install Debian's `chromium` (.ci/run does)")
    return found


@pytest.fixture(scope="module")
def dashboard(tmp_path_factory):
    """The page `optimize dashboard` writes from the acceptance history."""
    folder = tmp_path_factory.mktemp("dashboard")
    runs = realistic_runs(folder / "models")
    history = write_history(folder / "history.sqlite", runs)
    with History(history) as stored:
        stored_runs = stored.runs()
    assert {run.device for run in stored_runs if run.kind == "measured"} == {HOST}
    assert {run.target for run in stored_runs if run.kind == "estimated"} == {JETSON}
    assert {run.precision for run in stored_runs} == {"fp32", "fp16", "int8"}
    assert len({run.model.name for run in stored_runs}) == 2

    page = folder / "dashboard.html"
    assert main(["dashboard", "--db", str(history), "-o", str(page), "--quiet"]) == 0
    return page, stored_runs


def test_every_plot_renders_with_no_errors(browser, dashboard, tmp_path):
    page, _ = dashboard
    body, plots = rendered_plots(browser, page, tmp_path / "profile")

    assert body.get("data-status") == "ok", body["errors"]
    assert set(plots) == PLOTS
    for name, attributes in plots.items():
        assert attributes.get("data-rendered") == "true", f"{name} did not render: {attributes}"
        assert "data-error" not in attributes and "data-empty" not in attributes, f"{name}: {attributes}"


def bare_run(**changes) -> RunReport:
    """A measured run with nothing but its latency: no operators, memory, fidelity or environment."""
    latency = LatencySummary(3.0, 3.2, 3.9, 3.1, 0.1, 2.9, 4.0, 50, 2.98, 3.02)
    run = RunReport(model=ModelInfo("bare", "/gone/bare.onnx", "0" * 64, 0), device="Some CPU", target="cpu",
                    runtime="onnxruntime", runtime_version="1.20.1", precision="int8-dynamic",
                    batches=[BatchResult(2, latency, 666.7)], created="2026-01-05T08:00:00+00:00")
    return dataclasses.replace(run, **changes)


@pytest.mark.parametrize("runs, empty", [
    ([], PLOTS),
    ([bare_run()], {"operators"}),
    ([bare_run(), bare_run(batches=[], id="nobatches", created="2026-01-06T08:00:00+00:00")], {"operators"}),
], ids=["no-runs", "one-bare-run", "a-run-without-batches"])
def test_runs_lacking_figures_still_render(browser, runs, empty, tmp_path):
    page = write_dashboard(runs, tmp_path / "page.html")
    body, plots = rendered_plots(browser, page, tmp_path / "profile")

    assert body.get("data-status") == "ok", body["errors"]
    assert all(attributes.get("data-rendered") == "true" for attributes in plots.values()), plots
    assert {name for name, attributes in plots.items() if "data-empty" in attributes} == empty


def test_estimates_are_labelled_in_every_plot_and_never_on_the_measured_front(browser, dashboard, tmp_path):
    page, runs = dashboard
    dom = Elements()
    dom.feed(run_browser(browser, page, tmp_path / "profile", "--dump-dom").stdout)
    text = {name: " ".join(parts) for name, parts in dom.plot_text.items()}

    assert "estimated" in text["pareto"] and "Pareto front, estimated" in text["pareto"]
    assert "estimated" in text["device-bars"] and "estimated" in text["throughput"]
    assert "Estimated runs have no operator timings" in text["operators"]
    rows = [attributes for tag, attributes in dom.elements if tag == "tr" and attributes.get("class")]
    assert sum(row["class"] == "estimated" for row in rows) == sum(run.kind == "estimated" for run in runs)
    assert sum(row["class"] == "measured" for row in rows) == sum(run.kind == "measured" for run in runs)
    # One front per kind per model: the measured line is solid, the estimated one dashed.
    fronts = [attributes for tag, attributes in dom.elements if tag == "path" and attributes.get("class") == "front"]
    assert sorted("stroke-dasharray" in front for front in fronts) == [False, False, True, True]
    panels = [attributes for tag, attributes in dom.elements if tag == "figure"]
    assert len(panels) == 2 * 4 + 1  # four per-model plots, and the operator plot


def test_a_screenshot_of_the_dashboard(browser, dashboard, tmp_path):
    page, _ = dashboard
    screenshot = tmp_path / "dashboard.png"
    result = run_browser(browser, page, tmp_path / "profile", f"--screenshot={screenshot}",
                         "--window-size=1400,2400")
    assert result.returncode == 0, result.stderr[-2000:]
    assert screenshot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert screenshot.stat().st_size > 50_000  # a blank page is a few kB
    if os.environ.get("HWOPT_SCREENSHOT"):
        shutil.copyfile(screenshot, os.environ["HWOPT_SCREENSHOT"])
