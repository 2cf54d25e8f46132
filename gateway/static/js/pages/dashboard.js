// The leaders' dashboard: de-identified analytics as SVG charts, each with its
// numbers in a table and a CSV download of the same report. A district admin's
// reports hold one row per school and the district itself: the charts show the
// broadest level, the tables every row (suppressed cells say so). Every panel comes
// from one call (GET /api/v1/analytics/dashboard); each CSV from its report's own.
import { api, href } from "../api.js";
import { append, errorNotice, field, h, itemsOf, label, replace, select, table } from "../dom.js";
import { barChart, lineChart } from "../charts.js";
import { heading } from "../page.js";

const PERIODS = [["semester", "This semester"], ["month", "This month"], ["week", "This week"], ["school_year", "This school year"]];
const LEVEL_ORDER = ["platform", "district", "school", "program"];
// The taxonomy level categories are counted at: the server's default is 3, what people
// recognise ("Counseling", "Tutoring", "Food Pantry"); leaders may choose broader ones.
const CATEGORY_LEVELS = [["3", "Categories (e.g. Counseling, Tutoring)"], ["2", "Groups (e.g. Support Network)"], ["1", "Broad areas (e.g. Care)"]];
const CHANNEL_NAMES = { email: "Email", sms: "SMS", print: "Print", link: "Link" };
const BUCKET_TITLES = { day: "Day", week: "Week starting", month: "Month" };

function rowsOf(data) {
  if (data && Array.isArray(data.rows)) return data.rows;
  return itemsOf(data);
}

function nameOf(row) {
  const v = row.service_name ?? row.category_name ?? row.channel ?? row.bucket_start ?? row.name ?? row.label ?? row.tenant_name;
  return v === null || v === undefined ? "Unnamed" : String(v);
}

function isSuppressed(row) {
  return !!row.count_suppressed || row.count === null || row.count === undefined;
}

function cell(row) {
  return isSuppressed(row) ? "suppressed" : String(row.count);
}

function change(row) {
  if (row.previous_suppressed) return "suppressed";
  return typeof row.change_pct === "number" ? `${row.change_pct > 0 ? "+" : ""}${Math.round(row.change_pct)}%` : "";
}

/** The rows of the broadest level present (the district for a district admin). */
function topLevel(rows) {
  const levels = [...new Set(rows.map((r) => r.level).filter(Boolean))];
  if (levels.length <= 1) return rows;
  const best = LEVEL_ORDER.find((l) => levels.includes(l)) || levels[0];
  return rows.filter((r) => r.level === best);
}

function manyTenants(rows) {
  return new Set(rows.map((r) => r.tenant_name || r.tenant_id)).size > 1;
}

/** The numbers behind a chart, folded away (screen readers get the chart's label and this table). */
function numbers(tableEl) {
  return h("details", { class: "numbers" }, h("summary", {}, "Show the numbers"), tableEl);
}

/** One report's panel; ``dashboard`` is the pending answer of the one dashboard call. */
function panel(id, title, report, params, dashboard, draw) {
  const body = h("div", { class: "panel-body", "aria-busy": "true" }, h("p", {}, "Loading…"));
  const section = h("section", { class: "chart", "aria-labelledby": `${id}-title`, id },
    h("h2", { id: `${id}-title` }, title), body,
    h("p", {}, h("a", { href: href(`/api/v1/analytics/${report}`, { ...params, format: "csv" }), download: `${report}.csv` }, `Download ${title.toLowerCase()} (CSV)`)));
  dashboard
    .then((data) => replace(body, draw(rowsOf(data && data.reports ? data.reports[report] : null))))
    .catch((err) => { if (err.status !== 401) replace(body, errorNotice(err)); })
    .finally(() => body.setAttribute("aria-busy", "false"));
  return section;
}

function barPanel(title, { translate = label } = {}) {
  return (rows) => {
    if (!rows.some((r) => r.count || isSuppressed(r))) return [h("p", {}, "No shares in this period yet.")];
    const top = topLevel(rows).slice(0, 12);
    const bars = top.map((r) => ({ label: translate(nameOf(r)), value: r.count, suppressed: isSuppressed(r) }));
    const withTenant = manyTenants(rows);
    return [barChart(bars, { title }),
      numbers(table(`${title}: the numbers`, [...(withTenant ? ["Where"] : []), "Name", "Shares", "Change on previous period"],
        rows.slice(0, 60).map((r) => [...(withTenant ? [r.tenant_name || label(r.level)] : []), translate(nameOf(r)), cell(r), change(r)])))];
  };
}

