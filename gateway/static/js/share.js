// The share dialog: pick a student the user serves (or a walk-in family),
// authorised contacts, a channel, a language and a note. The API decides
// who may receive what; this only offers the choices it returned.
import { api } from "./api.js";
import { announce, clear, errorNotice, field, h, label, notice, select, append, replace } from "./dom.js";
import { loadStudents, studentPicker } from "./students.js";
import { me } from "./session.js";
import { SHIPPED, receivedText } from "./languages.js";

const CHANNELS = [["email", "Email"], ["sms", "Text message (SMS)"], ["print", "Print"], ["link", "Link"]];
const LANGUAGES = [["", "Each contact's preferred language"], ...SHIPPED];

function today() {
  const d = new Date();
  return `${d.getFullYear()}-${String(d.getMonth() + 1).padStart(2, "0")}-${String(d.getDate()).padStart(2, "0")}`;
}

/** Consent to disclose to an outside program (FERPA): who gave it, how, when. The API
 * asks for it (consent_required) when a service belongs to another tenant's program. */
function consentFields() {
  const givenBy = select("consent_given_by", [["parent", "A parent"], ["guardian", "A guardian"], ["eligible_student", "The student (18 or older)"]], "parent");
  const method = select("consent_method", [["written", "In writing"], ["electronic", "Electronically"], ["verbal", "Verbally"]], "written");
  const givenOn = h("input", { type: "date", name: "consent_given_on", value: today(), max: today() });
  const area = h("fieldset", { class: "consent-area" }, h("legend", {}, "Consent to share with an outside program"),
    h("p", { class: "hint" }, "This service is run by a program outside your school: the student's first name goes to it, and the school's disclosure log records it."),
    field("Consent given by", givenBy), field("How", method), field("On", givenOn));
  return { area, value: () => ({ given_by: givenBy.value, method: method.value, given_on: givenOn.value }) };
}

/** A random UUID (v4): crypto.randomUUID where the page is a secure context (HTTPS,
 * localhost), else built from crypto.getRandomValues, which every browser has. */
export function newKey() {
  if (crypto.randomUUID) return crypto.randomUUID();
  const b = crypto.getRandomValues(new Uint8Array(16));
  b[6] = (b[6] & 0x0f) | 0x40;
  b[8] = (b[8] & 0x3f) | 0x80;
  const x = [...b].map((v) => v.toString(16).padStart(2, "0")).join("");
  return `${x.slice(0, 8)}-${x.slice(8, 12)}-${x.slice(12, 16)}-${x.slice(16, 20)}-${x.slice(20)}`;
}

/** Before sending: the language each contact will receive, kept current with the Language choice. */
function contactChoices(student, language) {
  const contacts = student.contacts || [];
  if (student.is_adult) {
    contacts.unshift({ id: student.id, name: `${student.first_name || "The student"} (the student, 18 or older)`, authorised: true, self: true });
  }
  if (!contacts.length) return h("p", {}, "This student has no family contacts on the roster.");
  return h("fieldset", {}, h("legend", {}, "Send to"),
    contacts.map((c) => {
      const how = [c.relationship, c.email ? "email" : null, c.mobile ? "mobile" : null, c.preferred_language ? `prefers ${String(c.preferred_language).toUpperCase()}` : null].filter(Boolean).join(", ");
      const receives = h("span", { class: "hint contact-language", "data-contact-language": c.id });
      const sync = () => { receives.textContent = `${receivedText(c, language.value)}.`.replace(/^./, (x) => x.toUpperCase()); };
      sync();
      language.addEventListener("change", sync);
      return h("label", { class: "check" },
        h("input", { type: "checkbox", name: "contact_ids", value: c.id, disabled: c.authorised === false }),
        h("span", {}, `${c.name}${how ? ` (${how})` : ""}${c.authorised === false ? " (not authorised to receive information)" : ""}`,
          receives));
    }));
}

