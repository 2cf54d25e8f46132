// The app shell: routing without reloads, role-aware navigation, the privacy
// policy banner, focus management and the session-expiry path.
import { announce, clear, h, append } from "./dom.js";
import { api } from "./api.js";
import { NAV, match } from "./routes.js";
import { ROLE_NAMES, loadMe, me, setMe, setProviderSignOut } from "./session.js";
import { policyBanner, seedNotices } from "./policy.js";

const main = () => document.getElementById("main");
let renderToken = 0;
let firstRender = true;
let lastSessionCheck = Date.now();
const SESSION_CHECK_MS = 60 * 1000;

/** A session may end while the tab sits idle: re-check now and then, and on return to the tab. */
async function checkSession() {
  if (!me()) return;
  lastSessionCheck = Date.now();
  try {
    await api.get("/api/v1/me"); // a 401 raises wi:session-expired
  } catch (err) {
    // handled by the session-expired listener (401) or harmless (network)
  }
}

/** Go to an app path without a reload. navigate("/search") */
export function navigate(path, { replace = false } = {}) {
  if (replace) history.replaceState(null, "", path);
  else history.pushState(null, "", path);
  render();
}

/** A safe "come back here" path: only our own absolute paths. */
export function safeNext(value) {
  if (typeof value !== "string" || !value.startsWith("/") || value.startsWith("//") || value.startsWith("/\\")) return "/";
  return match(value.split("?")[0]) ? value : "/";
}

// Development mode's "Messages sent" (gateway/routes/dev.py): "demo" for everyone while the
// demo's catcher runs, "operator" for the operator alone; absent in production.
const DEV_MESSAGES = document.querySelector("meta[name=wi-dev-messages]")?.content || null;

function renderNav() {
  const nav = document.getElementById("site-nav");
  const toggle = document.getElementById("nav-toggle");
  clear(nav);
  const user = me();
  if (!user) {
    toggle.hidden = true;
    append(nav, h("ul", {}, h("li", {}, h("a", { href: "/signin", "data-link": true }, "Sign in"))));
    return;
  }
  toggle.hidden = false;
  const entries = [...(NAV[user.role] || [])];
  if (DEV_MESSAGES === "demo" || (DEV_MESSAGES === "operator" && user.role === "operator")) entries.push(["/messages", "Messages sent"]);
  const links = entries.map(([path, text]) => h("li", {}, h("a", { href: path, "data-link": true }, text)));
  append(nav, 
    h("ul", { class: "nav-links" }, links),
    h("ul", { class: "nav-user" },
      h("li", { class: "who" }, h("span", { class: "who-name" }, user.display_name || user.email), " ", h("span", { class: "who-role" }, ROLE_NAMES[user.role] || user.role)),
      h("li", {}, h("a", { href: "/account/password", "data-link": true }, "Password")),
      h("li", {}, h("button", { type: "button", class: "link-button", id: "sign-out", onclick: signOut }, "Sign out"))),
  );
  markCurrent();
}

function markCurrent() {
  const here = location.pathname;
  for (const a of document.querySelectorAll("#site-nav a")) {
    const path = a.getAttribute("href");
    const current = path === here || (path !== "/" && here.startsWith(`${path}/`));
    if (current) a.setAttribute("aria-current", "page");
    else a.removeAttribute("aria-current");
  }
}

async function signOut() {
  try {
    const ended = await api.del("/api/v1/sessions/current", { allow401: true });
    setProviderSignOut(ended && ended.provider_sign_out_url);
  } catch (err) {
    // Already gone on the server: signing out locally is what matters.
  }
  setMe(null);
  navigate("/signout", { replace: true });
}

function denied(route) {
  return h("section", { class: "denied", "aria-labelledby": "page-title" },
    h("h1", { id: "page-title", tabindex: "-1" }, "You do not have access to this page"),
    h("p", {}, `The page “${route.title}” is not available to your role (${ROLE_NAMES[me().role] || me().role}).`),
    h("p", {}, h("a", { href: "/", "data-link": true }, "Go to your home page")));
}

function notFound() {
  return h("section", {},
    h("h1", { id: "page-title", tabindex: "-1" }, "Page not found"),
    h("p", {}, "There is no page at this address."),
    h("p", {}, h("a", { href: "/", "data-link": true }, "Go to your home page")));
}

