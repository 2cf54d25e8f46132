// What every page starts with: its heading (focused after navigation) and a
// region where async results are announced.
import { h } from "./dom.js";

export function heading(container, title, ctx, intro) {
  if (ctx && ctx.setTitle) ctx.setTitle(title);
  container.append(h("h1", { id: "page-title", tabindex: "-1" }, title));
  if (intro) container.append(h("p", { class: "intro" }, intro));
}

/** A region whose content changes after async calls; screen readers hear the change. */
export function resultsRegion(label) {
  return h("section", { class: "results", "aria-live": "polite", "aria-busy": "false", "aria-label": label });
}
