// A student's record for a school admin: contacts, staff who serve them,
// the disclosure log, and an export of it all for inspection.
import { allPages, api } from "../api.js";
import { announce, download, errorNotice, formatDate, h, itemsOf, label, notice, table, append, replace } from "../dom.js";
import { heading } from "../page.js";
import { studentName } from "../students.js";

export async function render(container, ctx) {
  const id = ctx.params.student_id;
  // The three requests at once: one round trip, not three in a row.
  const disclosuresCall = api.get(`/api/v1/students/${id}/disclosures`);
  const usersCall = allPages("/api/v1/users", {}, 5);
  disclosuresCall.catch(() => {});
  usersCall.catch(() => {}); // awaited below; the student's own 401/404 may come first
  const student = await api.get(`/api/v1/students/${id}`);
  heading(container, studentName(student), ctx);
  let disclosures = [];
  let disclosureArea;
  try {
    disclosures = itemsOf(await disclosuresCall);
    disclosureArea = disclosures.length ? table("Disclosures to outside organisations", ["When", "To", "What", "Basis"], disclosures.map((d) => [formatDate(d.disclosed_at || d.created_at), d.recipient || d.organization_name || "", d.description || d.data || "", d.basis || d.legitimate_interest || d.consent || ""])) : h("p", {}, "No disclosures recorded.");
  } catch (err) {
    if (err.status === 401) throw err;
    disclosureArea = errorNotice(err);
  }
  const contacts = student.contacts || [];
  const messages = h("div");
  const staffBox = h("fieldset", {}, h("legend", {}, "Staff who serve this student"));
  const saveStaff = h("button", { type: "button", class: "button" }, "Save staff");
  try {
    const users = (await usersCall).filter((u) => ["teacher", "school_admin"].includes(u.role));
    const serving = new Set(student.staff_ids || (student.staff || []).map((s) => s.id || s.user_id));
    append(staffBox, ...users.map((u) => h("label", { class: "check" }, h("input", { type: "checkbox", name: "user_ids", value: u.id, checked: serving.has(u.id) }), `${u.display_name} (${label(u.role)})`)));
  } catch (err) {
    if (err.status === 401) throw err;
    append(staffBox, errorNotice(err));
  }
  saveStaff.addEventListener("click", async () => {
    const ids = [...staffBox.querySelectorAll("input:checked")].map((i) => i.value);
    try {
      await api.put(`/api/v1/students/${id}/staff`, { user_ids: ids });
      replace(messages, notice("success", "Staff assignments saved."));
      announce("Staff assignments saved.");
    } catch (err) {
      replace(messages, errorNotice(err));
    }
  });
  const exportButton = h("button", { type: "button", class: "secondary" }, "Download this record (JSON)");
  exportButton.addEventListener("click", () => download(`student-${id}.json`, JSON.stringify({ student, disclosures }, null, 2)));
  append(container, 
    h("dl", { class: "details" }, h("dt", {}, "Grade"), h("dd", {}, String(student.grade ?? "")),
      student.student_number ? [h("dt", {}, "Student ID"), h("dd", {}, student.student_number)] : null,
      h("dt", {}, "Adult (18+)"), h("dd", {}, student.is_adult ? "Yes" : "No")),
    contacts.length ? table("Family contacts", ["Name", "Relationship", "Email", "Mobile", "Language", "Authorised"], contacts.map((c) => [c.name, c.relationship || "", c.email || "", c.mobile || "", String(c.preferred_language || "").toUpperCase(), c.authorised ? "Yes" : "No"])) : h("p", {}, "No family contacts."),
    messages, staffBox, h("div", { class: "actions" }, saveStaff, exportButton),
    h("h2", {}, "Disclosure log"), disclosureArea);
}
