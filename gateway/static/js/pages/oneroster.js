// OneRoster 1.2 CSV import: preview first (per school what changes, which files and
// columns are never read, every error by file and row), then import the whole package
// or nothing. The package is the SIS's zip, or its CSV files chosen together.
import { api } from "../api.js";
import { announce, errorNotice, field, h, notice, table, append, replace } from "../dom.js";
import { heading, resultsRegion } from "../page.js";

const counts = (obj) => Object.entries(obj || {}).map(([k, v]) => `${v} ${k}`).join(", ");

function report(result, imported) {
  const errors = result.errors || [];
  const warnings = result.warnings || [];
  const dropped = (result.columns_dropped || []).filter((d) => d.values > 0);
  const orgs = result.orgs || [];
  const skipped = result.skipped || [];
  return h("div", { class: "roster-report", id: "oneroster-report" },
    h("h2", {}, imported ? "Import result" : "Preview"),
    errors.length
      ? notice("error", `The package has ${errors.length} error${errors.length === 1 ? "" : "s"}: nothing ${imported ? "was" : "will be"} imported until they are fixed.`)
      : h("p", { class: "ok", id: "oneroster-counts" },
        `${imported ? "Imported" : "If you import"}: students ${counts(result.students)}; family contacts ${counts(result.contacts)}; serves links ${counts(result.serves_links)}.`),
    h("p", {}, h("strong", {}, "Files read: "), (result.files_read || []).map((f) => `${f}${result.modes && result.modes[f] ? ` (${result.modes[f]})` : ""}`).join(", ")),
    (result.files_not_read || []).length
      ? notice("info", `These files are not read and stored nowhere: ${result.files_not_read.join(", ")}.`)
      : null,
    dropped.length
      ? table("Columns not on the allow-list: dropped before storage", ["File", "Column", "Cells with a value"],
        dropped.map((d) => [d.file, d.column, String(d.values)]))
      : null,
    orgs.length
      ? table("Orgs of the package", ["Org", "Type", "Matched to"], orgs.map((o) => [o.name || o.sourced_id, o.type || "", o.tenant_name || "not one you manage: skipped"]))
      : null,
    skipped.length
      ? table("Skipped: orgs you do not manage", ["Org", "Users", "Classes", "Enrollments"],
        skipped.map((s) => [s.org_name || s.org_sourced_id, String(s.users || 0), String(s.classes || 0), String(s.enrollments || 0)]))
      : null,
    h("p", {}, result.contacts_authorised
      ? "Family contacts are imported as authorised (you confirmed the school's records authorise them)."
      : "Family contacts are imported as not authorised: nothing is shared with them until they are."),
    errors.length
      ? table(`${errors.length} error${errors.length === 1 ? "" : "s"}`, ["File", "Row", "Column", "Problem"],
        errors.map((e) => [e.file || "", e.row == null ? "" : String(e.row), e.column || "", e.message]))
      : h("p", {}, "No row has errors."),
    warnings.length
      ? table(`${warnings.length} warning${warnings.length === 1 ? "" : "s"} (imported without the value named)`, ["File", "Row", "Column", "Note"],
        warnings.map((e) => [e.file || "", e.row == null ? "" : String(e.row), e.column || "", e.message]))
      : null);
}

export async function render(container, ctx) {
  heading(container, "OneRoster import", ctx,
    "Upload the OneRoster 1.2 CSV package exported from your student information system (the zip, or its CSV files). Only allowed fields are kept; demographics are never read.");
  const file = h("input", { type: "file", name: "package", accept: ".zip,.csv,application/zip,text/csv", multiple: true, required: true });
  const authorised = h("input", { type: "checkbox", name: "contacts_authorised", id: "oneroster-authorised" });
  const birthDates = h("input", { type: "checkbox", name: "birth_dates", id: "oneroster-birth-dates" });
  const preview = h("button", { type: "submit", class: "button" }, "Preview");
  const importButton = h("button", { type: "button", class: "button", id: "oneroster-import", disabled: true }, "Import");
  const form = h("form", { class: "form narrow" },
    field("Package (zip or CSV files)", file, "Re-importing the same package changes nothing; a bulk package marks students it no longer lists as left."),
    h("div", { class: "field checkbox" }, authorised,
      h("label", { for: "oneroster-authorised" }, "These family contacts are authorised by the school's records (recorded with the import)")),
    h("div", { class: "field checkbox" }, birthDates,
      h("label", { for: "oneroster-birth-dates" }, "Import birth dates (only demographics.csv's birthDate is read)")),
    h("div", { class: "actions" }, preview, importButton));
  const results = resultsRegion("OneRoster import result");
  append(container, form, results);
  let previewed = null;

  const body = () => {
    const data = new FormData();
    for (const f of file.files) data.append("files", f, f.name);
    return data;
  };
  const params = () => ({ contacts_authorised: authorised.checked ? "true" : undefined, birth_dates: birthDates.checked ? "true" : undefined });
  const send = async (path, imported) => {
    results.setAttribute("aria-busy", "true");
    try {
      const result = await api.post(path, body(), { params: params() });
      replace(results, report(result, imported));
      announce(imported ? "Package imported." : `Preview ready: ${(result.errors || []).length} errors.`);
      return result;
    } catch (err) {
      replace(results, err.code === "roster_package_invalid" && err.details ? report(err.details, imported) : errorNotice(err));
      return null;
    } finally {
      results.setAttribute("aria-busy", "false");
    }
  };
  const reset = () => { importButton.disabled = true; previewed = null; };
  file.addEventListener("change", reset);
  authorised.addEventListener("change", reset);
  birthDates.addEventListener("change", reset);
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    if (!file.files.length) return;
    preview.disabled = true;
    previewed = await send("/api/v1/rosters/oneroster/preview", false);
    preview.disabled = false;
    importButton.disabled = !(previewed && previewed.can_import);
  });
  importButton.addEventListener("click", async () => {
    importButton.disabled = true;
    await send("/api/v1/rosters/oneroster/import", true);
  });
}
