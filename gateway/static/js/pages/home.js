import { h, append } from "../dom.js";
import { heading } from "../page.js";
import { NAV } from "../routes.js";
import { ROLE_NAMES } from "../session.js";

const HINTS = {
  "/search": "Search the directory and share a service with a family.",
  "/referrals": "Follow your referrals until the family is connected.",
  "/lists": "Your saved lists of services.",
  "/admin/roster": "Import the roster from your student information system.",
  "/admin/users": "Who can sign in, and with which role.",
  "/admin/settings": "Student IDs and analytics consent.",
  "/admin/opt-out": "Record a parent's request to remove a student's information.",
  "/dashboard": "Most requested services and categories, trends, unmet need.",
  "/incoming": "Referrals sent to your program: accept, decline, update.",
  "/operator/directory": "Add, correct or retire the directory's services.",
  "/operator/imports": "Load HSDS directory files and follow their progress.",
  "/operator/tenants": "Districts, schools and programs on the platform.",
  "/audit": "Deletion requests, confirmations, overdue items and the chain check.",
};

export async function render(container, ctx) {
  const name = ctx.me.display_name || ctx.me.email;
  heading(container, `Welcome, ${name}`, ctx, `Signed in as ${ROLE_NAMES[ctx.me.role] || ctx.me.role}.`);
  append(container, h("ul", { class: "cards" }, (NAV[ctx.me.role] || []).map(([path, text]) =>
    h("li", { class: "card" }, h("h2", {}, h("a", { href: path, "data-link": true }, text)), h("p", {}, HINTS[path] || "")))));
}
