import { api } from "../api.js";
import { formatDate, h, label, table, append } from "../dom.js";
import { heading } from "../page.js";

export async function render(container, ctx) {
  const r = await api.get(`/api/v1/deletion-requests/${ctx.params.request_id}`);
  heading(container, `Deletion request: ${label(r.scope)}`, ctx);
  const confirmations = r.confirmations || [];
  const method = r.verification_method || (r.verification && r.verification.method) || "";
  // Names are looked up when the page is read; the record itself keeps ids only.
  const person = (name, role, id) => id ? [name || (r.names_available === false ? "Name unavailable right now" : "Account removed since"),
    role ? ` (${label(role)})` : "", " ", h("code", { class: "muted" }, id)] : "Nobody";
  append(container, 
    h("dl", { class: "details" },
      h("dt", {}, "Status"), h("dd", {}, h("span", { class: r.overdue ? "status due" : "status", id: "request-status" }, label(r.status)), r.overdue ? " (overdue)" : ""),
      h("dt", {}, "School or program"), h("dd", { id: "request-tenant" }, r.tenant_name || (r.names_available === false ? "Name unavailable right now" : "Deleted since"), " ", h("code", { class: "muted" }, r.tenant_id)),
      h("dt", {}, "Requested"), h("dd", {}, formatDate(r.created_at)),
      h("dt", {}, "Requested by"), h("dd", { id: "request-requester" }, person(r.requested_by_name, r.requested_by_role, r.requested_by)),
      h("dt", {}, "Due by"), h("dd", {}, formatDate(r.due_at)),
      h("dt", {}, "Completed"), h("dd", {}, formatDate(r.completed_at) || "Not yet"),
      h("dt", {}, "Reason"), h("dd", {}, label(r.reason || "")),
      r.status_reason ? [h("dt", {}, "Why this status"), h("dd", {}, r.status_reason)] : null,
      h("dt", {}, "Verification"), h("dd", { id: "request-verification" }, method ? label(method) : "Not needed for this scope"),
      method ? [h("dt", {}, "Verified by"), h("dd", { id: "request-verifier" }, person(r.verified_by_name, r.verified_by_role, r.verified_by))] : null,
      h("dt", {}, "Subject"), h("dd", {}, h("code", {}, r.subject_ref || "(opaque reference)")),
      h("dt", {}, "Request id"), h("dd", {}, h("code", {}, r.id))),
    confirmations.length
      ? table("Confirmations by service", ["Service", "Confirmed", "Deleted"], confirmations.map((c) => [c.service, formatDate(c.completed_at || c.received_at), Object.entries(c.counts || {}).map(([k, v]) => `${k}: ${v}`).join(", ") || "nothing held"]))
      : h("p", {}, "No service has confirmed yet."),
    (r.missing_services || []).length ? h("p", { class: "due" }, `Waiting for: ${r.missing_services.join(", ")}`) : null,
    h("p", {}, h("a", { href: "/audit", "data-link": true }, "Back to all requests")));
}
