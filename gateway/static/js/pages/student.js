// A student's record for a school admin: contacts, staff who serve them,
// the disclosure log, and the parent's right to inspect it (FERPA): an inspection
// request opens the student's records from every service as one download, and a
// deletion of the student waits until it is closed.
import { allPages, api, href } from "../api.js";
import { announce, errorNotice, field, formatDate, h, itemsOf, label, notice, select, table, append, replace } from "../dom.js";
import { heading } from "../page.js";
import { received, languageName } from "../languages.js";
import { studentName } from "../students.js";

export async function render(container, ctx) {
  const id = ctx.params.student_id;
  // The three requests at once: one round trip, not three in a row.
  const disclosuresCall = api.get(`/api/v1/students/${id}/disclosures`);
  const usersCall = allPages("/api/v1/users", {}, 5);
  const inspectionsCall = api.get("/api/v1/inspection-requests");
  inspectionsCall.catch(() => {});
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
  append(container, 
    h("dl", { class: "details" }, h("dt", {}, "Grade"), h("dd", {}, String(student.grade ?? "")),
      student.student_number ? [h("dt", {}, "Student ID"), h("dd", {}, student.student_number)] : null,
      h("dt", {}, "Adult (18+)"), h("dd", {}, student.is_adult ? "Yes" : "No")),
    contacts.length ? table("Family contacts", ["Name", "Relationship", "Email", "Mobile", "Language", "Authorised"], contacts.map((c) => [c.name, c.relationship || "", c.email || "", c.mobile || "", c.preferred_language ? (received(c).note || languageName(c.preferred_language)) : "", c.authorised ? "Yes" : "No"])) : h("p", {}, "No family contacts."),
    messages, staffBox, h("div", { class: "actions" }, saveStaff),
    h("h2", {}, "Disclosure log"), disclosureArea,
    await inspections(id, inspectionsCall));
}

const OUTCOMES = [["provided", "Records provided"], ["amended", "Record amended"], ["refused", "Amendment refused"], ["withdrawn", "Withdrawn"]];

/** Inspection and amendment requests of this student: open one, download the records
 * from every service while it is open, close it with its outcome. */
async function inspections(studentId, firstCall) {
  const area = h("section", { class: "inspections", "aria-labelledby": "inspections-title" });
  const messages = h("div");
  const list = h("div");
  const kind = select("kind", [["inspection", "Inspect the records"], ["amendment", "Amend the records"]]);
  const note = h("input", { type: "text", name: "inspection_note", maxlength: 200, autocomplete: "off" });
  const open = h("button", { type: "submit", class: "button" }, "Open the request");
  const form = h("form", { class: "form narrow", id: "inspection-form" }, field("The parent asks to", kind),
    field("Note (optional)", note, "Kept in the record: no names, emails or phone numbers."), open);
  append(area, h("h2", { id: "inspections-title" }, "Inspection of records"),
    h("p", {}, "A parent (or the student, 18 or older) may inspect the records. While a request is open, its records can be downloaded, and a deletion of this student waits."),
    messages, list, form);

  const show = (items) => {
    const mine = items.filter((r) => r.student_id === studentId);
    replace(list, mine.length ? table("Inspection requests", ["Opened", "Kind", "Status", ""], mine.map((r) => {
      if (r.status !== "open") return [formatDate(r.opened_at), label(r.kind), `${label(r.status)}${r.outcome ? ` (${label(r.outcome)})` : ""}`, ""];
      const outcome = select("outcome", OUTCOMES, r.kind === "amendment" ? "amended" : "provided");
      outcome.setAttribute("aria-label", "Outcome");
      const close = h("button", { type: "button", class: "secondary" }, "Close the request");
      close.addEventListener("click", async () => {
        try {
          await api.post(`/api/v1/inspection-requests/${r.id}/close`, { outcome: outcome.value });
          replace(messages, notice("success", "Request closed."));
          announce("Request closed.");
        } catch (err) {
          replace(messages, errorNotice(err));
        }
        await load();
      });
      const records = r.kind === "inspection"
        ? h("a", { href: href(`/api/v1/inspection-requests/${r.id}/records`), download: `records-${r.id}.zip`, class: "records-download" }, "Download the records (zip)") : null;
      return [formatDate(r.opened_at), label(r.kind), label(r.status), h("div", { class: "actions" }, records, outcome, close)];
    })) : h("p", {}, "No inspection requests for this student."));
  };
  const load = async (started) => {
    try {
      show(itemsOf(await (started || api.get("/api/v1/inspection-requests"))));
    } catch (err) {
      if (err.status === 401) throw err;
      replace(list, errorNotice(err));
    }
  };
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    open.disabled = true;
    try {
      await api.post("/api/v1/inspection-requests", { student_id: studentId, kind: kind.value, ...(note.value.trim() ? { note: note.value.trim() } : {}) });
      form.reset();
      replace(messages, notice("success", "Request opened."));
      announce("Inspection request opened.");
      await load();
    } catch (err) {
      replace(messages, errorNotice(err));
    } finally {
      open.disabled = false;
    }
  });
  await load(firstCall);
  return area;
}
