import { api } from "../api.js";
import { announce, errorNotice, h, itemsOf, label, notice, select, append, replace } from "../dom.js";
import { heading } from "../page.js";
import { openShareDialog } from "../share.js";
import { hasRole } from "../session.js";

function row(term, ...value) {
  const parts = value.flat().filter((v) => v !== null && v !== undefined && v !== "");
  return parts.length ? [h("dt", {}, term), h("dd", {}, parts)] : [];
}

export async function render(container, ctx) {
  const service = await api.get(`/api/v1/directory/services/${ctx.params.service_id}`);
  heading(container, service.name, ctx);
  const locations = service.locations || [];
  const ages = service.minimum_age || service.maximum_age ? `${service.minimum_age ?? 0} to ${service.maximum_age ?? "any age"}` : "";
  const hours = service.hours_text || (service.schedules || []).map((s) => s.description || "").filter(Boolean).join("; ");
  append(container, 
    service.organization ? h("p", { class: "meta" }, service.organization.name) : null,
    service.description ? h("p", {}, service.description) : null,
    h("dl", { class: "details" },
      row("Address", locations.map((l) => h("span", { class: "address" }, [l.name, l.address && l.address.address_1, l.address && l.address.city, l.address && l.address.state_province, l.address && l.address.postal_code].filter(Boolean).join(", ")))),
      row("Phone", (service.phones || []).map((p) => h("a", { href: `tel:${p.number}` }, p.number))),
      row("Hours", hours),
      row("Who can use it", service.eligibility_description),
      row("Ages", ages),
      row("Languages", (service.languages || []).map((l) => String(l).toUpperCase()).join(", ")),
      row("Cost", service.cost ? label(service.cost) : ""),
      row("Categories", (service.taxonomy_terms || []).map((t) => t.name).join(", ")),
      row("Website", service.url ? h("a", { href: service.url, rel: "noopener noreferrer", target: "_blank" }, service.url) : "")),
  );
  const actions = h("div", { class: "actions" });
  const shareButton = h("button", { type: "button", class: "button", id: "share-button" }, "Share with a family");
  shareButton.addEventListener("click", async () => { await openShareDialog([service]); shareButton.focus(); });
  append(actions, shareButton);
  const listArea = h("div", { class: "save-to-list" });
  if (hasRole("teacher", "school_admin")) {
    const save = h("button", { type: "button", class: "secondary" }, "Save to a list");
    save.addEventListener("click", async () => {
      try {
        const lists = itemsOf(await api.get("/api/v1/lists"));
        if (!lists.length) {
          replace(listArea, notice("info", "You have no saved lists yet.", h("a", { href: "/lists", "data-link": true }, "Create one")));
          return;
        }
        const choose = select("list_id", lists.map((l) => [l.id, l.name]));
        choose.id = "list-choice";
        const add = h("button", { type: "button", class: "button" }, "Add");
        add.addEventListener("click", async () => {
          try {
            await api.post(`/api/v1/lists/${choose.value}/items`, { service_id: service.id });
            replace(listArea, notice("success", "Saved to the list."));
            announce("Saved to the list.");
          } catch (err) {
            replace(listArea, errorNotice(err));
          }
        });
        replace(listArea, h("div", { class: "actions" }, h("label", { for: "list-choice" }, "List"), choose, add));
      } catch (err) {
        replace(listArea, errorNotice(err));
      }
    });
    append(actions, save);
  }
  append(actions, h("a", { href: "/search", "data-link": true }, "Back to search results"));
  append(container, actions, listArea);
}