function trends(rows) {
  if (!rows.some((r) => r.count)) {
    return [h("p", {}, rows.some((r) => r.count_suppressed)
      ? "Too few shares in this period to draw without risking identifying a student (suppressed)."
      : "No shares in this period yet.")];
  }
  const groups = new Map();
  for (const r of rows) {
    const key = r.tenant_name || label(r.level || "Shares");
    if (!groups.has(key)) groups.set(key, []);
    groups.get(key).push(r);
  }
  const ordered = [...groups.entries()].sort((a, b) => LEVEL_ORDER.indexOf(a[1][0].level) - LEVEL_ORDER.indexOf(b[1][0].level));
  const series = ordered.slice(0, 2).map(([name, points]) => ({ name, points: points.map((p) => ({ label: String(p.bucket_start ?? p.period ?? ""), value: isSuppressed(p) ? 0 : p.count })) }));
  const xTitle = BUCKET_TITLES[rows[0] && rows[0].bucket] || "";
  return [lineChart(series, { title: `Shares over time${series.length > 1 ? `: ${series.map((s) => s.name).join(" and ")}` : ""}`, xTitle, yTitle: "Shares" }),
    numbers(table("Shares over time: the numbers", ["Where", "From", "Shares"], rows.map((r) => [r.tenant_name || label(r.level || ""), String(r.bucket_start ?? ""), cell(r)])))];
}

function unmet(rows) {
  if (!rows.length) return [h("p", {}, "No unmet need found in this period.")];
  return [table("Demand against services nearby", ["Where", "Category", "Shares", "Services nearby", "Need score"], rows.slice(0, 30).map((r) => [
    r.tenant_name || label(r.level || ""), nameOf(r), cell(r), String(r.services_nearby ?? ""), typeof r.need_score === "number" ? r.need_score.toFixed(2) : ""]))];
}

const OUTCOME_NAMES = { connected: "Connected", could_not_contact: "Could not contact", not_eligible: "Not eligible",
  no_capacity: "No capacity", no_longer_interested: "No longer interested" };

/** Referrals closed per category: connected rate, median days to connect, and why the rest were not. */
function outcomesPanel(rows) {
  const shown = topLevel(rows);
  if (!shown.length) return [h("p", {}, "No referral was closed in this period yet (or too few to show without risking identifying a student).")];
  const byCategory = new Map();
  for (const r of shown) {
    const key = `${r.tenant_name || ""}|${r.category_id}`;
    if (!byCategory.has(key)) byCategory.set(key, { name: r.category_name || "Uncategorised", where: r.tenant_name || label(r.level || ""), rows: {} });
    byCategory.get(key).rows[r.outcome] = r;
  }
  const withTenant = manyTenants(shown);
  const others = Object.keys(OUTCOME_NAMES).filter((o) => o !== "connected");
  return [table("Referrals closed, by category", [...(withTenant ? ["Where"] : []), "Category", "Closed", "Connected", "Median days to connect", ...others.map((o) => OUTCOME_NAMES[o])],
    [...byCategory.values()].map((c) => {
      const connected = c.rows.connected || {};
      const closed = Object.values(c.rows).reduce((n, r) => n + (r.count || 0), 0);
      return [...(withTenant ? [c.where] : []), c.name, String(closed),
        typeof connected.connected_rate === "number" ? `${connected.count} (${Math.round(connected.connected_rate * 100)}%)` : cell(connected),
        typeof connected.median_days_to_connect === "number" ? String(connected.median_days_to_connect) : "—",
        ...others.map((o) => (c.rows[o] ? cell(c.rows[o]) : "0"))];
    }))];
}

function schools(rows) {
  if (!rows.length) return [h("p", {}, "No school data in this period.")];
  return [table("Schools compared", ["School", "Level", "Shares", "Previous period", "Change"], rows.map((r) => [
    r.tenant_name || "", label(r.level || ""), cell(r), r.previous_suppressed ? "suppressed" : String(r.previous_count ?? ""), change(r)]))];
}

export async function render(container, ctx) {
  heading(container, "Dashboard", ctx, "De-identified counts of shares; small numbers are suppressed to protect students.");
  const period = select("period", PERIODS, "semester");
  const level = select("category_level", CATEGORY_LEVELS, "3");
  const form = h("form", { class: "form" }, h("div", { class: "filters" }, field("Period", period), field("Count categories as", level),
    h("div", { class: "actions" }, h("button", { type: "submit", class: "button" }, "Show"))));
  const panels = h("div", { class: "panels" });
  append(container, form, panels);
  const draw = () => {
    const params = { period: period.value };
    if (level.value !== "3") params.category_level = level.value;
    // The shell preloads this very URL for the default period (routes.js), so keep it exact.
    const dashboard = api.get("/api/v1/analytics/dashboard", params);
    dashboard.catch(() => {}); // each panel shows the error
    replace(panels,
      panel("top-categories", "Most requested categories", "top-categories", params, dashboard, barPanel("Most requested categories", { translate: (s) => s })),
      panel("top-services", "Most requested services", "top-services", params, dashboard, barPanel("Most requested services", { translate: (s) => s })),
      panel("trends", "Trends", "trends", params, dashboard, trends),
      panel("channels", "Channel mix", "channels", params, dashboard, barPanel("Channel mix", { translate: (c) => CHANNEL_NAMES[c] || label(c) })),
      panel("unmet-need", "Unmet need", "unmet-need", params, dashboard, unmet),
      panel("outcomes", "Did referrals lead anywhere?", "outcomes", params, dashboard, outcomesPanel),
      ctx.me.role === "district_admin" ? panel("schools", "Schools compared", "schools", params, dashboard, schools) : null);
  };
  form.addEventListener("submit", (event) => { event.preventDefault(); draw(); });
  draw();
}
