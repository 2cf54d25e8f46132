// The auditor's view: deletion requests (never naming a subject), overdue
// ones, the hash-chain check and a CSV export of the same filter.
import { api, href } from "../api.js";
import { announce, errorNotice, field, formatDate, h, itemsOf, label, notice, select, table, append, replace } from "../dom.js";
import { heading, resultsRegion } from "../page.js";

export async function render(container, ctx) {
  heading(container, "Deletion requests", ctx, "Every request, each service's confirmation and counts; no record here names a student.");
  const scope = select("scope", [["", "Any scope"], ["student", "Student"], ["tenant", "Tenant"], ["user", "User"], ["contact", "Contact"], ["policy", "Retention policy"]]);
  const status = select("status", [["", "Any status"], ["open", "Not finished"], ["pending", "Pending"], ["waiting_ferpa_inspection", "Waiting for a FERPA inspection"], ["dispatched", "Dispatched"], ["completed", "Completed"]]);
  const overdue = h("input", { type: "checkbox", name: "overdue" });
  const from = h("input", { type: "date", name: "from" });
  const to = h("input", { type: "date", name: "to" });
  const csv = h("a", { class: "button secondary", id: "audit-csv", download: "deletion-requests.csv" }, "Export CSV");
  const form = h("form", { class: "form" }, h("div", { class: "filters" }, field("Scope", scope), field("Status", status), field("From", from), field("To", to),
    h("div", { class: "field" }, h("label", { class: "check" }, overdue, "Only overdue")),
    h("div", { class: "actions" }, h("button", { type: "submit", class: "button" }, "Filter"), csv)));
  const verifyButton = h("button", { type: "button", class: "button", id: "verify-chain" }, "Verify the audit chain");
  const verifyResult = h("div", { "aria-live": "polite" });
  const results = resultsRegion("Deletion requests");
  append(container, h("div", { class: "actions" }, verifyButton), verifyResult, form, results);
  const params = () => ({ scope: scope.value, status: status.value, overdue: overdue.checked ? "true" : "", from: from.value, to: to.value, per_page: 200 });
  verifyButton.addEventListener("click", async () => {
    verifyButton.disabled = true;
    try {
      const r = await api.get("/api/v1/audit/verify");
      const ok = !!r.ok;
      const broken = r.first_broken || {};
      const text = ok ? `The audit chain is intact (${r.entries ?? 0} entries checked).` : `The audit chain is broken at entry ${broken.seq ?? "?"}: ${broken.reason || "an entry was changed or removed"}.`;
      replace(verifyResult, notice(ok ? "success" : "error", text));
      announce(text);
    } catch (err) {
      replace(verifyResult, errorNotice(err));
    } finally {
      verifyButton.disabled = false;
    }
  });
  const load = async () => {
    csv.setAttribute("href", href("/api/v1/deletion-requests", { ...params(), format: "csv" }));
    results.setAttribute("aria-busy", "true");
    try {
      const items = itemsOf(await api.get("/api/v1/deletion-requests", params()));
      const overdue = items.filter((r) => r.overdue || r.status === "overdue").length;
      const summary = `${items.length} request${items.length === 1 ? "" : "s"}${overdue ? `, ${overdue} overdue` : ""}.`;
      replace(results, h("p", {}, summary), items.length ? table("Deletion requests", ["Requested", "School or program", "Scope", "Requested by", "Verification", "Status", "Confirmations", ""], items.map((r) => [
        formatDate(r.created_at), r.tenant_name || "—", label(r.scope),
        r.requested_by_name ? `${r.requested_by_name}${r.requested_by_role ? ` (${label(r.requested_by_role)})` : ""}` : "—",
        r.verification_method ? `${label(r.verification_method)}${r.verified_by_name ? ` by ${r.verified_by_name}${r.verified_by_role ? ` (${label(r.verified_by_role)})` : ""}` : ""}` : "—",
        h("span", { class: r.overdue || r.status === "overdue" ? "status due" : "status" }, label(r.overdue && r.status !== "overdue" ? `${r.status} (overdue)` : r.status)),
        `${(r.confirmations || []).length}${(r.missing_services || []).length ? ` (waiting for ${r.missing_services.join(", ")})` : ""}`,
        h("a", { href: `/audit/${r.id}`, "data-link": true }, "Details")])) : h("p", {}, "No requests match."));
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
