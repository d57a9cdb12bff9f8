// The dashboard's plots. Each takes the prepared runs and the device colours and returns { html } to draw, or
// { empty: reason } when it has nothing to show. Encoding, the same in every plot: colour = device, marker
// shape = precision, filled/solid = measured, hollow/dashed/hatched = estimated (never joined to a measurement).

const Plots = (() => {
  const { tag, esc, tooltip, colour, hatch, isNumber, format, spread, extent, scale, box, axes, marker, line, svg,
          legend } = Chart;
  const { groupBy, latestPerCandidate, timed, shapeOf, describe } = Runs;

  // `note` is markup (callers escape what they put in it).
  const panel = (title, body, note = "") => tag("figure", { class: "panel" },
    tag("figcaption", {}, esc(title)) + body + (note ? tag("p", { class: "note" }, note) : ""));

  const NO_AXIS = { ticks: [], label: String };  // the category axis of a bar chart: its rows carry their labels
  const logIfSpread = (values, limit = 20) => spread(values) > limit;
  const logNote = (isLog) => (isLog ? ", log scale" : "");

  // The key under a plot: devices (colour) and, with `marks`, precisions (shape) and kinds (solid or dashed).
  function keyLegend(runs, colours, { marks = true, extra = [] } = {}) {
    const items = [];
    for (const device of [...new Set(runs.map((r) => r.device))]) {
      const index = colours.get(device);
      const allEstimated = runs.filter((r) => r.device === device).every((r) => r.estimated);
      const mark = tag("rect", { x: 2, y: 2, width: 24, height: 10, stroke: colour(index),
                                 fill: allEstimated ? hatch(index) : colour(index) });
      items.push({ mark, text: allEstimated ? `${device} (estimated)` : device });
    }
    if (marks) {
      for (const precision of [...new Set(runs.map((r) => r.precision))]) {
        items.push({ mark: marker(shapeOf({ precision }), 14, 7, { color: "#555" }), text: precision });
      }
      for (const estimated of [false, true]) {
        if (!runs.some((r) => r.estimated === estimated)) continue;
        const mark = line([[1, 7], [27, 7]], { color: "#555", estimated, width: 1.5 }) +
          marker("circle", 14, 7, { color: "#555", estimated, size: 4 });
        items.push({ mark, text: estimated ? "estimated (roofline from datasheet; not measured)" : "measured" });
      }
    }
    return legend([...items, ...extra]);
  }

  // Where to put a point's label: the first spot beside it, inside the frame, that overlaps no marker and no
  // label placed before. `taken` starts with a box per marker and grows with each label placed.
  function placeLabel(taken, frame, px, py, text) {
    const width = text.length * 6.2 + 4, height = 12;  // about 6.2 units a character at 11px, and a gap
    const spots = [[9, -7, "start"], [9, 15, "start"], [-9, -7, "end"], [-9, 15, "end"]];
    for (const [dx, dy, anchor] of spots) {
      const left = anchor === "start" ? px + dx : px + dx - width;
      const spot = { left, right: left + width, top: py + dy - height, bottom: py + dy };
      const inside = spot.left >= frame.left && spot.right <= frame.right + 30 && spot.top >= frame.top - 14;
      if (inside && !taken.some((b) => overlap(b, spot))) {
        taken.push(spot);
        return tag("text", { class: "point-label", x: px + dx, y: py + dy, "text-anchor": anchor }, esc(text));
      }
    }
    return "";  // no free spot: the tooltip still names the point
  }

  const overlap = (a, b) => a.left < b.right && b.left < a.right && a.top < b.bottom && b.top < a.bottom;
  const markerBox = (px, py) => ({ left: px - 7, right: px + 7, top: py - 7, bottom: py + 7 });

  // ---- (a) latency vs accuracy, Pareto front per model ------------------------------------------------------

  function pareto(runs, colours) {
    const latest = latestPerCandidate(timed(runs));
    if (!latest.length) return { empty: "no run has a latency to plot" };
    const panels = [];
    for (const [model, modelRuns] of groupBy(latest, (r) => r.model)) {
      const quality = Runs.qualityAxis(modelRuns);
      const plotted = modelRuns.filter((r) => quality.points.has(r));
      const missing = modelRuns.filter((r) => !quality.points.has(r));
      const missingNote = missing.length ? `Not plotted (no ${quality.name} recorded): ${missing.map((r) =>
        `${esc(r.target)} · ${esc(r.candidate)}`).join(", ")}.` : "";
      if (!plotted.length) {
        panels.push(panel(model, tag("p", { class: "empty" }, `No run of ${esc(model)} has an accuracy or fidelity.`),
                          missingNote));
        continue;
      }
      const frame = box(560, 330);
      const xLog = logIfSpread(plotted.map((r) => r.p50));
      const x = scale(extent(plotted.map((r) => r.p50), { log: xLog }), [frame.left, frame.right], { log: xLog });
      const y = scale(extent(plotted.map((r) => quality.points.get(r).y)), [frame.bottom, frame.top]);
      const parts = [axes(frame, x, y, { xTitle: `p50 latency, ms (lower is better${logNote(xLog)})`,
                                         yTitle: quality.name })];
      // One front per kind: an estimate never sits on, or cuts off, the measured front.
      for (const estimated of [false, true]) {
        const points = plotted.filter((r) => r.estimated === estimated)
          .map((r) => ({ x: r.p50, y: quality.points.get(r).y }));
        const front = Runs.paretoFront(points);
        parts.push(line(front.map((p) => [x(p.x), y(p.y)]), { color: "#333", estimated, width: 1.5, cls: "front" }));
      }
      const taken = plotted.map((r) => markerBox(x(r.p50), y(quality.points.get(r).y)));
      for (const run of plotted) {
        const { y: value, note } = quality.points.get(run);
        const title = `${describe(run)}\n${quality.name}: ${value}${note ? ` (${note})` : ""}`;
        parts.push(marker(shapeOf(run), x(run.p50), y(value), { color: colour(colours.get(run.device)),
                                                                 estimated: run.estimated, size: 6, title }));
        const label = run.estimated ? `${run.precision} est.` : run.precision;
        parts.push(placeLabel(taken, frame, x(run.p50), y(value), label));
      }
      const fronts = [
        { mark: line([[2, 7], [26, 7]], { color: "#333", width: 1.5 }), text: "Pareto front, measured" },
        { mark: line([[2, 7], [26, 7]], { color: "#333", width: 1.5, estimated: true }),
          text: "Pareto front, estimated" },
      ];
      panels.push(panel(model, svg(frame, parts.join(""), `${model}: latency vs ${quality.name}`) +
                        keyLegend(plotted, colours, { extra: fronts }), `y: ${esc(quality.title)}. ${missingNote}`));
    }
    return { html: panels.join("") };
  }

  // ---- (b) p50 per device and candidate ---------------------------------------------------------------------

  function deviceBars(runs, colours) {
    const latest = latestPerCandidate(timed(runs));
    if (!latest.length) return { empty: "no run has a latency to plot" };
    const batchNote = latest.every((r) => r.batch === 1) ? "batch 1" : "each run's smallest batch";
    const panels = [];
    for (const [model, modelRuns] of groupBy(latest, (r) => r.model)) {
      const devices = groupBy(modelRuns, (r) => `${r.estimated ? 1 : 0}${r.device}`);
      const rowHeight = 24, headerHeight = 22;
      const rows = devices.size * headerHeight + modelRuns.length * rowHeight;
      const frame = box(560, rows + 58, { left: 150, right: 110, top: 8, bottom: 50 });
      const x = scale(extent(modelRuns.map((r) => r.p50), { zero: true }), [frame.left, frame.right]);
      const parts = [axes(frame, x, NO_AXIS, { xTitle: `p50 latency at ${batchNote}, ms (lower is better)`,
                                               yTitle: "" })];
      let top = frame.top;
      for (const [, deviceRuns] of devices) {
        const first = deviceRuns[0];
        const name = first.device.length > 60 ? `${first.device.slice(0, 57)}…` : first.device;
        parts.push(tag("text", { class: "group-label", x: 8, y: top + 15 },
                       esc(first.estimated ? `${name} — estimated` : name) + tooltip(first.device)));
        top += headerHeight;
        for (const run of deviceRuns.sort((a, b) => a.p50 - b.p50)) {
          const index = colours.get(run.device);
          const width = Math.max(x(run.p50) - frame.left, 1);
          parts.push(tag("text", { class: "row-label", x: frame.left - 8, y: top + 12, "text-anchor": "end" },
                         esc(run.candidate)));
          parts.push(tag("rect", { x: frame.left, y: top + 3, width, height: rowHeight - 8,
                                   fill: run.estimated ? hatch(index) : colour(index), stroke: colour(index),
                                   "stroke-dasharray": run.estimated ? "4 2" : null }, tooltip(describe(run))));
          parts.push(tag("text", { class: "value", x: frame.left + width + 6, y: top + 12 },
                         esc(`${format(run.p50)} ms${run.estimated ? " estimated" : ""}`)));
          top += rowHeight;
        }
      }
      panels.push(panel(model, svg(frame, parts.join(""), `${model}: p50 latency per device`) +
                        keyLegend(modelRuns, colours, { marks: false })));
    }
    return { html: panels.join("") };
  }

  // ---- (c) throughput vs batch size -------------------------------------------------------------------------

  function throughput(runs, colours) {
    const latest = latestPerCandidate(runs.filter((r) => r.batches.some((b) => isNumber(b.throughput_per_s))));
    if (!latest.length) return { empty: "no run has a throughput to plot" };
    const panels = [];
    for (const [model, modelRuns] of groupBy(latest, (r) => r.model)) {
      const points = modelRuns.flatMap((r) => r.batches.filter((b) => isNumber(b.throughput_per_s))
        .map((b) => ({ run: r, batch: b.batch, value: b.throughput_per_s })));
      const batches = [...new Set(points.map((p) => p.batch))].sort((a, b) => a - b);
      const frame = box(560, 330);
      const xLog = batches[batches.length - 1] / batches[0] >= 4;
      const xDomain = batches.length > 1 ? [batches[0], batches[batches.length - 1]] : [batches[0] - 1, batches[0] + 1];
      const x = scale(xDomain, [frame.left + 12, frame.right - 12],
                      { log: xLog, tickValues: batches, tickLabel: String });
      const yLog = logIfSpread(points.map((p) => p.value), 30);
      const y = scale(extent(points.map((p) => p.value), { log: yLog, zero: !yLog }), [frame.bottom, frame.top],
                      { log: yLog });
      const parts = [axes(frame, x, y, { xTitle: "batch size",
                                         yTitle: `samples/s (higher is better${logNote(yLog)})` })];
      for (const run of modelRuns) {
        const own = points.filter((p) => p.run === run);
        const color = colour(colours.get(run.device));
        parts.push(line(own.map((p) => [x(p.batch), y(p.value)]), { color, estimated: run.estimated }));
        for (const p of own) {
          parts.push(marker(shapeOf(run), x(p.batch), y(p.value), { color, estimated: run.estimated,
            title: `${describe(run)}\nbatch ${p.batch}: ${format(p.value)} samples/s` }));
        }
      }
      const note = batches.length < 2 ? "Every run timed one batch size; bench with --batch 1,8,32 for a curve." : "";
      panels.push(panel(model, svg(frame, parts.join(""), `${model}: throughput vs batch`) +
                        keyLegend(modelRuns, colours), note));
    }
    return { html: panels.join("") };
  }

  // ---- (d) time per operator type -----------------------------------------------------------------------------

  const OPERATOR_COLOURS = ["#4e79a7", "#f28e2b", "#e15759", "#76b7b2", "#59a14f", "#edc948", "#b07aa1",
                            "#ff9da7", "#9c755f"];
  const OTHER_COLOUR = "#d4d4d4";

  function operators(runs) {
    const profiled = latestPerCandidate(runs.filter((r) => !r.estimated && (r.report.operators || []).length))
      .sort((a, b) => a.model.localeCompare(b.model) || a.device.localeCompare(b.device) ||
                      (a.p50 || 0) - (b.p50 || 0));
    const estimatedNote = runs.some((r) => r.estimated) ? " Estimated runs have no operator timings." : "";
    if (!profiled.length) return { empty: `No run in this history has per-operator timings.${estimatedNote}` };
    const totals = new Map();
    for (const run of profiled) for (const op of run.report.operators) {
      totals.set(op.op_type, (totals.get(op.op_type) || 0) + op.percent);
    }
    const top = [...totals.entries()].sort((a, b) => b[1] - a[1]).slice(0, OPERATOR_COLOURS.length).map(([t]) => t);
    const colourOf = (type) => (top.includes(type) ? OPERATOR_COLOURS[top.indexOf(type)] : OTHER_COLOUR);
    const rowHeight = 30;
    const frame = box(1160, 40 + profiled.length * rowHeight, { left: 330, right: 130, top: 8, bottom: 34 });
    const x = scale([0, 100], [frame.left, frame.right],
                    { tickValues: [0, 25, 50, 75, 100], tickLabel: (v) => `${v}%` });
    const parts = [axes(frame, x, NO_AXIS, { xTitle: "share of profiled time per inference", yTitle: "" })];
    profiled.forEach((run, row) => {
      const top0 = frame.top + row * rowHeight + 4;
      parts.push(tag("text", { class: "row-label", x: frame.left - 8, y: top0 + 15, "text-anchor": "end" },
                     esc(`${run.model} · ${run.target} · ${run.candidate}`) + tooltip(describe(run))));
      const shares = run.report.operators.filter((op) => top.includes(op.op_type));
      const other = Math.max(0, 100 - shares.reduce((sum, op) => sum + op.percent, 0));
      let left = 0;
      for (const op of [...shares, { op_type: "other", percent: other, total_ms: null, calls: null }]) {
        if (op.percent <= 0) continue;
        const px = x(left), width = x(Math.min(left + op.percent, 100)) - px;
        const detail = op.total_ms === null ? "other operator types"
          : `${format(op.total_ms)} ms per inference, ${op.calls} call(s)`;
        parts.push(tag("rect", { x: px, y: top0, width: Math.max(width, 0.5), height: rowHeight - 8,
                                 fill: op.op_type === "other" ? OTHER_COLOUR : colourOf(op.op_type) },
                       tooltip(`${op.op_type}: ${format(op.percent)}% — ${detail}`)));
        if (width > 46) {
          parts.push(tag("text", { class: "in-bar", x: px + 4, y: top0 + 15 },
                         esc(`${op.op_type} ${op.percent.toFixed(0)}%`)));
        }
        left += op.percent;
      }
      const total = run.report.operators.reduce((sum, op) => sum + (op.total_ms || 0), 0);
      parts.push(tag("text", { class: "value", x: frame.right + 8, y: top0 + 15 },
                     esc(`${format(total)} ms profiled`)));
    });
    const items = [...top, "other"].map((type) => ({ mark: tag("rect", { x: 2, y: 2, width: 24, height: 10,
      fill: type === "other" ? OTHER_COLOUR : colourOf(type) }), text: type }));
    return { html: panel("Operator types by share of time, latest measured run of each candidate",
                         svg(frame, parts.join(""), "time per operator type") + legend(items),
                         `Measured runs only.${estimatedNote}`) };
  }

  // ---- (e) p50 over time ----------------------------------------------------------------------------------------

  function history(runs, colours) {
    const usable = timed(runs).filter((r) => isNumber(r.time));
    if (!usable.length) return { empty: "no run has a latency and a date to plot" };
    const panels = [];
    for (const [model, modelRuns] of groupBy(usable, (r) => r.model)) {
      const frame = box(560, 300);
      const times = modelRuns.map((r) => r.time);
      let [t0, t1] = [Math.min(...times), Math.max(...times)];
      if (t1 - t0 < 60e3) [t0, t1] = [t0 - 3600e3, t1 + 3600e3];
      const xTicks = [0, 1, 2, 3].map((i) => t0 + ((t1 - t0) * i) / 3);
      const x = scale([t0, t1], [frame.left + 16, frame.right - 16],
                      { tickValues: xTicks, tickLabel: dateLabel(t1 - t0) });
      const yLog = logIfSpread(modelRuns.map((r) => r.p50), 30);
      const y = scale(extent(modelRuns.map((r) => r.p50), { log: yLog, zero: !yLog }), [frame.bottom, frame.top],
                      { log: yLog });
      const parts = [axes(frame, x, y, { xTitle: "when the run was made (UTC)",
                                         yTitle: `p50 latency, ms${logNote(yLog)}` })];
      for (const [, series] of groupBy(modelRuns, (r) => r.key)) {
        series.sort((a, b) => a.time - b.time);
        const color = colour(colours.get(series[0].device));
        parts.push(line(series.map((r) => [x(r.time), y(r.p50)]), { color, estimated: series[0].estimated }));
        for (const run of series) {
          parts.push(marker(shapeOf(run), x(run.time), y(run.p50),
                            { color, estimated: run.estimated, title: describe(run) }));
        }
      }
      panels.push(panel(model, svg(frame, parts.join(""), `${model}: p50 latency over time`) +
                        keyLegend(modelRuns, colours)));
    }
    return { html: panels.join("") };
  }

  function dateLabel(range) {
    const day = 86400e3;
    return (t) => {
      const iso = new Date(t).toISOString();
      return range < 2 * day ? `${iso.slice(5, 10)} ${iso.slice(11, 16)}` : iso.slice(0, 10);
    };
  }

  return { pareto, deviceBars, throughput, operators, history };
})();
