// One referral: what was shared, to whom (names only as the API returns them),
// delivery attempts, the status history, and the status update form.
import { api } from "../api.js";
import { announce, errorNotice, field, formatDate, h, label, notice, select, table, append, replace } from "../dom.js";
import { heading } from "../page.js";
import { languageName } from "../languages.js";
import { OUTCOMES, STATUSES, isDue } from "../referral-status.js";

export async function render(container, ctx) {
  let referral = await api.get(`/api/v1/referrals/${ctx.params.referral_id}`);
  const service = referral.service_name || (referral.service && referral.service.name) || "Referral";
  heading(container, service, ctx);
  const summary = h("div");
  const history = h("div");
  const messages = h("div");
  const show = () => {
    replace(summary, h("dl", { class: "details" },
      h("dt", {}, "Status"), h("dd", {}, h("span", { class: "status", id: "referral-status" }, label(referral.status)), referral.outcome ? ` (${label(referral.outcome)})` : ""),
      h("dt", {}, "Channel"), h("dd", {}, label(referral.channel)),
      h("dt", {}, "For"), h("dd", { id: "referral-for" }, referral.student_id ? "A student you serve"
        : referral.disclosed && referral.disclosed.student_first_name ? `${referral.disclosed.student_first_name} (shared by the school with consent)`
          : referral.incoming ? "A student (not disclosed)" : "A walk-in family"),
      referral.incoming ? [h("dt", {}, "From"), h("dd", {}, "A school on the platform")] : null,
      h("dt", {}, "Shared"), h("dd", {}, formatDate(referral.created_at)),
      referral.follow_up_on ? [h("dt", {}, "Follow-up"), h("dd", { class: isDue(referral) ? "due" : "" }, isDue(referral) ? `Due (since ${referral.follow_up_on})` : referral.follow_up_on)] : null,
      referral.note ? [h("dt", {}, "Note"), h("dd", {}, referral.note)] : null));
    const events = referral.history || referral.status_history || [];
    const attempts = referral.deliveries || referral.attempts || [];
    replace(history, 
      events.length ? table("Status history", ["When", "Status", "Outcome", "Note", ""], events.map((e) => [formatDate(e.at || e.created_at), label(e.status), label(e.outcome || ""), e.note || "", e.changed_by_name || ""])) : null,
      attempts.length ? table("Delivery", ["Sent", "To", "Channel", "Language", "State", "Attempts", "Problem"], attempts.map((a) => [formatDate(a.sent_at || a.next_attempt_at), label(a.recipient_kind || ""), label(a.channel || referral.channel), a.language ? languageName(a.language) : "", h("span", { class: "status" }, label(a.state || a.status)), String(a.attempts ?? ""), a.last_error || ""])) : null);
  };
  show();

  const isProgram = ["program_staff", "program_admin"].includes(ctx.me.role);
  const status = select("status", STATUSES.map((s) => [s, label(s)]), referral.status);
  const outcome = select("outcome", OUTCOMES, referral.outcome || "");
  const note = h("textarea", { name: "note", rows: 2, maxlength: 500 });
  const submit = h("button", { type: "submit", class: "button" }, "Update status");
  const form = h("form", { class: "form narrow" }, h("h2", {}, "Update"),
    field("New status", status), field("Outcome (when closing)", outcome), field("Note (optional)", note), submit);
  const update = async (body) => {
    try {
      await api.post(`/api/v1/referrals/${referral.id}/status`, body);
      referral = await api.get(`/api/v1/referrals/${referral.id}`);
      show();
      replace(messages, notice("success", `Status is now ${label(referral.status)}.`));
      announce(`Status is now ${label(referral.status)}.`);
    } catch (err) {
      replace(messages, errorNotice(err));
    }
  };
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    submit.disabled = true;
    const body = { status: status.value };
    if (outcome.value) body.outcome = outcome.value;
    if (note.value.trim()) body.note = note.value.trim();
    await update(body);
    note.value = "";
    submit.disabled = false;
  });
  const quick = isProgram ? h("div", { class: "actions" },
    h("button", { type: "button", class: "button", id: "accept", onclick: () => update({ status: "accepted" }) }, "Accept"),
    h("button", { type: "button", class: "danger", id: "decline", onclick: () => update({ status: "rejected", outcome: "no_capacity" }) }, "Decline")) : null;
  const print = referral.channel === "print" ? h("p", {}, h("a", { href: `/api/v1/referrals/${referral.id}/print`, target: "_blank", rel: "noopener" }, "Print view")) : null;
  append(container, summary, print, messages, quick, form, history,
    h("p", {}, h("a", { href: isProgram ? "/incoming" : "/referrals", "data-link": true }, "Back to the list")));
}
