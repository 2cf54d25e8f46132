// Picking a student: the list of students the caller may act for is loaded
// page by page and filtered here, in memory, so a student's name never goes
// into a URL or a query string (not even the API's ?search=).
import { allPages } from "./api.js";
import { field, h, replace } from "./dom.js";

export function studentName(s) {
  const name = [s.first_name, s.last_name].filter(Boolean).join(" ") || s.name || s.display_name || "Student";
  return s.grade ? `${name} (grade ${s.grade})` : name;
}

export async function loadStudents() {
  return allPages("/api/v1/students", { per_page: 200 });
}

/** A filter box and a select of students; onChange(studentId). */
export function studentPicker(students, onChange, { labelText = "Student" } = {}) {
  const filter = h("input", { type: "search", name: "student_filter", autocomplete: "off" });
  // Not `required`: the picker may be hidden (a walk-in share), and a hidden required
  // control blocks the form; the page checks that a student was chosen instead.
  const choose = h("select", { name: "student_id" });
  const fill = () => {
    const term = filter.value.trim().toLowerCase();
    const keep = choose.value;
    replace(choose, h("option", { value: "" }, "Choose a student"),
      ...students.filter((s) => !term || studentName(s).toLowerCase().includes(term))
        .map((s) => h("option", { value: s.id, selected: s.id === keep }, studentName(s))));
  };
  filter.addEventListener("input", fill);
  choose.addEventListener("change", () => onChange(choose.value));
  fill();
  return h("div", { class: "student-picker" },
    field(`Find ${labelText.toLowerCase()} by name`, filter, students.length ? `${students.length} student${students.length === 1 ? "" : "s"} you may act for.` : "No students are assigned to you yet."),
    field(labelText, choose));
}
