// "My referrals" (teacher), the school's referrals (admins) and incoming
// referrals (program staff), with status filter and due follow-ups.
import { api } from "../api.js";
import { announce, errorNotice, field, formatDate, h, itemsOf, label, select, table, append, replace } from "../dom.js";
import { heading, resultsRegion } from "../page.js";
import { STATUSES, isDue } from "../referral-status.js";
import { loadStudents } from "../students.js";

function scopeFor(ctx) {
  if (ctx.route.scope) return ctx.route.scope;
  return ctx.me.role === "teacher" ? "mine" : "school";
}

const TITLES = { mine: "My referrals", school: "School referrals", incoming: "Incoming referrals" };

/** Who a referral is for, as far as this user may know: a student they serve, the first
 * name a school disclosed to a program (with consent), or a walk-in family. */
export function referralFor(r, names = {}) {
  const disclosed = r.disclosed && r.disclosed.student_first_name;
  if (names[r.student_id]) return names[r.student_id];
  if (disclosed) return disclosed;
  if (r.student_id) return "Student";
  return r.incoming ? "A student (not disclosed)" : "Walk-in";
}

export function referralRow(r, names = {}) {
  const service = r.service_name || (r.service && r.service.name) || "Service";
  const who = referralFor(r, names);
  const due = isDue(r);
  return [
    h("a", { href: `/referrals/${r.id}`, "data-link": true }, service),
    who,
    label(r.channel),
    h("span", { class: "status" }, label(r.status)),
    formatDate(r.created_at),
    due ? h("span", { class: "due" }, "Follow-up due") : (r.follow_up_on || ""),
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
  // First names of the students this user may see, joined here in memory (the
  // referral carries only the student's id).
  let names = {};
  const load = async (started) => {
    results.setAttribute("aria-busy", "true");
    try {
      const data = await (started || api.get("/api/v1/referrals", { scope, status: status.value, due: due.checked ? "true" : "" }));
      const items = itemsOf(data);
      const dueCount = items.filter(isDue).length;
      const summary = `${items.length} referral${items.length === 1 ? "" : "s"}${dueCount ? `, ${dueCount} with a follow-up due` : ""}.`;
      replace(results, h("p", {}, summary),
        items.length ? table(TITLES[scope], ["Service", "For", "Channel", "Status", "Shared", "Follow-up"], items.map((r) => referralRow(r, names))) : h("p", {}, "Nothing here yet."));
      announce(summary);
    } catch (err) {
      replace(results, errorNotice(err));
    } finally {
      results.setAttribute("aria-busy", "false");
    }
  };
  form.addEventListener("submit", (event) => { event.preventDefault(); load(); });
  // The students (for their names) and the referrals at once: one round trip, not two.
  if (scope !== "incoming") {
    const students = loadStudents().catch((err) => { if (err.status === 401) throw err; return []; });
    const first = api.get("/api/v1/referrals", { scope, status: status.value, due: "" });
    first.catch(() => {});
    names = Object.fromEntries((await students).map((s) => [s.id, s.first_name]));
    await load(first);
  } else {
    await load();
  }
}
