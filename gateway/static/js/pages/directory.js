// Directory curation for operators: find a global service, add one, edit one (its
// edit history below the form), retire one. Every rule (who may edit what, valid
// fields) is the API's: this page shows its answers and its reasons.
import { api } from "../api.js";
import { announce, errorNotice, field, h, itemsOf, label, notice, select, table, append, replace } from "../dom.js";
import { heading, resultsRegion } from "../page.js";

const COSTS = [["", "Not known"], ["free", "Free"], ["low", "Low cost"], ["paid", "Paid"]];
const DAYS = [["MO", "Mon"], ["TU", "Tue"], ["WE", "Wed"], ["TH", "Thu"], ["FR", "Fri"], ["SA", "Sat"], ["SU", "Sun"]];

function input(name, attrs = {}) {
  return h("input", { type: "text", name, autocomplete: "off", ...attrs });
}

function numberOrNull(value) {
  return value === "" ? null : Number(value);
}

/** The form's fields as the API's body: empty optional fields are left out (or null on edit). */
function serviceBody(f, editing) {
  const body = { name: f.name.value.trim() };
  const text = (key, value) => {
    if (value) body[key] = value;
    else if (editing) body[key] = null;
  };
  if (f.organization_name.value.trim()) body.organization_name = f.organization_name.value.trim();
  body.description = f.description.value.trim();
  text("eligibility_description", f.eligibility_description.value.trim());
  text("url", f.url.value.trim());
  text("cost", f.cost.value);
  body.minimum_age = numberOrNull(f.minimum_age.value);
  body.maximum_age = numberOrNull(f.maximum_age.value);
  if (!editing) {
    if (body.minimum_age === null) delete body.minimum_age;
    if (body.maximum_age === null) delete body.maximum_age;
  }
  body.languages = f.languages.value.split(",").map((l) => l.trim().toLowerCase()).filter(Boolean);
  body.taxonomy_term_ids = f.category.value ? [f.category.value] : [];
  body.phones = f.phone.value.trim() ? [f.phone.value.trim()] : [];
  const days = DAYS.map(([d]) => d).filter((d) => f[`day_${d}`].checked);
  body.schedules = days.length && f.opens_at.value && f.closes_at.value
    ? [{ days, opens_at: f.opens_at.value, closes_at: f.closes_at.value }] : [];
  if (f.address_1.value.trim()) {
    body.location = {
      address: { address_1: f.address_1.value.trim(), city: f.city.value.trim(), state_province: f.state_province.value.trim(), postal_code: f.postal_code.value.trim() },
      latitude: numberOrNull(f.latitude.value), longitude: numberOrNull(f.longitude.value),
    };
  } else if (editing) {
    body.location = null;
  }
  return body;
}

function fill(f, s) {
  const location = (s.locations || [])[0] || {};
  const address = location.address || {};
  const schedule = (s.schedules || [])[0] || {};
  f.name.value = s.name || "";
  f.organization_name.value = (s.organization && s.organization.name) || "";
  f.description.value = s.description || "";
  f.eligibility_description.value = s.eligibility_description || "";
  f.url.value = s.url || "";
  f.cost.value = s.cost || "";
  f.minimum_age.value = s.minimum_age ?? "";
  f.maximum_age.value = s.maximum_age ?? "";
  f.languages.value = (s.languages || []).join(", ");
  f.category.value = (s.taxonomy_term_ids || [])[0] || "";
  f.phone.value = ((s.phones || [])[0] || {}).number || "";
  for (const [d] of DAYS) f[`day_${d}`].checked = (schedule.days || schedule.byday || []).includes(d);
  f.opens_at.value = (schedule.opens_at || "").slice(0, 5);
  f.closes_at.value = (schedule.closes_at || "").slice(0, 5);
  f.address_1.value = address.address_1 || "";
  f.city.value = address.city || "";
  f.state_province.value = address.state_province || "";
  f.postal_code.value = address.postal_code || "";
  f.latitude.value = location.latitude ?? "";
  f.longitude.value = location.longitude ?? "";
}

