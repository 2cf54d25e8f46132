// Directory search: filters, result cards, paging. Filter state lives in this
// module (memory) so Back returns to the same results without putting
// anything typed into the address bar.
import { api } from "../api.js";
import { announce, errorNotice, field, h, itemsOf, label, select, append, replace } from "../dom.js";
import { heading, resultsRegion } from "../page.js";

const LANGUAGES = [["", "Any language"], ["en", "English"], ["es", "Spanish"], ["zh", "Chinese"], ["vi", "Vietnamese"], ["ar", "Arabic"], ["fr", "French"], ["ht", "Haitian Creole"]];
const COSTS = [["", "Any cost"], ["free", "Free"], ["low", "Free or low cost"]];
const RADII = [["", "Any distance"], ["1", "1 mile"], ["5", "5 miles"], ["10", "10 miles"], ["25", "25 miles"]];
const SORTS = [["relevance", "Best match"], ["distance", "Nearest first"]];
const OPEN = [["", "Any time"], ["now", "Open now"], ["at", "Open at…"]];
const DAYS = [["MO", "Monday"], ["TU", "Tuesday"], ["WE", "Wednesday"], ["TH", "Thursday"], ["FR", "Friday"], ["SA", "Saturday"], ["SU", "Sunday"]];

let state = { q: "", category: "", age: "", grade: "", language: "", cost: "", postcode: "", radius_miles: "", open: "", open_day: "MO", open_time: "16:00", sort: "relevance", page: 1 };
let categoriesCache = null;

async function categories() {
  if (!categoriesCache) {
    try {
      categoriesCache = itemsOf(await api.get("/api/v1/directory/categories"));
    } catch (err) {
      if (err.status === 401) throw err;
      categoriesCache = [];
    }
  }
  return categoriesCache;
}

// Shown when the server relaxed a query no service matched in full (``relaxed`` in the answer).
const RELAXED_LINE = "Not every result matches every word: those matching the most of them come first.";

// A search result is a compact card (id, name, organization_name, description,
// address, hours_text, cost, languages, categories, distance_miles); the full
// service is on its own page.
export function serviceCard(service) {
  const distance = typeof service.distance_miles === "number" ? `${service.distance_miles.toFixed(1)} miles away` : "";
  return h("li", { class: "card service-card" },
    h("h2", {}, h("a", { href: `/services/${service.id}`, "data-link": true }, service.name)),
    service.organization_name ? h("p", { class: "meta" }, service.organization_name) : null,
    service.description ? h("p", {}, service.description) : null,
    service.address || distance ? h("p", {}, [service.address, distance].filter(Boolean).join(" · ")) : null,
    service.hours_text ? h("p", { class: "meta" }, service.hours_text) : null,
    h("ul", { class: "tags", "aria-label": "Details" },
      service.cost ? h("li", {}, label(service.cost)) : null,
      (service.languages || []).map((l) => h("li", {}, String(l).toUpperCase())),
      (service.categories || []).map((name) => h("li", {}, name))));
}

