// The run reports as the plots read them: the figures each plot needs pulled out once, and the groupings they
// share (the latest run of each candidate, one colour per device, one marker shape per precision).

const Runs = (() => {
  const { isNumber } = Chart;

  function prepare(report) {
    const batches = [...(report.batches || [])].sort((a, b) => a.batch - b.batch);
    const first = batches[0];
    const estimated = report.kind === "estimated";
    const candidate = report.label || `${report.precision} ${report.runtime}`;
    return {
      report,
      estimated,
      kindText: estimated ? "estimated (roofline)" : "measured",
      candidate,
      model: report.model.name,
      device: report.device,
      target: report.target,
      precision: report.precision,
      batches,
      batch: first ? first.batch : null,
      p50: first ? first.latency.p50_ms : null,
      p90: first ? first.latency.p90_ms : null,
      p99: first ? first.latency.p99_ms : null,
      throughput: first ? first.throughput_per_s : null,
      time: Date.parse(report.created),
      cosine: worstCosine(report.fidelity),
      // One candidate: the same model, device, name and kind. Its runs over time are one history series.
      key: [report.model.name, report.device, candidate, report.kind].join("\u0000"),
    };
  }

  // The report's fidelity comes from the optimize report: `worst_cosine` is the figure (its `min_cosine` is the
  // threshold the run had to pass, not a result).
  function worstCosine(fidelity) {
    if (!fidelity || typeof fidelity !== "object") return null;
    return isNumber(fidelity.worst_cosine) ? fidelity.worst_cosine : null;
  }

  // Colours by device, measured devices first: the same device has the same colour in every plot.
  function deviceColours(runs) {
    const devices = [...new Set([...runs.filter((r) => !r.estimated), ...runs.filter((r) => r.estimated)]
      .map((r) => r.device))];
    return new Map(devices.map((device, i) => [device, i]));
  }

  const SHAPES = { fp32: "circle", fp16: "square", bf16: "square", int8: "triangle" };
  const shapeOf = (run) => SHAPES[run.precision] || SHAPES[String(run.precision).split("-")[0]] || "diamond";

  function latestPerCandidate(runs) {
    const latest = new Map();
    for (const run of runs) {
      const seen = latest.get(run.key);
      if (!seen || run.time >= seen.time) latest.set(run.key, run);
    }
    return [...latest.values()];
  }

  // The runs grouped by `keyOf`, the groups in the alphabetical order of their keys.
  function groupBy(runs, keyOf) {
    const groups = new Map();
    for (const run of runs) {
      const key = keyOf(run);
      if (!groups.has(key)) groups.set(key, []);
      groups.get(key).push(run);
    }
    return new Map([...groups.entries()].sort(([a], [b]) => String(a).localeCompare(String(b))));
  }

  const timed = (runs) => runs.filter((r) => isNumber(r.p50) && r.p50 > 0);

  // The Pareto plot's y: the task accuracy where the model's measured runs recorded one, else fidelity. An
  // estimate has neither of its own, so it borrows the measured figure of the same precision, and says so.
  function qualityAxis(runs) {
    const useAccuracy = runs.some((r) => !r.estimated && isNumber(r.report.accuracy));
    const read = (run) => (useAccuracy ? run.report.accuracy : run.cosine);
    const measured = runs.filter((r) => !r.estimated && isNumber(read(r))).sort((a, b) => b.time - a.time);
    const points = new Map();
    for (const run of runs) {
      let y = read(run);
      let note = "";
      if (!isNumber(y) && run.estimated) {
        const twin = measured.find((m) => m.precision === run.precision);
        if (twin) {
          y = read(twin);
          note = `${useAccuracy ? "accuracy" : "fidelity"} of the measured ${twin.candidate} run on ${twin.target}`;
        }
      }
      if (!isNumber(y) && !useAccuracy && run.precision === "fp32") {
        y = 1;
        note = "fp32 with no fidelity recorded: shown at cosine 1";
      }
      if (isNumber(y)) points.set(run, { y, note });
    }
    const title = useAccuracy ? "accuracy (task metric recorded with the run), higher is better"
      : "fidelity: worst output cosine vs the original, higher is better";
    return { title, name: useAccuracy ? "accuracy" : "worst cosine", points };
  }

  // The points no other point beats on both latency (lower) and quality (higher).
  function paretoFront(points) {
    const sorted = [...points].sort((a, b) => a.x - b.x || b.y - a.y);
    const front = [];
    for (const point of sorted) if (!front.length || point.y > front[front.length - 1].y) front.push(point);
    return front;
  }

  function describe(run) {
    const estimate = run.report.estimate || {};
    const lines = [`${run.model} · ${run.candidate}`, `${run.device}`, run.estimated
      ? `ESTIMATED (roofline from datasheet figures, ${estimate.bound || "?"}-bound), not measured`
      : `measured (${run.report.source || "local"})`];
    if (isNumber(run.p50)) lines.push(`p50 ${Chart.format(run.p50)} ms at batch ${run.batch}`);
    if (isNumber(run.throughput)) lines.push(`${Chart.format(run.throughput)} samples/s`);
    lines.push(`${run.report.created} · ${run.report.id}`);
    return lines.join("\n");
  }

  return { prepare, deviceColours, shapeOf, latestPerCandidate, groupBy, timed, qualityAxis, paretoFront, describe };
})();
