// Saved lists of services: create, open, share a whole list; the owner removes services or the list.
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
        // Only the owner changes a list (the API's rule); others see a shared list as it is.
        const mine = list.owner_id === ctx.me.user_id;
        const change = async (action, done) => {
          try {
            await action();
            replace(messages, notice("success", done));
            announce(done);
            await load();
          } catch (err) {
            replace(messages, errorNotice(err));
          }
        };
        const entry = (s) => {
          const link = h("a", { href: `/services/${s.id}`, "data-link": true }, s.name);
          if (!mine) return h("li", {}, link);
          const remove = h("button", { type: "button", class: "button secondary", "aria-label": `Remove ${s.name} from ${list.name}` }, "Remove");
          remove.addEventListener("click", () => change(
            () => api.del(`/api/v1/lists/${list.id}/items/${s.id}`), `${s.name} removed from ${list.name}.`));
          return h("li", {}, link, " ", remove);
        };
        const actions = [share];
        if (mine) {
          const drop = h("button", { type: "button", class: "button secondary" }, "Delete list");
          drop.addEventListener("click", () => {
            if (window.confirm(`Delete the list "${list.name}"?`)) {
              change(() => api.del(`/api/v1/lists/${list.id}`), `List ${list.name} deleted.`);
            }
          });
          actions.push(" ", drop);
        }
        return h("li", { class: "card" }, h("h2", {}, list.name),
          h("p", { class: "meta" }, `${services.length} service${services.length === 1 ? "" : "s"}${list.shared ? " · shared with the school" : ""}`),
          h("ul", {}, services.map(entry)), ...actions);
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
