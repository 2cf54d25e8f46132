// HSDS directory import with progress: upload, then poll the import's status.
import { api } from "../api.js";
import { announce, errorNotice, field, h, label, table, append, replace } from "../dom.js";
import { heading, resultsRegion } from "../page.js";

export async function render(container, ctx) {
  heading(container, "Directory imports", ctx, "Load a 211 or partner export in HSDS CSV. Rows that cannot be used are reported with reasons.");
  const file = h("input", { type: "file", name: "file", accept: ".zip,.json,application/zip,application/json", required: true });
  const submit = h("button", { type: "submit", class: "button" }, "Start import");
  const form = h("form", { class: "form narrow" }, field("HSDS file", file, "A .zip of HSDS CSV files, or an HSDS .json file."), submit);
  const results = resultsRegion("Import progress");
  append(container, form, results);
  let timer = null;
  const show = (job) => {
    const total = job.total ?? job.rows_total ?? 0;
    const done = job.processed ?? job.rows_processed ?? 0;
    const skipped = job.skipped || job.errors || [];
    const progress = h("progress", { class: "progress", max: total || 1, value: done, "aria-label": "Import progress" });
    replace(results, h("p", {}, `${label(job.status)}: ${done} of ${total || "?"} rows`, typeof job.imported === "number" ? `, ${job.imported} services imported` : ""), progress,
      Array.isArray(skipped) && skipped.length ? table(`${skipped.length} rows skipped`, ["Row", "Reason"], skipped.slice(0, 200).map((s) => [String(s.row ?? ""), s.reason || s.message || ""])) : null);
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
      const job = await api.post("/api/v1/directory/imports", await f.arrayBuffer(), { contentType: f.type || (f.name.endsWith(".json") ? "application/json" : "application/zip"), params: { filename: f.name } });
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
