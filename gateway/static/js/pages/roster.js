// Roster import: preview first (columns kept and dropped, rows with errors),
// then import. The file is sent as text/csv, exactly as exported by the SIS.
import { allPages, api } from "../api.js";
import { announce, errorNotice, field, h, notice, table, append, replace, select } from "../dom.js";
import { heading, resultsRegion } from "../page.js";
import { studentName } from "../students.js";

function report(result, imported) {
  const dropped = result.columns_dropped || [];
  const errors = result.errors || [];
  const counts = ["created", "updated", "unchanged"].filter((k) => typeof result[k] === "number").map((k) => `${result[k]} ${k}`).join(", ");
  return h("div", { class: "roster-report" },
    h("h2", {}, imported ? "Import result" : "Preview"),
    counts ? h("p", { id: "roster-counts" }, imported ? `Imported: ${counts}.` : `If you import: ${counts}.`) : null,
    h("p", {}, h("strong", {}, "Columns kept: "), (result.columns_kept || []).join(", ") || "none"),
    dropped.length
      ? notice("info", `These columns will be dropped and stored nowhere: ${dropped.join(", ")}.`)
      : h("p", {}, "No columns are dropped."),
    errors.length
      ? table(`${errors.length} row${errors.length === 1 ? "" : "s"} with errors (not imported)`, ["Row", "Column", "Problem"], errors.map((e) => [String(e.row), e.column || "", e.message]))
      : h("p", { class: "ok" }, "No row has errors."));
}

// The school's SIS headers -> our fields: one select per header of the file, saved per school.
function mappingForm(headers, fields, onSave) {
  const options = [["", "(drop this column)"], ...fields.map((f) => [f, f])];
  const selects = headers.map((hd, n) => {
    const control = select(`map-${n}`, options, hd.field || "");
    control.setAttribute("aria-label", `Field for the column ${hd.header}`);
    control.dataset.header = hd.header;
    return control;
  });
  const save = h("button", { type: "submit", class: "button", id: "roster-save-mapping" }, "Save mapping and preview again");
  const form = h("form", { class: "form", id: "roster-mapping" },
    h("h2", {}, "Column mapping"),
    h("p", {}, "Choose which of our fields each column of your file is. The mapping is saved for your school and used for every later import."),
    table("Your file's columns", ["Your column", "Our field"], headers.map((hd, n) => [hd.header, selects[n]])),
    h("div", { class: "actions" }, save));
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    const mapping = {};
    for (const control of selects) mapping[control.dataset.header] = control.value || null;
    save.disabled = true;
    try {
      await onSave(mapping);
    } finally {
      save.disabled = false;
    }
  });
  return form;
}

export async function render(container, ctx) {
  heading(container, "Roster import", ctx, "Upload the roster CSV exported from your student information system. Only allowed fields are kept.");
  const file = h("input", { type: "file", name: "roster", accept: ".csv,text/csv", required: true });
  const preview = h("button", { type: "submit", class: "button" }, "Preview");
  const importButton = h("button", { type: "button", class: "button", id: "roster-import", disabled: true }, "Import");
  const form = h("form", { class: "form narrow" }, field("Roster file (CSV)", file, "Re-importing the same file updates students; nothing is duplicated."), h("div", { class: "actions" }, preview, importButton));
  const results = resultsRegion("Roster import result");
  const mappingArea = h("section", { id: "roster-mapping-area" });
  const studentsArea = h("section", { "aria-labelledby": "students-heading" });
  append(container, form, results, mappingArea, studentsArea);
  let csv = null;
  let fields = [];
  const showMapping = (headers) => {
    if (!headers || !headers.length) return replace(mappingArea);
    replace(mappingArea, mappingForm(headers, fields, async (mapping) => {
      try {
        await api.put("/api/v1/rosters/column-mapping", { mapping });
        announce("Mapping saved.");
        await send("/api/v1/rosters/preview", false);
        importButton.disabled = false;
      } catch (err) {
        replace(results, errorNotice(err));
      }
    }));
  };
  const send = async (path, imported) => {
    results.setAttribute("aria-busy", "true");
    try {
      if (!fields.length) fields = (await api.get("/api/v1/rosters/column-mapping")).fields || [];
      const result = await api.post(path, csv, { contentType: "text/csv" });
      replace(results, report(result, imported));
      showMapping(result.headers);
      announce(imported ? "Roster imported." : `Preview ready: ${(result.columns_dropped || []).length} columns dropped, ${(result.errors || []).length} rows with errors.`);
      if (imported) await listStudents();
    } catch (err) {
      if (err.code === "missing_columns" && err.details && err.details.headers) {
        replace(results, notice("error", err.message));
        showMapping(err.details.headers);
      } else {
        replace(results, errorNotice(err));
      }
      throw err;
    } finally {
      results.setAttribute("aria-busy", "false");
    }
  };
  file.addEventListener("change", () => { importButton.disabled = true; });
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    if (!file.files.length) return;
    csv = await file.files[0].text();
    preview.disabled = true;
    try {
      await send("/api/v1/rosters/preview", false);
      importButton.disabled = false;
    } catch (err) {
      importButton.disabled = true;
    } finally {
      preview.disabled = false;
    }
  });
  importButton.addEventListener("click", async () => {
    importButton.disabled = true;
    await send("/api/v1/rosters/import", true).catch(() => {});
  });

  async function listStudents() {
    try {
      const students = await allPages("/api/v1/students", {}, 5);
      replace(studentsArea, h("h2", { id: "students-heading" }, "Students"),
        students.length ? table("Students of the school", ["Student", "Staff"], students.map((s) => [
          h("a", { href: `/students/${s.id}`, "data-link": true }, studentName(s)), String(s.staff_count ?? 0)])) : h("p", {}, "No students yet."));
    } catch (err) {
      replace(studentsArea, h("h2", { id: "students-heading" }, "Students"), errorNotice(err));
    }
  }
  await listStudents();
}
