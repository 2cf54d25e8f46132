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

/** bars: [{label, value, suppressed}] -> <svg>. Suppressed values are drawn as grey stubs. */
export function barChart(bars, { title, unit = "" } = {}) {
  const rowH = 28;
  const labelW = 210;
  const width = 640;
  const chartW = width - labelW - 70;
  const height = Math.max(rowH * bars.length + 10, 40);
  const max = Math.max(1, ...bars.map((b) => (b.suppressed ? 0 : b.value || 0)));
  const root = svg("svg", { viewBox: `0 0 ${width} ${height}`, role: "img", "aria-label": title || "Bar chart", class: "bar-chart" });
  root.append(svg("title", {}, title || "Bar chart"));
  bars.forEach((b, i) => {
    const y = i * rowH + 5;
    const w = b.suppressed ? 6 : Math.max(2, (chartW * (b.value || 0)) / max);
    const name = b.label.length > 30 ? `${b.label.slice(0, 29)}…` : b.label;
    root.append(
      svg("text", { x: labelW - 8, y: y + rowH / 2 + 4, "text-anchor": "end" }, name),
      svg("rect", { x: labelW, y: y + 3, width: w, height: rowH - 8, class: b.suppressed ? "bar-suppressed" : "bar" }),
      svg("text", { x: labelW + w + 6, y: y + rowH / 2 + 4 }, b.suppressed ? "suppressed" : `${b.value}${unit}`));
  });
  return root;
}

/** series: [{name, points: [{label, value}]}] -> <svg> line chart over shared x labels. */
export function lineChart(series, { title } = {}) {
  const width = 640;
  const height = 260;
  const pad = { l: 44, r: 16, t: 16, b: 40 };
  const labels = series[0] ? series[0].points.map((p) => p.label) : [];
  const max = Math.max(1, ...series.flatMap((s) => s.points.map((p) => p.value || 0)));
  const x = (i) => pad.l + (labels.length <= 1 ? 0 : (i * (width - pad.l - pad.r)) / (labels.length - 1));
  const y = (v) => height - pad.b - ((height - pad.t - pad.b) * v) / max;
  const root = svg("svg", { viewBox: `0 0 ${width} ${height}`, role: "img", "aria-label": title || "Line chart", class: "line-chart" });
  root.append(svg("title", {}, title || "Line chart"),
    svg("line", { x1: pad.l, y1: height - pad.b, x2: width - pad.r, y2: height - pad.b, class: "axis" }),
    svg("line", { x1: pad.l, y1: pad.t, x2: pad.l, y2: height - pad.b, class: "axis" }),
    svg("text", { x: pad.l - 6, y: pad.t + 4, "text-anchor": "end" }, String(max)),
    svg("text", { x: pad.l - 6, y: height - pad.b + 4, "text-anchor": "end" }, "0"));
  // At most 6 x labels, dates shortened to MM-DD, so they never overlap.
  const step = Math.ceil(labels.length / 6) || 1;
  labels.forEach((l, i) => {
    const text = /^\d{4}-\d{2}-\d{2}/.test(l) ? l.slice(5, 10) : l;
    if (i % step === 0) root.append(svg("text", { x: x(i), y: height - pad.b + 18, "text-anchor": "middle" }, text));
  });
  series.forEach((s, si) => {
    const d = s.points.map((p, i) => `${i ? "L" : "M"}${x(i).toFixed(1)},${y(p.value || 0).toFixed(1)}`).join(" ");
    root.append(svg("path", { d, class: si === 0 ? "line" : "line-2" }));
    s.points.forEach((p, i) => root.append(svg("circle", { cx: x(i), cy: y(p.value || 0), r: 3.5, class: "dot" })));
  });
  return root;
}