export async function render() {
  const token = ++renderToken;
  const found = match(location.pathname);
  const target = main();
  target.setAttribute("aria-busy", "true");
  if (me() && Date.now() - lastSessionCheck > SESSION_CHECK_MS) {
    await checkSession();
    if (token !== renderToken) return;
  }
  const user = me();
  renderNav();
  policyBanner(document.getElementById("banners"), user); // not awaited: never delays the page
  let content;
  let title = "Page not found";
  if (!found) {
    content = notFound();
  } else if (!found.route.public && !user) {
    const next = location.pathname;
    navigate(`/signin${next && next !== "/" ? `?next=${encodeURIComponent(next)}` : ""}`, { replace: true });
    return;
  } else if (found.route.roles && !found.route.roles.includes(user.role)) {
    content = denied(found.route);
    title = "Access denied";
  } else {
    title = found.route.title;
    content = h("div", { class: "page", "data-page": found.route.page });
    try {
      const module = await import(`./pages/${found.route.page}.js`);
      if (token !== renderToken) return;
      await module.render(content, {
        params: found.params, query: new URLSearchParams(location.search), route: found.route,
        navigate, me: me(), setTitle: (t) => { document.title = `${t} · WeIntervene`; },
      });
    } catch (err) {
      if (err && err.status === 401) return; // the session-expired handler takes over
      console.warn("page failed", err);
      clear(content).append(
        h("h1", { id: "page-title", tabindex: "-1" }, title),
        h("div", { class: "notice notice-error", role: "alert" }, h("p", {}, err && err.message ? err.message : "This page could not be loaded.")));
    }
  }
  if (token !== renderToken) return;
  clear(target).append(content);
  target.setAttribute("aria-busy", "false");
  if (!document.title.endsWith("WeIntervene") || !found || found.route.title === title) document.title = `${title} · WeIntervene`;
  markCurrent();
  // After an in-app navigation, move focus to the new page's heading (as a page
  // load would reset it); on the first load, leave it at the top for the skip link.
  if (!firstRender) {
    const heading = target.querySelector("h1");
    (heading || target).focus({ preventScroll: false });
    announce(`${document.title}`);
  }
  firstRender = false;
}

function onClick(event) {
  const a = event.target.closest && event.target.closest("a[data-link]");
  if (!a || event.defaultPrevented || event.button !== 0 || event.metaKey || event.ctrlKey || event.shiftKey || a.target) return;
  const url = new URL(a.href, location.href);
  if (url.origin !== location.origin) return;
  event.preventDefault();
  document.getElementById("site-nav").classList.remove("open");
  document.getElementById("nav-toggle").setAttribute("aria-expanded", "false");
  navigate(url.pathname + url.search);
}

function onSessionExpired() {
  const here = location.pathname;
  const found = match(here);
  setMe(null);
  if (found && found.route.public) return;
  navigate(`/signin?expired=1&next=${encodeURIComponent(here)}`, { replace: true });
}

async function boot() {
  document.addEventListener("click", onClick);
  window.addEventListener("popstate", () => { if (!location.hash) render(); });
  window.addEventListener("wi:session-expired", onSessionExpired);
  window.addEventListener("wi:notices-changed", () => policyBanner(document.getElementById("banners"), me()));
  document.addEventListener("visibilitychange", () => { if (document.visibilityState === "visible") checkSession(); });
  document.getElementById("nav-toggle").addEventListener("click", (event) => {
    const nav = document.getElementById("site-nav");
    const open = nav.classList.toggle("open");
    event.currentTarget.setAttribute("aria-expanded", String(open));
  });
  // The shell usually brings who is signed in and the notices (see gateway/routes/webapp.py):
  // then the page's own data is the only request. Without it, ask the API, fetching this
  // page's module meanwhile (two round trips at once).
  const boot = readBoot();
  if (boot) {
    setMe(boot.me || null);
    if (boot.notices) seedNotices(boot.me || null, boot.notices);
    await render();
    return;
  }
  const first = match(location.pathname);
  if (first) import(`./pages/${first.route.page}.js`).catch(() => {});
  try {
    await loadMe();
  } catch (err) {
    console.warn("could not load the signed-in user", err);
  }
  await render();
}

/** The shell's <meta name="wi-boot"> (JSON), read once and removed: it is only true at load time. */
function readBoot() {
  const meta = document.querySelector("meta[name=wi-boot]");
  if (!meta) return null;
  meta.remove();
  try {
    return JSON.parse(meta.content);
  } catch (err) {
    return null;
  }
}

boot();
