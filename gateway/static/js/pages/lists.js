// Saved lists of services: create, open, share a whole list.
import { api } from "../api.js";
import { announce, errorNotice, field, h, itemsOf, notice, append, replace } from "../dom.js";
import { heading, resultsRegion } from "../page.js";
import { openShareDialog } from "../share.js";

export async function render(container, ctx) {
  heading(container, "Saved lists", ctx, "Keep the services you share often; share a whole list at once.");
  const messages = h("div");
  const name = h("input", { type: "text", name: "name", maxlength: 120, required: true });
  const shared = h("input", { type: "checkbox", name: "shared" });
  const form = h("form", { class: "form narrow" }, field("New list name", name),
    h("label", { class: "check" }, shared, "Share with my school"), h("button", { type: "submit", class: "button" }, "Create list"));
  const results = resultsRegion("Your lists");
  append(container, messages, form, results);
  const load = async () => {
    try {
      const lists = itemsOf(await api.get("/api/v1/lists"));
      replace(results, lists.length ? h("ul", { class: "cards" }, lists.map((list) => {
        const items = list.items || list.services || [];
        const services = items.map((i) => ({ id: i.service_id || i.id, name: i.service_name || i.name || "Service" }));
        const share = h("button", { type: "button", class: "button", disabled: !services.length }, "Share this list");
        share.addEventListener("click", () => openShareDialog(services));
        return h("li", { class: "card" }, h("h2", {}, list.name),
          h("p", { class: "meta" }, `${services.length} service${services.length === 1 ? "" : "s"}${list.shared ? " · shared with the school" : ""}`),
          h("ul", {}, services.map((s) => h("li", {}, h("a", { href: `/services/${s.id}`, "data-link": true }, s.name)))), share);
      })) : h("p", {}, "No lists yet."));
    } catch (err) {
      replace(results, errorNotice(err));
    }
  };
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    try {
      await api.post("/api/v1/lists", { name: name.value.trim(), shared: shared.checked });
      form.reset();
      replace(messages, notice("success", "List created."));
      announce("List created.");
      await load();
    } catch (err) {
      replace(messages, errorNotice(err));
    }
  });
  await load();
}
