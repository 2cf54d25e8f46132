// HSDS directory import with progress: upload, then poll the import's status.
import { api, href } from "../api.js";
import { announce, errorNotice, field, h, label, notice, table, append, replace } from "../dom.js";
import { heading, resultsRegion } from "../page.js";

export async function render(container, ctx) {
  heading(container, "Directory imports", ctx, "Load a 211 or partner export in HSDS CSV. Rows that cannot be used are reported with reasons.");
  const file = h("input", { type: "file", name: "file", accept: ".zip,.json,application/zip,application/json", required: true });
  // The package's identity (services/directory/sources.py): re-imports update the records of the same source.
  const source = h("input", { type: "text", name: "source", maxlength: 120, autocomplete: "off" });
  const submit = h("button", { type: "submit", class: "button" }, "Start import");
  const form = h("form", { class: "form narrow" }, field("HSDS file", file, "A .zip of HSDS CSV files, or an HSDS .json file."),
    field("Source", source, "Who publishes this export, e.g. miami-211. Needed when the package has no datapackage.json naming it; use the same name every time so a re-import updates its records."), submit);
  const results = resultsRegion("Import progress");
  append(container, form, results);
  let timer = null;
  // The job as GET /api/v1/directory/imports/{id} gives it: {status, rows_done, rows_total,
  // error, report: {created, updated, unchanged, skipped, files, skipped_rows, columns_dropped}}.
  const show = (job) => {
    const total = job.rows_total || 0;
    const done = job.rows_done || 0;
    const report = job.report || {};
    const skipped = report.skipped_rows || [];
    const dropped = Object.entries(report.columns_dropped || {});
    // Every file of the package: read (rows in = created + updated + unchanged + skipped) or not understood.
    const files = (report.files || []).map((f) => f.status === "read" && f.table
      ? [f.file, f.table, String(f.rows ?? ""), String(f.created), String(f.updated), String(f.unchanged), String(f.skipped)]
      : [f.file, f.status === "read" ? (f.note || "read") : `Not understood: ${f.note || ""}`, f.rows == null ? "" : String(f.rows), "", "", "", ""]);
    const progress = h("progress", { class: "progress", max: total || 1, value: done, "aria-label": "Import progress" });
    replace(results,
      h("p", { id: "import-status" }, `${label(job.status)}: ${done} of ${total || "?"} rows read`),
      progress,
      job.status === "failed" ? notice("error", `The import failed: ${job.error || "no reason given"}.`) : null,
      job.status === "completed" ? h("p", { id: "import-counts" },
        `${report.created ?? 0} created, ${report.updated ?? 0} updated, ${report.unchanged ?? 0} unchanged, ${report.skipped ?? 0} skipped.`) : null,
      dropped.length ? table("Columns not imported (not in HSDS)", ["File", "Columns"], dropped.map(([file, columns]) => [file, [].concat(columns).join(", ")])) : null,
      files.length ? table("Files in the package", ["File", "Read as", "Rows in", "Created", "Updated", "Unchanged", "Skipped"], files) : null,
      job.status === "completed" && skipped.length ? h("p", {}, h("a", { id: "import-skipped-csv", href: href(`/api/v1/directory/imports/${job.id}/skipped.csv`),
        download: "import-skipped-rows.csv" }, `Download every skipped row (CSV, ${skipped.length} rows)`)) : null,
      skipped.length ? table(`${report.skipped ?? skipped.length} rows skipped${skipped.length < (report.skipped || 0) ? ` (the first ${skipped.length} listed)` : ""}`,
        ["File", "Row", "Reason"], skipped.map((r) => [r.file || r.table || "", String(r.row ?? ""), r.reason || ""])) : null);
  };
  const poll = async (id) => {
    try {
      const job = await api.get(`/api/v1/directory/imports/${id}`);
      show(job);
      if (["completed", "failed", "done"].includes(job.status)) {
        announce(`Import ${job.status}.`);
        return;
      }
      timer = setTimeout(() => { if (document.body.contains(results)) poll(id); }, 1000);
    } catch (err) {
      replace(results, errorNotice(err));
    }
  };
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    if (!file.files.length) return;
    clearTimeout(timer);
    submit.disabled = true;
    try {
      const f = file.files[0];
      const job = await api.post("/api/v1/directory/imports", await f.arrayBuffer(), { contentType: f.type || (f.name.endsWith(".json") ? "application/json" : "application/zip"), params: { filename: f.name, ...(source.value.trim() ? { source: source.value.trim() } : {}) } });
      announce("Import started.");
      show(job);
      await poll(job.id);
    } catch (err) {
      replace(results, errorNotice(err));
    } finally {
      submit.disabled = false;
    }
  });
}
