// The privacy policy version, its acknowledgement, and incident notices: all from
// the API (GET /api/v1/notices, stored by identity). Who acknowledged which
// version is recorded per user on the server, so it follows a person from browser
// to browser and nothing about it is kept here.
import { api } from "./api.js";
import { clear, h, announce, append } from "./dom.js";

// Re-asked at most this often while moving around the app: a new notice shows
// within a minute, and a page change costs no extra request in between.
const MAX_AGE_MS = 60 * 1000;
let cache = null; // {userId, at, data}

/** {policy: {version, last_updated, summary}, incidents: [...], acknowledged: bool|null}. */
export async function loadNotices(user, { fresh = false } = {}) {
  const userId = user ? user.user_id : null;
  if (fresh || !cache || cache.userId !== userId || Date.now() - cache.at > MAX_AGE_MS) {
    const data = await api.get("/api/v1/notices");
    cache = { userId, at: Date.now(), data };
  }
  return cache.data;
}

/** What the shell brought at load time (the same answer as GET /api/v1/notices). */
export function seedNotices(user, data) {
  cache = { userId: user ? user.user_id : null, at: Date.now(), data };
}

/** Record that the signed-in user read ``version``; the shared state follows. */
export async function acknowledge(version) {
  const result = await api.post("/api/v1/me/policy-acknowledgement", { version });
  if (cache && cache.data.policy && cache.data.policy.version === version) cache.data.acknowledged = true;
  return result;
}

/** Forget what was loaded (after an operator publishes, so their own banner updates at once). */
export function forgetNotices() {
  cache = null;
}

function incidentBanner(incident) {
  return h("section", { class: `banner banner-incident banner-${incident.severity}`, "aria-label": "Incident notice" },
    h("p", {}, h("strong", {}, incident.severity === "info" ? "Notice: " : "Service notice: "), incident.message));
}

/** Incident notices for everyone; the "policy updated" banner for a signed-in user who has not read it.
 * The container gets data-loaded once it shows what the API said (tests and tools wait on it). */
export async function policyBanner(container, user) {
  let data;
  try {
    data = await loadNotices(user);
  } catch (err) {
    container.dataset.loaded = "error";
    return; // the banner never blocks a page; a 401 here is handled by the app
  }
  clear(container);
  append(container, (data.incidents || []).map(incidentBanner));
  const policy = data.policy;
  if (user && policy && data.acknowledged === false) {
    const button = h("button", { type: "button", class: "button", id: "policy-ack" }, "I have read it");
    const status = h("p", { class: "banner-status", role: "status" });
    const banner = h("section", { class: "banner banner-policy", "aria-label": "Privacy policy update" },
      h("p", {}, "Our privacy policy was updated on ", h("time", { datetime: policy.last_updated }, policy.last_updated), ". ",
        policy.summary || "", " ", h("a", { href: "/privacy", "data-link": true }, "Read the policy")),
      button, status);
    button.addEventListener("click", async () => {
      button.disabled = true;
      try {
        await acknowledge(policy.version);
        banner.remove();
        announce("Thank you. The privacy policy update is acknowledged.");
      } catch (err) {
        button.disabled = false;
        if (err.code === "policy_version_not_current") {
          forgetNotices();
          policyBanner(container, user); // a newer version came out meanwhile: show that one
        } else {
          status.textContent = err.message || "Could not record that. Try again.";
        }
      }
    });
    append(container, banner);
  }
  container.dataset.loaded = "true";
}
