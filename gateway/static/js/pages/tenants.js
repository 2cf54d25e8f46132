// Tenants for the platform operator: list and create districts, schools, programs.
import { allPages, api } from "../api.js";
import { announce, errorNotice, field, h, label, notice, select, table, append, replace } from "../dom.js";
import { heading, resultsRegion } from "../page.js";

export async function render(container, ctx) {
  heading(container, "Tenants", ctx, "Districts, their schools, independent schools and youth programs.");
  const messages = h("div");
  const kind = select("kind", [["school", "School"], ["district", "District"], ["program", "Youth program"]]);
  const name = h("input", { type: "text", name: "name", required: true, maxlength: 200 });
  const parent = select("parent_id", [["", "None (independent)"]]);
  const postcode = h("input", { type: "text", name: "postcode", inputmode: "numeric", pattern: "[0-9]{5}", maxlength: 5 });
  const form = h("form", { class: "form narrow" }, h("h2", {}, "Add a tenant"), field("Kind", kind), field("Name", name),
    field("District", parent), field("Postcode", postcode, "Used for distances and unmet need."), h("button", { type: "submit", class: "button" }, "Add tenant"));
  const results = resultsRegion("Tenants");
  append(container, messages, form, results);
  const load = async () => {
    try {
      const tenants = await allPages("/api/v1/tenants", {}, 10);
      replace(parent, h("option", { value: "" }, "None (independent)"), ...tenants.filter((t) => t.kind === "district").map((t) => h("option", { value: t.id }, t.name)));
      const names = Object.fromEntries(tenants.map((t) => [t.id, t.name]));
      replace(results, table("Tenants", ["Name", "Kind", "District", "Postcode", "Status"], tenants.map((t) => [t.name, label(t.kind), names[t.parent_id] || "", t.postcode || "", label(t.status || "active")])));
    } catch (err) {
      if (err.status === 401) throw err;
      replace(results, errorNotice(err));
    }
  };
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    const body = { kind: kind.value, name: name.value.trim() };
    if (parent.value && kind.value === "school") body.parent_id = parent.value;
    if (postcode.value.trim()) body.postcode = postcode.value.trim();
    try {
      const tenant = await api.post("/api/v1/tenants", body);
      form.reset();
      replace(messages, notice("success", `${tenant.name} added.`));
      announce(`${tenant.name} added.`);
      await load();
    } catch (err) {
      replace(messages, errorNotice(err));
    }
  });
  await load();
}