/** Open the dialog for services; resolves when it closes. */
export async function openShareDialog(services) {
  const dialog = h("dialog", { "aria-labelledby": "share-title" });
  const body = h("div", { class: "dialog-body" });
  append(dialog, body);
  document.body.append(dialog);
  const title = services.length === 1 ? `Share “${services[0].name}”` : `Share ${services.length} services`;
  const messages = h("div");
  const who = h("fieldset", {}, h("legend", {}, "Who is it for?"),
    h("label", { class: "check" }, h("input", { type: "radio", name: "who", value: "student", checked: true }), "A student I serve"),
    h("label", { class: "check" }, h("input", { type: "radio", name: "who", value: "walkin" }), "A walk-in family (nothing about them is stored)"));
  const studentArea = h("div", { class: "student-area" }, h("p", {}, "Loading your students…"));
  const contactsArea = h("div", { class: "contacts-area" });
  const channel = select("channel", CHANNELS, "email");
  const language = select("language", LANGUAGES, "");
  const note = h("textarea", { name: "note", maxlength: 1000, rows: 3 });
  const consent = consentFields();
  const user = me();
  // A service of another tenant (a youth program) needs the family's consent.
  let needsConsent = services.some((s) => s.owner_tenant_id && (!user || s.owner_tenant_id !== user.tenant_id));
  consent.area.hidden = !needsConsent;
  const submit = h("button", { type: "submit", class: "button" }, "Share");
  const cancel = h("button", { type: "button", class: "secondary" }, "Cancel");
  const form = h("form", { class: "share-form", method: "dialog" },
    who, studentArea, contactsArea, consent.area, field("Channel", channel), field("Language", language),
    field("Note for the family (optional)", note, "Up to 1000 characters. Do not include health or discipline details."),
    h("div", { class: "actions" }, submit, cancel));
  append(body, h("h2", { id: "share-title" }, title), messages, form);

  let studentId = "";
  let students = [];
  // One Idempotency-Key per share meant: pressing Share again with the same choices
  // (after a time-out or a lost connection, when the first may have gone through)
  // sends the same key, and the API answers with that share instead of a second one.
  // Changed choices are another share: a new key.
  let attempt = { key: "", payload: "" };
  const isWalkIn = () => form.querySelector("input[name=who]:checked").value === "walkin";
  const chooseStudent = async (id) => {
    studentId = id;
    clear(contactsArea);
    if (!id) return;
    try {
      const student = await api.get(`/api/v1/students/${id}`);
      append(contactsArea, contactChoices(student, language));
    } catch (err) {
      append(contactsArea, errorNotice(err));
    }
  };
  const syncWho = () => {
    const walkIn = isWalkIn();
    studentArea.hidden = walkIn;
    consent.area.hidden = walkIn || !needsConsent;
    contactsArea.hidden = walkIn;
    if (walkIn) channel.value = "print";
  };
  who.addEventListener("change", syncWho);
  cancel.addEventListener("click", () => dialog.close());
  // A link to another page (e.g. "Follow this referral") leaves the dialog behind.
  dialog.addEventListener("click", (event) => { if (event.target.closest("a[data-link]")) dialog.close(); });

  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    const walkIn = isWalkIn();
    const contactIds = [...form.querySelectorAll("input[name=contact_ids]:checked")].map((i) => i.value);
    if (!walkIn && !studentId) {
      replace(messages, notice("error", "Choose a student first."));
      return;
    }
    if (!walkIn && !contactIds.length && channel.value !== "print") {
      replace(messages, notice("error", "Choose at least one authorised contact."));
      return;
    }
    const payload = { service_ids: services.map((s) => s.id), channel: channel.value, contact_ids: walkIn ? [] : contactIds };
    if (!walkIn) payload.student_id = studentId;
    if (language.value) payload.language = language.value;
    if (note.value.trim()) payload.note = note.value.trim();
    if (!walkIn && needsConsent) payload.consent = consent.value();
    const sent = JSON.stringify(payload);
    if (attempt.payload !== sent) attempt = { key: newKey(), payload: sent };
    submit.disabled = true;
    try {
      const result = await api.post("/api/v1/referrals", payload, { headers: { "Idempotency-Key": attempt.key } });
      const referrals = (result && result.items) || [];
      const links = referrals.flatMap((r) => {
        const out = [];
        if (channel.value === "print") {
          out.push(h("li", {}, h("a", { href: `/api/v1/referrals/${r.id}/print`, target: "_blank", rel: "noopener" }, "Open the print view"), " · ",
            h("a", { href: `/api/v1/referrals/${r.id}/print.pdf`, target: "_blank", rel: "noopener" }, "PDF")));
        }
        if (r.link_url || r.public_url) out.push(h("li", {}, "Link for the family: ", h("code", {}, r.link_url || r.public_url)));
        if (!walkIn) out.push(h("li", {}, h("a", { href: `/referrals/${r.id}`, "data-link": true }, "Follow this referral")));
        return out;
      });
      const done = `Shared by ${label(channel.value).toLowerCase()}${walkIn ? " for a walk-in family" : ` with ${contactIds.length || "no"} contact${contactIds.length === 1 ? "" : "s"}`}.`;
      form.hidden = true;
      replace(messages, notice("success", done, links.length ? h("ul", {}, links) : null),
        h("div", { class: "actions" }, h("button", { type: "button", class: "button", onclick: () => dialog.close() }, "Close")));
      announce(done);
      messages.querySelector("button").focus();
    } catch (err) {
      replace(messages, errorNotice(err));
      if (err.status === 0 || err.status >= 502) {
        // It may have been shared: say that pressing Share again is safe (same key).
        append(messages, notice("info", "If it did go through, pressing Share again will not send it twice."));
      }
      if (err.code === "consent_required") {
        needsConsent = true; // the API knows the service is a program's: ask, then try again
        consent.area.hidden = false;
        consent.area.querySelector("select").focus();
      }
    } finally {
      submit.disabled = false;
    }
  });

  dialog.showModal();
  try {
    students = await loadStudents();
    replace(studentArea, studentPicker(students, chooseStudent));
  } catch (err) {
    if (err.status === 401) { dialog.close(); return; }
    replace(studentArea, errorNotice(err), h("p", {}, "You can still share with a walk-in family."));
  }
  return new Promise((resolve) => dialog.addEventListener("close", () => { dialog.remove(); resolve(); }));
}