export async function render(container, ctx) {
  heading(container, "Directory services", ctx, "Curate the global directory every school searches: add, correct or retire services. HSDS files go through Directory imports.");
  const categories = itemsOf(await api.get("/api/v1/directory/categories"));
  const messages = h("div");

  // -- find ------------------------------------------------------------------
  const q = h("input", { type: "search", name: "q", placeholder: "e.g. tutoring, food pantry" });
  const find = h("form", { class: "form", role: "search", "aria-label": "Directory services" },
    h("div", { class: "filters" }, h("div", { class: "wide" }, field("Keyword", q)),
      h("div", { class: "actions" }, h("button", { type: "submit", class: "button" }, "Find"))));
  const results = resultsRegion("Services found");

  // -- add / edit ------------------------------------------------------------
  const category = h("select", { name: "category" }, h("option", { value: "" }, "No category"),
    categories.map((c) => h("optgroup", { label: c.name }, h("option", { value: c.id }, `${c.name} (all)`),
      (c.children || []).map((t) => h("option", { value: t.id }, t.name)))));
  const f = {
    name: input("name", { required: true, maxlength: 500 }),
    organization_name: input("organization_name", { required: true, maxlength: 500 }),
    description: h("textarea", { name: "description", rows: 3, maxlength: 10000 }),
    eligibility_description: h("textarea", { name: "eligibility_description", rows: 2, maxlength: 5000 }),
    url: input("url", { type: "url", inputmode: "url" }),
    cost: select("cost", COSTS, ""),
    minimum_age: h("input", { type: "number", name: "minimum_age", min: 0, max: 120, inputmode: "numeric" }),
    maximum_age: h("input", { type: "number", name: "maximum_age", min: 0, max: 120, inputmode: "numeric" }),
    languages: input("languages"),
    category,
    phone: input("phone", { type: "tel", inputmode: "tel" }),
    opens_at: h("input", { type: "time", name: "opens_at" }),
    closes_at: h("input", { type: "time", name: "closes_at" }),
    address_1: input("address_1", { maxlength: 500 }),
    city: input("city", { maxlength: 255 }),
    state_province: input("state_province", { maxlength: 100 }),
    postal_code: input("postal_code", { inputmode: "numeric", maxlength: 10 }),
    latitude: h("input", { type: "number", name: "latitude", step: "any", min: -90, max: 90 }),
    longitude: h("input", { type: "number", name: "longitude", step: "any", min: -180, max: 180 }),
  };
  for (const [d] of DAYS) f[`day_${d}`] = h("input", { type: "checkbox", name: `day_${d}` });
  const formTitle = h("h2", { id: "service-form-title" }, "Add a service");
  const save = h("button", { type: "submit", class: "button" }, "Add service");
  const cancel = h("button", { type: "button", class: "secondary", hidden: true }, "Cancel editing");
  const history = h("div", { class: "history" });
  const form = h("form", { class: "form narrow", id: "service-form", "aria-labelledby": "service-form-title" },
    formTitle, field("Name", f.name), field("Organization", f.organization_name, "Who runs it: an existing organization of that name is reused."), field("Description", f.description),
    field("Who can use it", f.eligibility_description), field("Category", f.category),
    field("Languages", f.languages, "ISO codes, comma separated: en, es"), field("Cost", f.cost),
    field("Youngest age", f.minimum_age), field("Oldest age", f.maximum_age), field("Phone", f.phone), field("Website", f.url),
    h("fieldset", {}, h("legend", {}, "Opening hours"),
      h("div", { class: "days" }, DAYS.map(([d, text]) => h("label", { class: "check" }, f[`day_${d}`], text))),
      field("Opens at", f.opens_at), field("Closes at", f.closes_at)),
    h("fieldset", {}, h("legend", {}, "Address"),
      field("Street address", f.address_1), field("City", f.city), field("State", f.state_province), field("Postcode", f.postal_code),
      field("Latitude", f.latitude, "With the longitude, places the service for distance searches."), field("Longitude", f.longitude)),
    h("div", { class: "actions" }, save, cancel));

  append(container, messages, find, results, form, history);
  let editing = null; // the service being edited, or null when adding
  let loaded = null; // the form's body as filled from it: a save sends only what changed

  const startAdding = () => {
    editing = null;
    form.reset();
    replace(formTitle, "Add a service");
    save.textContent = "Add service";
    cancel.hidden = true;
    replace(history);
  };

  const showHistory = async (service) => {
    try {
      const rows = itemsOf(await api.get(`/api/v1/directory/services/${service.id}/history`));
      replace(history, rows.length ? table(`Edit history of ${service.name}`, ["When", "What", "Field", "Before", "After"],
        rows.slice(-30).reverse().map((r) => [r.last_action_date.replace("T", " ").slice(0, 16), label(r.last_action_type), r.field_name || "", r.previous_value || "", r.replacement_value || ""])) : null);
    } catch (err) {
      replace(history, errorNotice(err));
    }
  };

  const startEditing = async (id) => {
    try {
      const service = await api.get(`/api/v1/directory/services/${id}`);
      editing = service;
      fill(f, service);
      loaded = serviceBody(f, true);
      replace(formTitle, `Edit ${service.name}`);
      save.textContent = "Save changes";
      cancel.hidden = false;
      f.name.focus();
      await showHistory(service);
    } catch (err) {
      replace(messages, errorNotice(err));
    }
  };

  const retire = (item, cell) => {
    const yes = h("button", { type: "button", class: "danger" }, "Yes, retire it");
    const no = h("button", { type: "button", class: "secondary" }, "Keep it");
    const ask = h("div", { class: "confirm", role: "group", "aria-label": `Retire ${item.name}?` }, h("p", {}, `Retire “${item.name}”? Search stops showing it; its history stays.`), yes, no);
    replace(cell, ask);
    yes.focus();
    no.addEventListener("click", () => search());
    yes.addEventListener("click", async () => {
      try {
        await api.del(`/api/v1/directory/services/${item.id}`);
        replace(messages, notice("success", `${item.name} retired.`));
        announce(`${item.name} retired.`);
        if (editing && editing.id === item.id) startAdding();
      } catch (err) {
        replace(messages, errorNotice(err));
      }
      await search();
    });
  };

  const search = async () => {
    results.setAttribute("aria-busy", "true");
    try {
      const data = await api.get("/api/v1/directory/services", { q: q.value.trim(), per_page: 50 });
      const items = itemsOf(data);
      // The server relaxed the query: no service matched all of it, these match the most of it.
      const relaxed = data && data.relaxed && items.length
        ? h("p", { class: "hint relaxed-query" }, "Not every result matches every word: those matching the most of them come first.") : null;
      replace(results, relaxed, items.length ? table("Services found", ["Service", "Organization", "Categories", ""], items.map((item) => {
        const edit = h("button", { type: "button", class: "secondary" }, "Edit");
        edit.setAttribute("aria-label", `Edit ${item.name}`);
        edit.addEventListener("click", () => startEditing(item.id));
        const off = h("button", { type: "button", class: "secondary" }, "Retire");
        off.setAttribute("aria-label", `Retire ${item.name}`);
        const cell = h("div", { class: "actions" }, edit, off);
        off.addEventListener("click", () => retire(item, cell));
        return [h("a", { href: `/services/${item.id}`, "data-link": true }, item.name), item.organization_name || "", (item.categories || []).join(", "), cell];
      })) : h("p", {}, "No services match."));
    } catch (err) {
      replace(results, errorNotice(err));
    } finally {
      results.setAttribute("aria-busy", "false");
    }
  };

  find.addEventListener("submit", (event) => { event.preventDefault(); search(); });
  cancel.addEventListener("click", startAdding);
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    save.disabled = true;
    try {
      let body = serviceBody(f, !!editing);
      if (editing) {
        // Only the fields the operator changed: the history then says what really changed.
        body = Object.fromEntries(Object.entries(body).filter(([key, value]) => JSON.stringify(value) !== JSON.stringify(loaded[key])));
      }
      const service = editing
        ? await api.patch(`/api/v1/directory/services/${editing.id}`, body)
        : await api.post("/api/v1/directory/services", body);
      const done = editing ? `${service.name} saved.` : `${service.name} added to the directory.`;
      replace(messages, notice("success", done, h("p", {}, h("a", { href: `/services/${service.id}`, "data-link": true }, "Open its page"))));
      announce(done);
      if (editing) {
        editing = service;
        fill(f, service);
        loaded = serviceBody(f, true);
        await showHistory(service);
      } else {
        startAdding();
      }
      q.value = service.name;
      await search();
    } catch (err) {
      replace(messages, errorNotice(err));
      messages.scrollIntoView({ block: "nearest" });
    } finally {
      save.disabled = false;
    }
  });
}
