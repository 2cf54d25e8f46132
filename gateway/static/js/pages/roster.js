// Roster import: preview first (columns kept and dropped, rows with errors),
// then import. The file is sent as text/csv, exactly as exported by the SIS.
import { allPages, api } from "../api.js";
import { announce, errorNotice, field, h, notice, table, append, replace } from "../dom.js";
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

export async function render(container, ctx) {
  heading(container, "Roster import", ctx, "Upload the roster CSV exported from your student information system. Only allowed fields are kept.");
  const file = h("input", { type: "file", name: "roster", accept: ".csv,text/csv", required: true });
  const preview = h("button", { type: "submit", class: "button" }, "Preview");
  const importButton = h("button", { type: "button", class: "button", id: "roster-import", disabled: true }, "Import");
  const form = h("form", { class: "form narrow" }, field("Roster file (CSV)", file, "Re-importing the same file updates students; nothing is duplicated."), h("div", { class: "actions" }, preview, importButton));
  const results = resultsRegion("Roster import result");
  const studentsArea = h("section", { "aria-labelledby": "students-heading" });
  append(container, form, results, studentsArea);
  let csv = null;
  const send = async (path, imported) => {
    results.setAttribute("aria-busy", "true");
    try {
      const result = await api.post(path, csv, { contentType: "text/csv" });
      replace(results, report(result, imported));
      announce(imported ? "Roster imported." : `Preview ready: ${(result.columns_dropped || []).length} columns dropped, ${(result.errors || []).length} rows with errors.`);
      if (imported) await listStudents();
    } catch (err) {
      replace(results, errorNotice(err));
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
    await send("/api/v1/rosters/preview", false);
    preview.disabled = false;
    importButton.disabled = false;
  });
  importButton.addEventListener("click", async () => {
    importButton.disabled = true;
    await send("/api/v1/rosters/import", true);
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
