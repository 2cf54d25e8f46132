import { api, href } from "../api.js";
import { announce, errorNotice, field, h, notice, append, replace } from "../dom.js";
import { heading } from "../page.js";
import { ssoSection } from "./single-sign-on.js";

export async function render(container, ctx) {
  const tenant = await api.get(`/api/v1/tenants/${ctx.me.tenant_id}`);
  heading(container, `Settings of ${tenant.name}`, ctx);
  const messages = h("div");
  const ids = h("input", { type: "checkbox", name: "student_ids_enabled", checked: !!tenant.student_ids_enabled });
  const consent = h("input", { type: "checkbox", name: "analytics_consent", checked: !!tenant.analytics_consent });
  const threshold = h("input", { type: "number", name: "suppression_threshold", min: 5, max: 100, value: tenant.suppression_threshold ?? 10, required: true });
  const form = h("form", { class: "form narrow" },
    h("label", { class: "check" }, ids, "Keep student ID numbers (off: IDs are dropped at import and erased)"),
    h("label", { class: "check" }, consent, "Include our school in de-identified district analytics"),
    field("Suppress counts below", threshold, "Counts smaller than this are shown as “suppressed” on dashboards."),
    h("button", { type: "submit", class: "button" }, "Save settings"));
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    try {
      await api.patch(`/api/v1/tenants/${tenant.id}/settings`, { student_ids_enabled: ids.checked, analytics_consent: consent.checked, suppression_threshold: Number(threshold.value) });
      replace(messages, notice("success", "Settings saved."));
      announce("Settings saved.");
    } catch (err) {
      replace(messages, errorNotice(err));
    }
  });
  append(container, messages, form, await ssoSection(tenant), exportSection(tenant));
}

/** The data owner's full export (every service's records of this school, or of the district
 * and all its schools), e.g. before the contract ends: prepared on request, then downloaded. */
function exportSection(tenant) {
  const result = h("div", { "aria-live": "polite" });
  const prepare = h("button", { type: "button", class: "secondary", id: "prepare-export" }, "Prepare an export of all our data");
  prepare.addEventListener("click", async () => {
    prepare.disabled = true;
    try {
      const made = await api.post("/api/v1/exports", { tenant_id: tenant.id });
      const scope = (made.tenant_ids || []).length > 1 ? ` (${made.tenant_ids.length} organisations)` : "";
      replace(result, notice("success", `The export is ready${scope}.`,
        h("p", {}, h("a", { href: href(`/api/v1/exports/${made.id}`), download: `weintervene-export-${made.id}.zip`, id: "export-download" }, "Download the export (zip of JSON and CSV)"))));
      announce("The export is ready to download.");
    } catch (err) {
      replace(result, errorNotice(err));
    } finally {
      prepare.disabled = false;
    }
  });
  return h("section", { "aria-labelledby": "export-title" }, h("h2", { id: "export-title" }, "All of our data"),
    h("p", {}, "Every service's records of your organisation in one archive, for your own files or before the contract ends. Preparing one is recorded in the audit log."),
    prepare, result);
}
