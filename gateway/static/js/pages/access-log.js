// The access-transparency log, for a tenant's admins: everything a platform account
// (an operator or auditor) did to this tenant (a district admin: and its schools), with
// a CSV export of the same filter. Each of these actions was also emailed to the admins.
import { api, href } from "../api.js";
import { announce, errorNotice, field, formatDate, h, label, select, table, append, replace } from "../dom.js";
import { heading, resultsRegion } from "../page.js";

const ACTIONS = [["", "Any action"], ["tenant_created", "Tenant created"], ["user_created", "Account created"],
  ["user_changed", "Account changed"], ["user_disabled", "Account disabled"], ["settings_changed", "Settings changed"],
  ["deletion_requested", "Deletion requested"], ["retention_policy_set", "Retention policy set"]];

export async function render(container, ctx) {
  heading(container, "Access log", ctx, "Every action the platform's operators took on your organisation's accounts, settings and data. You were emailed each time.");
  const action = select("action", ACTIONS);
  const csv = h("a", { class: "button secondary", id: "access-log-csv", download: "access-log.csv" }, "Export CSV");
  const form = h("form", { class: "form" }, h("div", { class: "filters" }, field("Action", action),
    h("div", { class: "actions" }, h("button", { type: "submit", class: "button" }, "Filter"), csv)));
  const results = resultsRegion("Access log");
  const more = h("div", { class: "actions" });
  append(container, form, results, more);
  let page = 1;
  const params = () => ({ action: action.value, page });
  const load = async () => {
    csv.setAttribute("href", href("/api/v1/access-log/csv", { action: action.value }));
    results.setAttribute("aria-busy", "true");
    try {
      const data = await api.get("/api/v1/access-log", params());
      const items = data.items || [];
      const summary = `${data.total ?? items.length} action${data.total === 1 ? "" : "s"} by platform accounts.`;
      replace(results, h("p", {}, summary), items.length ? table("Access log", ["When", "Where", "What", "Action", "Who"], items.map((e) => [
        formatDate(e.occurred_at), e.tenant_name, e.description, label(e.action), `${e.actor_name} (${label(e.actor_role)})`])) : h("p", {}, "No platform account has acted on your organisation."));
      const pages = Math.ceil((data.total || 0) / (data.per_page || 50));
      replace(more, ...(page > 1 ? [h("button", { type: "button", class: "button secondary", onclick: () => { page -= 1; load(); } }, "Newer")] : []),
        ...(page < pages ? [h("button", { type: "button", class: "button secondary", onclick: () => { page += 1; load(); } }, "Older")] : []));
      announce(summary);
    } catch (err) {
      if (err.status === 401) throw err;
      replace(results, errorNotice(err));
    } finally {
      results.setAttribute("aria-busy", "false");
    }
  };
  form.addEventListener("submit", (event) => { event.preventDefault(); page = 1; load(); });
  await load();
}
