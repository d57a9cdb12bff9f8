// A small SVG chart kit: scales, ticks, axes, marks and legends, as markup strings.
// The dashboard must open with no network, so it cannot load a plotting library; this is the part of one it
// needs. It builds markup (every text escaped) rather than DOM nodes: shorter, and one innerHTML per plot.

const Chart = (() => {
  const ESCAPES = { "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" };
  const esc = (value) => String(value).replace(/[&<>"']/g, (c) => ESCAPES[c]);

  // Devices get these colours in order (Tableau 10, which stays distinguishable for most colour-blind readers).
  const PALETTE = ["#4e79a7", "#f28e2b", "#59a14f", "#e15759", "#76b7b2", "#edc948", "#b07aa1", "#ff9da7",
                   "#9c755f", "#bab0ac"];
  const colour = (index) => PALETTE[index % PALETTE.length];
  // Estimated bars are filled with stripes of their device's colour; the patterns live in one hidden <svg>.
  const hatch = (index) => `url(#hatch-${index % PALETTE.length})`;
  const DASH = "6 4";

  function tag(name, attrs, content) {
    const text = Object.entries(attrs || {})
      .filter(([, v]) => v !== undefined && v !== null && v !== false)
      .map(([k, v]) => ` ${k}="${esc(typeof v === "number" ? Math.round(v * 100) / 100 : v)}"`).join("");
    return content === undefined ? `<${name}${text}/>` : `<${name}${text}>${content}</${name}>`;
  }

  const tooltip = (text) => tag("title", {}, esc(text));

  function patternDefs() {
    const patterns = PALETTE.map((c, i) => tag("pattern", {
      id: `hatch-${i}`, patternUnits: "userSpaceOnUse", width: 6, height: 6, patternTransform: "rotate(45)",
    }, tag("rect", { width: 6, height: 6, fill: "#fff" }) + tag("rect", { width: 3, height: 6, fill: c })));
    return tag("svg", { class: "defs", width: 0, height: 0, "aria-hidden": "true" },
               tag("defs", {}, patterns.join("")));
  }

  // ---- numbers --------------------------------------------------------------------------------------------

  const isNumber = (v) => typeof v === "number" && Number.isFinite(v);

  function format(value) {
    if (!isNumber(value)) return "—";
    const size = Math.abs(value);
    if (size >= 1e6) return `${trim((value / 1e6).toPrecision(3))}M`;
    if (size >= 1e4) return `${trim((value / 1e3).toPrecision(3))}k`;
    if (size >= 100) return value.toFixed(0);
    if (size === 0) return "0";
    return trim(value.toPrecision(3));
  }
  const trim = (text) => (text.includes("e") ? text : text.replace(/(\.\d*?)0+$/, "$1").replace(/\.$/, ""));

  // The spread of a set of positive values; above about 20x, a linear axis squashes the small ones to nothing.
  function spread(values) {
    const positive = values.filter((v) => isNumber(v) && v > 0);
    return positive.length ? Math.max(...positive) / Math.min(...positive) : 1;
  }

  function niceStep(range, count) {
    const raw = range / Math.max(count, 1);
    const power = 10 ** Math.floor(Math.log10(raw));
    const fraction = raw / power;
    return (fraction <= 1 ? 1 : fraction <= 2 ? 2 : fraction <= 5 ? 5 : 10) * power;
  }

  // A domain that covers `values` with a margin, so no mark sits on the frame. With `zero` (bars, throughput),
  // it starts at 0 and ends on a round tick.
  function extent(values, { log = false, zero = false, count = 5 } = {}) {
    const finite = values.filter((v) => isNumber(v) && (!log || v > 0));
    if (!finite.length) return log ? [1, 10] : [0, 1];
    let lo = Math.min(...finite), hi = Math.max(...finite);
    if (log) return [lo / 1.6, hi * 1.6];
    if (zero) {
      const step = niceStep(Math.max(hi, 0) - Math.min(lo, 0) || 1, count);
      return [Math.min(Math.floor(lo / step) * step, 0), Math.ceil((hi * 1.04) / step) * step];
    }
    const margin = hi > lo ? (hi - lo) * 0.08 : Math.abs(hi) * 0.005 || 0.5;
    return [lo - margin, hi + margin];
  }

  // Tick values inside the domain: decades on a log axis (with 2 and 5 between when it spans few), round
  // steps on a linear one.
  function ticks([lo, hi], log, count = 5) {
    if (log) {
      const decades = [];
      for (let e = Math.floor(Math.log10(lo)); 10 ** e <= hi; e++) decades.push(10 ** e);
      const values = (decades.length > 3 ? decades : decades.flatMap((d) => [d, 2 * d, 5 * d]))
        .filter((v) => v >= lo && v <= hi);
      if (values.length >= 2) return values;
    }
    const step = niceStep(hi - lo, count);
    const values = [];
    for (let v = Math.ceil(lo / step) * step; v <= hi + step * 1e-9; v += step) values.push(Number(v.toPrecision(12)));
    return values;
  }

  function tickFormat(values, log) {
    if (log || values.length < 2) return format;
    const step = Math.abs(values[1] - values[0]);
    const decimals = Math.min(6, Math.max(0, -Math.floor(Math.log10(step) + 1e-9)));
    return (v) => (Math.abs(v) >= 1e4 ? format(v) : v.toFixed(decimals));
  }

  // A map from `domain` to pixels in `range`; `.ticks` are where its axis marks go.
  function scale(domain, range, { log = false, tickValues = null, tickLabel = null } = {}) {
    const forward = log ? Math.log10 : (v) => v;
    const [a, b] = domain.map(forward);
    const map = (v) => range[0] + ((forward(v) - a) / (b - a || 1)) * (range[1] - range[0]);
    map.ticks = tickValues || ticks(domain, log);
    map.label = tickLabel || tickFormat(map.ticks, log);
    map.log = log;
    return map;
  }

  // ---- frames and marks -----------------------------------------------------------------------------------

  // The plotting box inside a width x height chart, with room for tick labels and axis titles.
  function box(width, height, margin = {}) {
    const m = { left: 64, right: 18, top: 14, bottom: 48, ...margin };
    return { width, height, left: m.left, right: width - m.right, top: m.top, bottom: height - m.bottom };
  }

  function axes(frame, x, y, { xTitle, yTitle }) {
    const parts = [];
    for (const v of y.ticks) {
      const py = y(v);
      parts.push(tag("line", { class: "grid", x1: frame.left, x2: frame.right, y1: py, y2: py }));
      parts.push(tag("text", { class: "tick", x: frame.left - 6, y: py, "text-anchor": "end",
                               "dominant-baseline": "middle" }, esc(y.label(v))));
    }
    for (const v of x.ticks) {
      const px = x(v);
      parts.push(tag("line", { class: "grid", x1: px, x2: px, y1: frame.top, y2: frame.bottom }));
      parts.push(tag("text", { class: "tick", x: px, y: frame.bottom + 16, "text-anchor": "middle" }, esc(x.label(v))));
    }
    parts.push(tag("rect", { class: "frame", x: frame.left, y: frame.top, width: frame.right - frame.left,
                             height: frame.bottom - frame.top }));
    parts.push(tag("text", { class: "axis-title", x: (frame.left + frame.right) / 2, y: frame.height - 8,
                             "text-anchor": "middle" }, esc(xTitle)));
    const middle = (frame.top + frame.bottom) / 2;
    parts.push(tag("text", { class: "axis-title", x: 14, y: middle, "text-anchor": "middle",
                             transform: `rotate(-90 14 ${middle})` }, esc(yTitle)));
    return parts.join("");
  }

  // One marker: the shape says the precision, the colour the device; an estimate is hollow with a dashed edge.
  function marker(shape, cx, cy, { color, estimated, size = 5, title }) {
    const style = estimated
      ? { fill: "#fff", stroke: color, "stroke-width": 2, "stroke-dasharray": "3 2" }
      : { fill: color, stroke: "#fff", "stroke-width": 1 };
    const s = size;
    const points = {
      square: [[-s, -s], [s, -s], [s, s], [-s, s]],
      triangle: [[0, -s * 1.25], [s * 1.15, s * 0.8], [-s * 1.15, s * 0.8]],
      diamond: [[0, -s * 1.3], [s * 1.1, 0], [0, s * 1.3], [-s * 1.1, 0]],
    }[shape];
    const content = title ? tooltip(title) : "";
    if (!points) return tag("circle", { cx, cy, r: s, ...style }, content);
    const corners = points.map(([dx, dy]) => `${(cx + dx).toFixed(1)},${(cy + dy).toFixed(1)}`).join(" ");
    return tag("polygon", { points: corners, ...style }, content);
  }

  function line(points, { color, estimated, width = 2, cls = "series" }) {
    if (points.length < 2) return "";
    const d = points.map(([px, py], i) => `${i ? "L" : "M"}${px.toFixed(1)},${py.toFixed(1)}`).join("");
    return tag("path", { class: cls, d, fill: "none", stroke: color, "stroke-width": width,
                         "stroke-dasharray": estimated ? DASH : null });
  }

  function svg(frame, content, label) {
    return tag("svg", { viewBox: `0 0 ${frame.width} ${frame.height}`, role: "img", "aria-label": label,
                        preserveAspectRatio: "xMidYMid meet" }, content);
  }

  // ---- legends (HTML, so long device names wrap) -------------------------------------------------------------

  function swatch(content) {
    return tag("svg", { class: "swatch", viewBox: "0 0 28 14", width: 28, height: 14, "aria-hidden": "true" },
               content);
  }

  function legend(items) {
    const entries = items.map(({ mark, text }) => tag("li", {}, swatch(mark) + esc(text)));
    return tag("ul", { class: "legend" }, entries.join(""));
  }

  return { esc, tag, tooltip, colour, hatch, patternDefs, isNumber, format, spread, extent, scale, box, axes,
           marker, line, svg, legend };
})();
