// A parent's opt-out: the admin records the request and how the requester was
// verified; retention deletes everywhere and shows each service's confirmation.
import { api } from "../api.js";
import { announce, errorNotice, field, formatDate, h, itemsOf, label, notice, select, table, append, replace } from "../dom.js";
import { heading, resultsRegion } from "../page.js";
import { loadStudents, studentPicker } from "../students.js";

const METHODS = [
  ["in_person_photo_id", "In person, photo ID checked against the roster contact"],
  ["phone_callback", "Phone call back to the number on file"],
  ["signed_letter_on_file", "Signed letter, signature matched to the one on file"],
  ["email_from_address_on_file", "Email from the address on file"],
  ["other", "Other (say how in the note)"],
];
const REASONS = [["parent_opt_out", "A parent's request"], ["adult_student_request", "The student's own request (18 or older)"]];

export async function render(container, ctx) {
  heading(container, "Parent opt-out", ctx, "Record a request to remove a student's information. Every service deletes it and confirms; new shares for the student are refused.");
  const messages = h("div");
  let studentId = "";
  const pickerArea = h("div", {}, h("p", {}, "Loading students…"));
  const reason = select("reason", REASONS);
  const note = h("textarea", { name: "note", rows: 2, maxlength: 200 });
  const method = select("method", METHODS);
  const verifiedBy = select("verified_by", [[ctx.me.user_id, `${ctx.me.display_name || ctx.me.email} (you)`]], ctx.me.user_id);
  const confirm = h("input", { type: "checkbox", name: "confirm", required: true });
  const submit = h("button", { type: "submit", class: "danger" }, "Record the request and delete");
  const form = h("form", { class: "form narrow" }, pickerArea, field("Reason", reason),
    field("Note (optional)", note, "Kept forever in the audit record: no names, emails or phone numbers."),
    field("How the requester was verified", method), field("Verified by (staff member)", verifiedBy),
    h("label", { class: "check" }, confirm, "I verified that the requester may ask for this, and I understand deletion cannot be undone."), submit);
  const requests = resultsRegion("Opt-out requests");
  append(container, messages, form, h("h2", {}, "Requests of this school"), requests);

  const loadRequests = async () => {
    try {
      const items = itemsOf(await api.get("/api/v1/deletion-requests", { tenant_id: ctx.me.tenant_id, scope: "student" }));
      replace(requests, items.length ? table("Deletion requests", ["Requested", "Status", "Services confirmed", "Still to confirm"], items.map((r) => [formatDate(r.created_at), h("span", { class: r.overdue ? "status due" : "status" }, label(r.status)), `${(r.confirmations || []).length}`, (r.missing_services || []).join(", ")])) : h("p", {}, "No requests yet."));
    } catch (err) {
      if (err.status === 401) throw err;
      replace(requests, errorNotice(err));
    }
  };
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    if (!studentId) {
      replace(messages, notice("error", "Choose the student."));
      return;
    }
    submit.disabled = true;
    try {
      const result = await api.post("/api/v1/deletion-requests", {
        scope: "student", subject_id: studentId, reason: reason.value, ...(note.value.trim() ? { note: note.value.trim() } : {}),
        verification: { method: method.value, verified_by: verifiedBy.value },
      });
      form.reset();
      studentId = "";
      replace(messages, notice("success", `Request recorded: ${label(result.status || "requested")}${result.status_reason ? ` (${result.status_reason})` : ""}. Each service confirms its deletion below.`,
        h("p", {}, "Reference for the family and the auditor: ", h("code", { id: "request-ref" }, result.id))));
      announce("Opt-out request recorded.");
      await loadRequests();
    } catch (err) {
      replace(messages, errorNotice(err));
    } finally {
      submit.disabled = false;
    }
  });
  const requestsLoaded = loadRequests(); // at the same time as the students
  try {
    const students = await loadStudents();
    replace(pickerArea, studentPicker(students, (id) => { studentId = id; }));
  } catch (err) {
    if (err.status === 401) throw err;
    replace(pickerArea, errorNotice(err));
  }
  await requestsLoaded;
}
