// Every run in one table, newest first; a click on a column header sorts by it (a second: the other way).
// An estimate has one figure and no spread, so its p90/p99 cells say so rather than repeat the p50.

const RunTable = (() => {
  const { tag, esc, format, isNumber } = Chart;
  const megabytes = (bytes) => (isNumber(bytes) && bytes > 0 ? format(bytes / 1e6) : null);

  // One entry per column: its header, the value it sorts by, and optionally the cell's text (default: the
  // value), its tooltip and its class.
  const column = (name, value, text, note, cls) => ({ name, value, text: text || value, note, cls });
  const COLUMNS = [
    column("model", (r) => r.model),
    column("device", (r) => r.device, null, (r) => r.device, "device"),
    column("kind", (r) => r.report.kind, (r) => (r.estimated ? "estimated" : "measured"),
           (r) => (r.estimated ? "roofline estimate from datasheet figures; not measured"
             : `ran on ${r.report.source}`),
           "kind"),
    column("runtime", (r) => r.report.runtime, (r) => `${r.report.runtime} ${r.report.runtime_version}`.trim()),
    column("precision", (r) => r.precision),
    column("candidate", (r) => r.candidate),
    column("batch", (r) => r.batch, null, null, "number"),
    column("p50 ms", (r) => r.p50, (r) => format(r.p50), null, "number"),
    column("p90 ms", (r) => r.p90, (r) => (r.estimated ? "—" : format(r.p90)), spreadNote, "number"),
    column("p99 ms", (r) => r.p99, (r) => (r.estimated ? "—" : format(r.p99)), spreadNote, "number"),
    column("samples/s", (r) => r.throughput, (r) => format(r.throughput), null, "number"),
    column("size MB", (r) => r.report.model.size_bytes, (r) => megabytes(r.report.model.size_bytes) || "—",
           (r) => (r.estimated ? "the weights at this precision" : "the artifact's files"), "number"),
    column("peak RSS MB", (r) => r.report.memory && r.report.memory.peak_rss_bytes,
           (r) => (r.report.memory ? megabytes(r.report.memory.peak_rss_bytes) || "—" : "—"), memoryNote, "number"),
    column("worst cosine", (r) => r.cosine, (r) => (isNumber(r.cosine) ? r.cosine.toFixed(5) : "—"), null, "number"),
    column("accuracy", (r) => r.report.accuracy,
           (r) => (isNumber(r.report.accuracy) ? format(r.report.accuracy) : "—"), null, "number"),
    column("created (UTC)", (r) => r.time, (r) => r.report.created.replace("T", " ").replace("+00:00", "")),
    column("id", (r) => r.report.id, null, null, "id"),
  ];

  function spreadNote(run) {
    if (run.estimated) return "an estimate is one figure with no spread";
    return run.batches.length ? `${run.batches[0].latency.runs} timed runs at batch ${run.batch}` : "no batch timed";
  }

  function memoryNote(run) {
    const memory = run.report.memory;
    if (!memory) return run.estimated ? "not measured" : "no memory figures in this run";
    const parts = [`before loading: ${megabytes(memory.rss_before_bytes) || "—"} MB`];
    if (isNumber(memory.runtime_arena_bytes)) {
      parts.push(`runtime arena: ${megabytes(memory.runtime_arena_bytes)} MB (${memory.arena_source || "runtime"})`);
    }
    return parts.join("; ");
  }

  function render(runs, container) {
    const state = { column: COLUMNS.findIndex((c) => c.name === "created (UTC)"), descending: true };
    const draw = () => {
      const sortValue = COLUMNS[state.column].value;
      const rows = [...runs].sort((a, b) => compare(sortValue(a), sortValue(b), state.descending ? -1 : 1));
      const head = COLUMNS.map((c, i) => tag("th", { "data-column": i, scope: "col", class: c.cls,
        "aria-sort": i === state.column ? (state.descending ? "descending" : "ascending") : null }, esc(c.name)));
      const body = rows.map((run) => tag("tr", { class: run.estimated ? "estimated" : "measured" },
        COLUMNS.map((c) => tag("td", { class: c.cls, title: c.note ? c.note(run) : null },
                               esc(c.text(run) ?? "—"))).join("")));
      container.innerHTML = tag("table", { class: "runs" },
        tag("thead", {}, tag("tr", {}, head.join(""))) + tag("tbody", {}, body.join("")));
    };
    container.addEventListener("click", (event) => {
      const header = event.target.closest("th[data-column]");
      if (!header) return;
      const column = Number(header.dataset.column);
      state.descending = column === state.column ? !state.descending : false;
      state.column = column;
      draw();
    });
    draw();
  }

  // Runs lacking the figure go last whichever way the column is sorted.
  function compare(a, b, direction) {
    const missing = (v) => v === null || v === undefined || (typeof v === "number" && !Number.isFinite(v));
    if (missing(a) || missing(b)) return missing(a) - missing(b);
    const order = typeof a === "number" && typeof b === "number" ? a - b : String(a).localeCompare(String(b));
    return order * direction;
  }

  return { render };
})();
