// The leaders' dashboard: de-identified analytics as SVG charts, each with its
// numbers in a table and a CSV download of the same report.
import { api, href } from "../api.js";
import { errorNotice, field, h, itemsOf, label, select, table, append, replace } from "../dom.js";
import { barChart, lineChart } from "../charts.js";
import { heading } from "../page.js";

const PERIODS = [["semester", "This semester"], ["month", "This month"], ["week", "This week"], ["school_year", "This school year"]];

function nameOf(item) {
  return String(item.name ?? item.label ?? item.category ?? item.category_name ?? item.service_name ?? item.channel ?? item.school_name ?? item.tenant_name ?? item.term_name ?? item.period ?? "—");
}

function countOf(item) {
  const v = item.count ?? item.shares ?? item.value ?? item.total ?? item.requests;
  return typeof v === "number" ? v : null;
}

function bars(items) {
  return items.map((i) => ({ label: label(nameOf(i)), value: countOf(i), suppressed: !!i.suppressed || countOf(i) === null }));
}

function panel(id, title, report, params, draw) {
  const body = h("div", { class: "panel-body" }, h("p", {}, "Loading…"));
  const section = h("section", { class: "chart", "aria-labelledby": `${id}-title`, id },
    h("h2", { id: `${id}-title` }, title), body,
    h("p", {}, h("a", { href: href(`/api/v1/analytics/${report}`, { ...params, format: "csv" }), download: `${report}.csv` }, `Download ${title.toLowerCase()} (CSV)`)));
  api.get(`/api/v1/analytics/${report}`, { ...params, format: "json" })
    .then((data) => replace(body, ...draw(data)))
    .catch((err) => { if (err.status !== 401) replace(body, errorNotice(err)); });
  return section;
}

function barPanel(title) {
  return (data) => {
    const items = itemsOf(data);
    if (!items.length) return [h("p", {}, "No shares in this period yet.")];
    const b = bars(items).slice(0, 12);
    return [barChart(b, { title }), table(`${title}: the numbers`, ["Name", "Shares", "Change"], items.slice(0, 12).map((i) => [label(nameOf(i)), i.suppressed || countOf(i) === null ? "suppressed" : String(countOf(i)), typeof i.change_pct === "number" ? `${i.change_pct > 0 ? "+" : ""}${i.change_pct}%` : ""]))];
  };
}

function trends(data) {
  const items = itemsOf(data);
  if (!items.length) return [h("p", {}, "No shares in this period yet.")];
  // Either one series [{period, count}] or several [{name, points: [...]}].
  const series = items[0].points
    ? items.map((s) => ({ name: nameOf(s), points: s.points.map((p) => ({ label: String(p.period ?? p.label), value: countOf(p) || 0 })) }))
    : [{ name: "Shares", points: items.map((p) => ({ label: String(p.period ?? p.label ?? p.date), value: countOf(p) || 0 })) }];
  return [lineChart(series, { title: "Shares over time" }),
    table("Shares over time: the numbers", ["Period", ...series.map((s) => s.name)], series[0].points.map((p, i) => [p.label, ...series.map((s) => String(s.points[i] ? s.points[i].value : ""))]))];
}

function unmet(data) {
  const items = itemsOf(data);
  if (!items.length) return [h("p", {}, "No unmet need found in this period.")];
  return [table("Demand against nearby providers", ["Category", "Shares", "Services nearby", "Signal"], items.map((i) => [label(nameOf(i)), i.suppressed ? "suppressed" : String(countOf(i) ?? ""), String(i.providers ?? i.services_nearby ?? i.service_count ?? ""), i.signal || (i.gap ? "Gap" : "")]))];
}

function schools(data) {
  const items = itemsOf(data);
  if (!items.length) return [h("p", {}, "No school data in this period.")];
  const columns = Object.keys(items[0]).filter((k) => !["id", "tenant_id", "school_id", "suppressed"].includes(k));
  return [table("Schools compared", columns.map(label), items.map((i) => columns.map((c) => (i[c] === null || i[c] === undefined ? "suppressed" : String(i[c])))))];
}

export async function render(container, ctx) {
  heading(container, "Dashboard", ctx, "De-identified counts of shares; small numbers are suppressed to protect students.");
  const period = select("period", PERIODS, "semester");
  const form = h("form", { class: "form" }, h("div", { class: "filters" }, field("Period", period), h("div", { class: "actions" }, h("button", { type: "submit", class: "button" }, "Show"))));
  const panels = h("div", { class: "panels" });
  append(container, form, panels);
  const draw = () => {
    const params = { period: period.value };
    replace(panels, 
      h("div", { class: "grid2" },
        panel("top-categories", "Most requested categories", "top-categories", params, barPanel("Most requested categories")),
        panel("top-services", "Most requested services", "top-services", params, barPanel("Most requested services"))),
      panel("trends", "Trends", "trends", params, trends),
      h("div", { class: "grid2" },
        panel("channels", "Channel mix", "channels", params, barPanel("Channel mix")),
        panel("unmet-need", "Unmet need", "unmet-need", params, unmet)),
      ctx.me.role === "district_admin" ? panel("schools", "Schools compared", "schools", params, schools) : null);
  };
  form.addEventListener("submit", (event) => { event.preventDefault(); draw(); });
  draw();
}