export async function render(container, ctx) {
  heading(container, "Find services", ctx, "Search the directory, then open a service to share it with a family.");
  const cats = await categories();
  const q = h("input", { type: "search", name: "q", value: state.q, placeholder: "e.g. counseling, tutoring, food" });
  const category = select("category", [["", "Any category"], ...cats.map((c) => [c.id, c.name])], state.category);
  const age = h("input", { type: "number", name: "age", min: 0, max: 120, value: state.age, inputmode: "numeric" });
  const grade = select("grade", [["", "Any grade"], ["K", "Kindergarten"], ...Array.from({ length: 12 }, (_, i) => [String(i + 1), `Grade ${i + 1}`])], state.grade);
  const language = select("language", LANGUAGES, state.language);
  const cost = select("cost", COSTS, state.cost);
  const postcode = h("input", { type: "text", name: "postcode", inputmode: "numeric", pattern: "[0-9]{5}", maxlength: 5, value: state.postcode, autocomplete: "off" });
  const radius = select("radius_miles", RADII, state.radius_miles);
  // "Open now" or a chosen day and time (e.g. when the family can go: Tuesday after school).
  const open = select("open", OPEN, state.open);
  const openDay = select("open_day", DAYS, state.open_day);
  const openTime = h("input", { type: "time", name: "open_time", value: state.open_time, step: 900 });
  const openAt = h("div", { class: "open-at", hidden: state.open !== "at" }, field("Day", openDay), field("Time", openTime));
  open.addEventListener("change", () => { openAt.hidden = open.value !== "at"; });
  const sort = select("sort", SORTS, state.sort);
  const submit = h("button", { type: "submit", class: "button" }, "Search");
  const form = h("form", { class: "form", role: "search", "aria-label": "Directory" },
    h("div", { class: "filters" },
      h("div", { class: "wide" }, field("Keyword", q)),
      field("Category", category), field("Age", age, "Or a grade, not both."), field("Grade", grade), field("Language", language),
      field("Cost", cost), field("Postcode", postcode, "Distance is measured from here (your school if empty)."), field("Within", radius),
      field("Sort by", sort),
      field("Open", open), openAt),
    h("div", { class: "actions" }, submit));
  const results = resultsRegion("Search results");
  append(container, form, results);

  async function run() {
    results.setAttribute("aria-busy", "true");
    try {
      const data = await api.get("/api/v1/directory/services", {
        q: state.q, category: state.category, age: state.age, grade: state.grade, language: state.language,
        cost: state.cost, postcode: state.postcode, radius_miles: state.radius_miles, open_now: state.open === "now" ? "true" : "",
        open_day: state.open === "at" ? state.open_day : "", open_time: state.open === "at" ? state.open_time : "",
        sort: state.sort, page: state.page, per_page: 20,
      });
      const items = itemsOf(data);
      const total = data && typeof data.total === "number" ? data.total : items.length;
      // A broad search counts its matches roughly and pages through its best ones only.
      const estimate = Boolean(data && data.total_is_estimate);
      const pages = data && typeof data.pages === "number" ? data.pages : Math.ceil(total / 20);
      const summary = total === 0 ? "No services match. Try fewer filters or a wider distance."
        : estimate ? `About ${total.toLocaleString("en-US")} services found. The best matches are shown; add a word or a filter to narrow the search.`
        : `${total} service${total === 1 ? "" : "s"} found.`;
      // No postcode given: the server measured from the teacher's school, and says which.
      const origin = data && data.measured_from ? h("p", { class: "hint measured-from" }, `Distances from ${data.measured_from}.`) : null;
      const pager = h("nav", { class: "actions", "aria-label": "Result pages" });
      if (state.page > 1) append(pager, h("button", { type: "button", class: "secondary", onclick: () => { state.page -= 1; run(); } }, "Previous page"));
      if (state.page < pages) append(pager, h("button", { type: "button", class: "secondary", onclick: () => { state.page += 1; run(); } }, "Next page"));
      // The server relaxed the query: no service matched all of it, these match the most of it.
      const relaxed = data && data.relaxed && total > 0
        ? h("p", { class: "hint relaxed-query" }, RELAXED_LINE) : null;
      replace(results, h("p", { class: "result-count" }, summary), origin, relaxed, h("ul", { class: "cards" }, items.map(serviceCard)), pager);
      announce(relaxed ? `${summary} ${RELAXED_LINE}` : summary);
    } catch (err) {
      replace(results, errorNotice(err));
    } finally {
      results.setAttribute("aria-busy", "false");
    }
  }

  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    state = { q: q.value.trim(), category: category.value, age: age.value, grade: grade.value, language: language.value,
      cost: cost.value, postcode: postcode.value.trim(), radius_miles: radius.value, open: open.value, open_day: openDay.value, open_time: openTime.value || "16:00", sort: sort.value, page: 1 };
    submit.disabled = true;
    await run();
    submit.disabled = false;
  });
  if (state.q || state.category || state.page > 1) await run();
}
