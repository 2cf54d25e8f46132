// Break-glass recovery. An operator asks to invite a new administrator to a tenant (with
// a reason, recorded); the tenant's administrators approve or refuse it here. When the
// tenant has no administrator left, a second operator (never the one who asked) approves.
// Nothing takes effect before an approval; a request expires after 72 hours. The API
// enforces every rule; this page only hides the buttons that would be refused.
import { allPages, api } from "../api.js";
import { announce, busy, errorNotice, field, formatDate, h, label, notice, select, table, append, replace } from "../dom.js";
import { heading, resultsRegion } from "../page.js";

const STATUS_FILTERS = [["pending", "Waiting for a decision"], ["", "All requests"]];

export async function render(container, ctx) {
  const operator = ctx.me.role === "operator";
  heading(container, "Break-glass recovery", ctx, operator
    ? "Ask to invite a new administrator to a school, district or program. It takes effect only when one of its administrators approves it, or — if it has none left — a second operator."
    : "Requests by the platform's operators to invite a new administrator to your organisation. Nothing happens unless you or another administrator approves.");
  const messages = h("div");
  append(container, messages);

  if (operator) {
    let tenants = [];
    try {
      tenants = (await allPages("/api/v1/tenants", {}, 10)).filter((t) => t.kind !== "platform");
    } catch (err) {
      if (err.status === 401) throw err;
      replace(messages, errorNotice(err));
    }
    const tenant = select("tenant_id", tenants.map((t) => [t.id, `${t.name} (${t.kind})`]));
    const email = h("input", { type: "email", name: "email", required: true, autocomplete: "off", maxlength: 254 });
    const name = h("input", { type: "text", name: "display_name", required: true, maxlength: 200, autocomplete: "off" });
    const reason = h("textarea", { name: "reason", required: true, minlength: 10, maxlength: 1000, rows: 3 });
    const ask = h("button", { type: "submit", class: "button" }, "Ask for approval");
    const form = h("form", { class: "form narrow", id: "break-glass-form" }, h("h2", {}, "New recovery request"),
      field("Organisation", tenant), field("Invite as administrator (email)", email), field("Their name", name),
      field("Reason", reason, "Recorded and shown to the approvers: who asked you, how you checked it (a ticket number)."),
      ask);
    append(container, form);
    form.addEventListener("submit", busy(ask, async () => {
      try {
        const made = await api.post("/api/v1/break-glass", {
          tenant_id: tenant.value, email: email.value.trim(), display_name: name.value.trim(), reason: reason.value.trim(),
        });
        form.reset();
        const who = made.approvers === "second_operator" ? "a second operator" : "its administrators";
        replace(messages, notice("success", `Request recorded for ${made.tenant_name}. It waits for ${who} to approve it.`));
        announce("Recovery request recorded.");
      } catch (err) {
        if (err.status === 401) throw err;
        replace(messages, errorNotice(err));
      }
      await load();
    }));
  }

  const filter = select("status", STATUS_FILTERS, "pending");
  const results = resultsRegion("Recovery requests");
  append(container, h("div", { class: "form narrow" }, field("Show", filter)), results);

  const decide = (req, verb) => {
    const button = h("button", { type: "button", class: verb === "approve" ? "button" : "button secondary",
      "data-decide": `${verb}-${req.id}` }, verb === "approve" ? "Approve" : (operator && req.requested_by === ctx.me.user_id ? "Withdraw" : "Refuse"));
    button.addEventListener("click", busy(button, async () => {
      try {
        const done = await api.post(`/api/v1/break-glass/${req.id}/${verb}`, {});
        const said = done.status === "approved" ? `Approved: ${done.display_name} is invited by email.` : "Refused: nothing happens.";
        replace(messages, notice("success", said));
        announce(said);
      } catch (err) {
        if (err.status === 401) throw err;
        replace(messages, errorNotice(err));
      }
      await load();
    }));
    return button;
  };

  const actions = (req) => {
    if (req.status !== "pending") return req.decided_by_name ? `${label(req.status)} by ${req.decided_by_name}` : label(req.status);
    const mayApprove = operator ? req.approvers === "second_operator" && req.requested_by !== ctx.me.user_id : true;
    return h("div", { class: "actions" }, mayApprove ? decide(req, "approve") : null, decide(req, "refuse"));
  };

  const load = async () => {
    try {
      const params = filter.value ? { status: filter.value } : {};
      const items = await allPages("/api/v1/break-glass", params, 5);
      replace(results, items.length
        ? table("Recovery requests (newest first)", ["Organisation", "Invite", "Reason", "Asked", "Expires", "Decision"],
          items.map((r) => [r.tenant_name, r.email ? `${r.display_name} <${r.email}>` : "(removed)", r.reason,
            `${r.requested_by_name || "an operator"}, ${formatDate(r.requested_at)}`, formatDate(r.expires_at), actions(r)]))
        : h("p", {}, "No recovery request."));
    } catch (err) {
      if (err.status === 401) throw err;
      replace(results, errorNotice(err));
    }
  };
  filter.addEventListener("change", load);
  await load();
}
