// Small SVG charts drawn here (no chart library): horizontal bars and lines.
// Each chart has a text alternative: role="img" with a label, and the numbers
// in a table next to it for screen readers and for copying.
const NS = "http://www.w3.org/2000/svg";

function svg(tag, attrs = {}, ...children) {
  const el = document.createElementNS(NS, tag);
  for (const [k, v] of Object.entries(attrs)) el.setAttribute(k, String(v));
  for (const c of children) el.append(c instanceof Node ? c : document.createTextNode(String(c)));
  return el;
}

/** A label split into lines of at most ``width`` characters at spaces (at most ``lines``
 * lines; only a last line that still overflows ends in "…": the full name is the bar's
 * <title> and in the numbers table). */
export function wrapLabel(text, width = 28, lines = 2) {
  const words = String(text).split(/\s+/).filter(Boolean);
  const out = [];
  let current = "";
  for (const word of words) {
    if (current && (current + " " + word).length > width) {
      out.push(current);
      current = word;
    } else {
      current = current ? `${current} ${word}` : word;
    }
  }
  if (current) out.push(current);
  if (out.length > lines) {
    const rest = out.slice(lines - 1).join(" ");
    out.splice(lines - 1, out.length, rest.length > width ? `${rest.slice(0, width - 1)}…` : rest);
  }
  return out.map((line) => (line.length > width ? `${line.slice(0, width - 1)}…` : line));
}

/** bars: [{label, value, suppressed}] -> <svg>. Suppressed values are drawn as grey stubs;
 * long names wrap onto two lines. */
export function barChart(bars, { title, unit = "" } = {}) {
  const rowH = 40;
  const labelW = 230;
  const width = 660;
  const chartW = width - labelW - 80;
  const height = Math.max(rowH * bars.length + 10, 40);
  const max = Math.max(1, ...bars.map((b) => (b.suppressed ? 0 : b.value || 0)));
  const root = svg("svg", { viewBox: `0 0 ${width} ${height}`, role: "img", "aria-label": title || "Bar chart", class: "bar-chart" });
  root.append(svg("title", {}, title || "Bar chart"));
  bars.forEach((b, i) => {
    const y = i * rowH + 5;
    const w = b.suppressed ? 6 : Math.max(2, (chartW * (b.value || 0)) / max);
    const lines = wrapLabel(b.label);
    const first = y + rowH / 2 + 4 - (lines.length - 1) * 8;
    const name = svg("text", { x: labelW - 8, y: first, "text-anchor": "end", class: "bar-label" }, svg("title", {}, b.label));
    lines.forEach((line, li) => name.append(svg("tspan", { x: labelW - 8, dy: li ? 16 : 0 }, line)));
    root.append(
      name,
      svg("rect", { x: labelW, y: y + 5, width: w, height: rowH - 12, class: b.suppressed ? "bar-suppressed" : "bar" }, svg("title", {}, b.label)),
      svg("text", { x: labelW + w + 6, y: y + rowH / 2 + 4 }, b.suppressed ? "suppressed" : `${b.value}${unit}`));
  });
  return root;
}

/** series: [{name, points: [{label, value}]}] -> a <figure> with an <svg> line chart over
 * shared x labels, axis titles, and a legend naming each line (drawn differently: solid, dashed). */
export function lineChart(series, { title, xTitle = "", yTitle = "Shares" } = {}) {
  const width = 640;
  const height = 280;
  const pad = { l: 60, r: 16, t: 16, b: 56 };
  const labels = series[0] ? series[0].points.map((p) => p.label) : [];
  const max = Math.max(1, ...series.flatMap((s) => s.points.map((p) => p.value || 0)));
  const x = (i) => pad.l + (labels.length <= 1 ? 0 : (i * (width - pad.l - pad.r)) / (labels.length - 1));
  const y = (v) => height - pad.b - ((height - pad.t - pad.b) * v) / max;
  const root = svg("svg", { viewBox: `0 0 ${width} ${height}`, role: "img", "aria-label": title || "Line chart", class: "line-chart" });
  const mid = Math.round(max / 2);
  root.append(svg("title", {}, title || "Line chart"),
    svg("line", { x1: pad.l, y1: height - pad.b, x2: width - pad.r, y2: height - pad.b, class: "axis" }),
    svg("line", { x1: pad.l, y1: pad.t, x2: pad.l, y2: height - pad.b, class: "axis" }),
    svg("line", { x1: pad.l, y1: y(mid), x2: width - pad.r, y2: y(mid), class: "grid" }),
    svg("text", { x: pad.l - 6, y: pad.t + 4, "text-anchor": "end" }, String(max)),
    svg("text", { x: pad.l - 6, y: y(mid) + 4, "text-anchor": "end" }, String(mid)),
    svg("text", { x: pad.l - 6, y: height - pad.b + 4, "text-anchor": "end" }, "0"),
    svg("text", { x: 14, y: (pad.t + height - pad.b) / 2, "text-anchor": "middle", class: "axis-title",
      transform: `rotate(-90 14 ${(pad.t + height - pad.b) / 2})` }, yTitle),
    svg("text", { x: (pad.l + width - pad.r) / 2, y: height - 8, "text-anchor": "middle", class: "axis-title" }, xTitle));
  // At most 6 x labels, dates shortened to MM-DD, so they never overlap.
  const step = Math.ceil(labels.length / 6) || 1;
  labels.forEach((l, i) => {
    const text = /^\d{4}-\d{2}-\d{2}/.test(l) ? l.slice(5, 10) : l;
    if (i % step === 0) root.append(svg("text", { x: x(i), y: height - pad.b + 18, "text-anchor": "middle" }, text));
  });
  series.forEach((s, si) => {
    const d = s.points.map((p, i) => `${i ? "L" : "M"}${x(i).toFixed(1)},${y(p.value || 0).toFixed(1)}`).join(" ");
    root.append(svg("path", { d, class: si === 0 ? "line" : "line-2" }));
    s.points.forEach((p, i) => root.append(svg("circle", { cx: x(i), cy: y(p.value || 0), r: 3.5, class: si === 0 ? "dot" : "dot-2" },
      svg("title", {}, `${s.name}, ${p.label}: ${p.value ?? 0}`))));
  });
  const legend = document.createElement("ul");
  legend.className = "legend";
  series.forEach((s, si) => {
    const item = document.createElement("li");
    const key = svg("svg", { width: 28, height: 10, "aria-hidden": "true" },
      svg("line", { x1: 0, y1: 5, x2: 28, y2: 5, class: si === 0 ? "line" : "line-2" }));
    item.append(key, document.createTextNode(` ${s.name}`));
    legend.append(item);
  });
  const figure = document.createElement("figure");
  figure.className = "line-figure";
  figure.append(root, legend);
  return figure;
}
