// The privacy policy version and its acknowledgement. There is no API for
// policy acknowledgements (yet), so the acknowledged version is kept in a
// first-party cookie `wi_policy_ack` (a version date: no personal data).
import { clear, h, announce, append } from "./dom.js";

const ACK_COOKIE = "wi_policy_ack";
let policyCache = null;

export async function loadPolicy() {
  if (!policyCache) {
    const response = await fetch("/static/policy.json", { credentials: "same-origin" });
    policyCache = await response.json();
  }
  return policyCache;
}

export function acknowledgedVersion() {
  const found = document.cookie.split("; ").find((c) => c.startsWith(`${ACK_COOKIE}=`));
  return found ? decodeURIComponent(found.slice(ACK_COOKIE.length + 1)) : null;
}

export function acknowledge(version) {
  const secure = location.protocol === "https:" ? "; Secure" : "";
  document.cookie = `${ACK_COOKIE}=${encodeURIComponent(version)}; Path=/; Max-Age=31536000; SameSite=Strict${secure}`;
}

/** Show the "new policy" banner to a signed-in user who has not acknowledged this version. */
export async function policyBanner(container, user) {
  let policy;
  try {
    policy = await loadPolicy();
  } catch (err) {
    return;
  }
  clear(container);
  if (policy.incident) {
    append(container, h("section", { class: "banner banner-incident", "aria-label": "Incident notice" },
      h("p", {}, h("strong", {}, "Notice: "), policy.incident)));
  }
  if (!user || acknowledgedVersion() === policy.version) return;
  const button = h("button", { type: "button", class: "button", id: "policy-ack" }, "I have read it");
  const banner = h("section", { class: "banner banner-policy", "aria-label": "Privacy policy update" },
    h("p", {}, "Our privacy policy was updated on ", h("time", { datetime: policy.last_updated }, policy.last_updated), ". ",
      policy.summary || "", " ", h("a", { href: "/privacy", "data-link": true }, "Read the policy")),
    button);
  button.addEventListener("click", () => {
    acknowledge(policy.version);
    banner.remove();
    announce("Thank you. The privacy policy update is acknowledged.");
  });
  append(container, banner);
}
