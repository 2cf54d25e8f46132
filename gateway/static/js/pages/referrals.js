// "My referrals" (teacher), the school's referrals (admins) and incoming
// referrals (program staff), with status filter and due follow-ups.
import { api } from "../api.js";
import { announce, errorNotice, field, formatDate, h, itemsOf, label, select, table, append, replace } from "../dom.js";
import { heading, resultsRegion } from "../page.js";
import { STATUSES } from "../referral-status.js";

function scopeFor(ctx) {
  if (ctx.route.scope) return ctx.route.scope;
  return ctx.me.role === "teacher" ? "mine" : "school";
}

const TITLES = { mine: "My referrals", school: "School referrals", incoming: "Incoming referrals" };

export function referralRow(r) {
  const service = r.service_name || (r.service && r.service.name) || "Service";
  const who = r.student_first_name || (r.student && r.student.first_name) || (r.student_id ? "Student" : "Walk-in");
  const due = r.follow_up_due || r.due;
  return [
    h("a", { href: `/referrals/${r.id}`, "data-link": true }, service),
    who,
    label(r.channel),
    h("span", { class: "status" }, label(r.status)),
    formatDate(r.created_at),
    due ? h("span", { class: "due" }, "Follow-up due") : (r.follow_up_at ? formatDate(r.follow_up_at) : ""),
  ];
}

export async function render(container, ctx) {
  const scope = scopeFor(ctx);
  heading(container, TITLES[scope], ctx, scope === "incoming" ? "Referrals sent to your program: accept or decline them, then keep the status up to date." : "Follow each referral until the family is connected.");
  const status = select("status", [["", "Any status"], ...STATUSES.map((s) => [s, label(s)])]);
  const due = h("input", { type: "checkbox", name: "due" });
  const form = h("form", { class: "form" }, h("div", { class: "filters" }, field("Status", status),
    h("div", { class: "field" }, h("label", { class: "check" }, due, "Only follow-ups due")), h("div", { class: "actions" }, h("button", { type: "submit", class: "button" }, "Filter"))));
  const results = resultsRegion(TITLES[scope]);
  append(container, form, results);
  const load = async () => {
    results.setAttribute("aria-busy", "true");
    try {
      const data = await api.get("/api/v1/referrals", { scope, status: status.value, due: due.checked ? "true" : "" });
      const items = itemsOf(data);
      const dueCount = items.filter((r) => r.follow_up_due || r.due).length;
      const summary = `${items.length} referral${items.length === 1 ? "" : "s"}${dueCount ? `, ${dueCount} with a follow-up due` : ""}.`;
      replace(results, h("p", {}, summary),
        items.length ? table(TITLES[scope], ["Service", "For", "Channel", "Status", "Shared", "Follow-up"], items.map(referralRow)) : h("p", {}, "Nothing here yet."));
      announce(summary);
    } catch (err) {
      replace(results, errorNotice(err));
    } finally {
      results.setAttribute("aria-busy", "false");
    }
  };
  form.addEventListener("submit", (event) => { event.preventDefault(); load(); });
  await load();
}
