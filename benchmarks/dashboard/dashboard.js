// Draws the dashboard from the runs embedded in the page. Each plot section is drawn on its own: one that fails
// shows its error and is reported (window.hwoptReportError, set up in <head>) while the others still draw.
// When a section is done it carries data-rendered="true" (and data-empty="reason" when it had nothing to
// show); the body's data-status says "ok" once everything drew without an error.

(() => {
  const { esc, tag } = Chart;
  const data = JSON.parse(document.getElementById("hwopt-runs").textContent);
  const runs = data.runs.map(Runs.prepare);
  const colours = Runs.deviceColours(runs);

  document.body.insertAdjacentHTML("afterbegin", Chart.patternDefs());
  drawSummary(runs);
  draw("pareto", () => Plots.pareto(runs, colours));
  draw("device-bars", () => Plots.deviceBars(runs, colours));
  draw("throughput", () => Plots.throughput(runs, colours));
  draw("operators", () => Plots.operators(runs));
  draw("history", () => Plots.history(runs, colours));
  draw("table", (container) => {
    if (!runs.length) return { empty: "the history holds no runs" };
    RunTable.render(runs, container);
    return {};
  });
  finish();

  function draw(name, plot) {
    const section = document.querySelector(`[data-plot="${name}"]`);
    const body = section.querySelector(".plot-body");
    try {
      const result = plot(body) || {};
      if (result.empty) {
        section.dataset.empty = result.empty;
        body.innerHTML = tag("p", { class: "empty" }, esc(result.empty));
      } else if (result.html !== undefined) {
        body.innerHTML = result.html;
      }
      section.dataset.rendered = "true";
    } catch (error) {
      section.dataset.error = String((error && error.message) || error);
      body.innerHTML = tag("p", { class: "error" }, esc(`This plot failed to draw: ${section.dataset.error}`));
      window.hwoptReportError(`${name}: ${(error && error.stack) || error}`);
    }
  }

  function drawSummary(all) {
    const measured = all.filter((r) => !r.estimated);
    const estimated = all.filter((r) => r.estimated);
    const devices = [...colours.keys()].map((device) => {
      const only = all.filter((r) => r.device === device).every((r) => r.estimated);
      return tag("li", { class: only ? "estimated" : "measured" },
                 esc(device) + (only ? tag("span", { class: "badge" }, "estimated") : ""));
    });
    const models = [...new Set(all.map((r) => r.model))].sort();
    document.getElementById("summary").innerHTML =
      tag("p", {}, esc(`${all.length} runs (${measured.length} measured, ${estimated.length} estimated) of ` +
                       `${models.length} model${models.length === 1 ? "" : "s"}: ${models.join(", ")}.`)) +
      tag("ul", { class: "devices" }, devices.join(""));
  }

  function finish() {
    const errors = window.hwoptErrors;
    const status = document.getElementById("hwopt-status");
    if (errors.length) {
      status.textContent = errors.join("\n");
      status.hidden = false;
    }
    document.body.dataset.status = errors.length ? "error" : "ok";
  }
})();
