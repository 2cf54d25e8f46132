// Small DOM helpers. Text always goes in as text nodes (never innerHTML), so
// nothing the API returns can run as markup; no style attributes (strict CSP).

let uid = 0;

/** h("a", {href: "/x", class: "btn"}, "text", child) -> element. Example: h("p", {}, "Hi") */
export function h(tag, attrs = {}, ...children) {
  const el = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs || {})) {
    if (value === undefined || value === null || value === false) continue;
    if (key.startsWith("on") && typeof value === "function") {
      el.addEventListener(key.slice(2).toLowerCase(), value);
    } else if (key === "class") {
      el.className = value;
    } else if (key === "dataset") {
      Object.assign(el.dataset, value);
    } else if (key === "value" && "value" in el) {
      el.value = value;
    } else if (value === true) {
      el.setAttribute(key, "");
    } else {
      el.setAttribute(key, String(value));
    }
  }
  append(el, children);
  return el;
}

/** el.append that skips null/undefined/false and flattens arrays (native append writes "null"). */
export function append(el, ...children) {
  for (const child of children.flat(Infinity)) {
    if (child === null || child === undefined || child === false) continue;
    el.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return el;
}

/** Replace el's children (see append). */
export function replace(el, ...children) {
  clear(el);
  return append(el, children);
}

export function clear(el) {
  while (el.firstChild) el.removeChild(el.firstChild);
  return el;
}

export function nextId(prefix = "f") {
  uid += 1;
  return `${prefix}-${uid}`;
}

/** A labelled form control. field("Email", h("input", {type: "email", name: "email"}), "hint") */
export function field(label, control, hint) {
  const id = control.id || nextId(control.name || "f");
  control.id = id;
  const parts = [h("label", { for: id }, label)];
  if (hint) {
    const hintId = `${id}-hint`;
    control.setAttribute("aria-describedby", hintId);
    parts.push(h("p", { class: "hint", id: hintId }, hint));
  }
  parts.push(control);
  return h("div", { class: "field" }, parts);
}

export function select(name, options, selected) {
  return h("select", { name }, options.map(([value, label]) =>
    h("option", { value, selected: String(value) === String(selected ?? "") }, label)));
}

/** Tell screen-reader users what an async action did (the one aria-live region). */
export function announce(message) {
  const live = document.getElementById("live");
  if (!live) return;
  live.textContent = "";
  // A fresh text node after a tick is read out even when the message repeats.
  setTimeout(() => { live.textContent = message; }, 30);
}

/** An inline alert box inside the page: kind "error" | "success" | "info". */
export function notice(kind, message, ...extra) {
  return h("div", { class: `notice notice-${kind}`, role: kind === "error" ? "alert" : "status" }, h("p", {}, message), extra);
}

/** Show an API error next to a form, with field reasons when the API gave them. */
export function errorNotice(err) {
  const details = err && err.details && typeof err.details === "object"
    ? h("ul", {}, Object.entries(err.details).map(([k, v]) => h("li", {}, `${k}: ${[].concat(v).join(" ")}`)))
    : null;
  return notice("error", describeError(err), details);
}

export function formData(form) {
  const out = {};
  for (const [key, value] of new FormData(form).entries()) {
    if (key in out) out[key] = [].concat(out[key], value);
    else out[key] = value;
  }
  return out;
}

/** A captioned table in a wrapper that scrolls sideways on a narrow screen; the wrapper
 * takes keyboard focus (a scrollable region must be reachable without a mouse). */
export function table(caption, headers, rows) {
  return h("div", { class: "table-wrap", tabindex: "0", role: "region", "aria-label": caption },
    h("table", {},
      h("caption", {}, caption),
      h("thead", {}, h("tr", {}, headers.map((t) => h("th", { scope: "col" }, t)))),
      h("tbody", {}, rows.map((cells) => h("tr", {}, cells.map((c) => h("td", {}, c)))))));
}

export function formatDate(value) {
  if (!value) return "";
  const d = new Date(value);
  if (Number.isNaN(d.getTime())) return String(value);
  return d.toLocaleString(undefined, { dateStyle: "medium", timeStyle: "short" });
}

export function formatDay(value) {
  if (!value) return "";
  const d = new Date(value);
  if (Number.isNaN(d.getTime())) return String(value);
  return d.toLocaleDateString(undefined, { dateStyle: "long" });
}

export function label(value) {
  return String(value ?? "").replace(/[_-]+/g, " ").replace(/^./, (c) => c.toUpperCase());
}

/** A button that runs an async action once at a time, with a busy state. */
export function busy(button, fn) {
  return async (event) => {
    if (event) event.preventDefault();
    if (button.disabled) return;
    button.disabled = true;
    button.setAttribute("aria-busy", "true");
    try {
      await fn(event);
    } finally {
      button.disabled = false;
      button.removeAttribute("aria-busy");
    }
  };
}

/** A person-readable sentence for an API error. */
export function describeError(err) {
  if (!err) return "Something went wrong.";
  if (err.status === 404 && String(err.message || "").startsWith("The requested URL")) {
    return "This feature is not available on this server yet.";
  }
  return err.message || "Something went wrong.";
}

/** Items of a list response, whatever its wrapping ({items: [...]} or a bare array). */
export function itemsOf(data) {
  if (Array.isArray(data)) return data;
  if (data && Array.isArray(data.items)) return data.items;
  return [];
}

/** Trigger a download of data made in the page (an export the user asked for). */
export function download(filename, text, type = "application/json") {
  const url = URL.createObjectURL(new Blob([text], { type }));
  const a = h("a", { href: url, download: filename, class: "visually-hidden" }, "download");
  document.body.append(a);
  a.click();
  a.remove();
  setTimeout(() => URL.revokeObjectURL(url), 1000);
}
