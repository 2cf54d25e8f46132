// Users and roles: list, create (they set a password from the emailed reset
// link), change role, deactivate. An operator invites a tenant's first administrator
// only and may only deactivate a tenant's account (anything more: /break-glass).
import { allPages, api } from "../api.js";
import { announce, errorNotice, field, h, label, notice, select, table, append, replace } from "../dom.js";
import { heading, resultsRegion } from "../page.js";

const ROLES_BY_ADMIN = {
  school_admin: ["teacher", "school_admin"],
  district_admin: ["teacher", "school_admin", "district_admin"],
  program_admin: ["program_staff", "program_admin"],
  operator: ["school_admin", "district_admin", "program_admin", "operator", "auditor"],
};

export async function render(container, ctx) {
  heading(container, "Users and roles", ctx, "New users get an email to set their password (they ask for a reset link).");
  const roles = ROLES_BY_ADMIN[ctx.me.role] || [];
  let tenants = [];
  // The users and the tenants at once: one round trip, not two in a row.
  const firstUsers = allPages("/api/v1/users", {}, 10);
  firstUsers.catch(() => {}); // awaited by load() below
  if (ctx.me.role === "operator" || ctx.me.role === "district_admin") {
    try {
      tenants = await allPages("/api/v1/tenants", {}, 5);
    } catch (err) {
      if (err.status === 401) throw err;
    }
  }
  const messages = h("div");
  const email = h("input", { type: "email", name: "email", required: true, autocomplete: "off" });
  const name = h("input", { type: "text", name: "display_name", required: true, maxlength: 200, autocomplete: "off" });
  const role = select("role", roles.map((r) => [r, label(r)]));
  const tenantChoices = tenants.length ? tenants.map((t) => [t.id, `${t.name} (${t.kind})`]) : [[ctx.me.tenant_id, "My organisation"]];
  const tenant = select("tenant_id", tenantChoices, ctx.me.tenant_id);
  const form = h("form", { class: "form narrow" }, h("h2", {}, "Add a user"), field("Email", email), field("Name", name), field("Role", role),
    tenants.length ? field("Organisation", tenant) : null, h("button", { type: "submit", class: "button" }, "Add user"));
  const results = resultsRegion("Users");
  append(container, messages, form, results);

  const load = async (started) => {
    try {
      const users = await (started || allPages("/api/v1/users", {}, 10));
      replace(results, table("Users", ["Name", "Email", "Role", "Active", ""], users.map((u) => {
        // An operator changes platform accounts only; a tenant's are its administrators'.
        const locked = ctx.me.role === "operator" && u.tenant_id !== ctx.me.tenant_id;
        const roleSelect = select("role", roles.includes(u.role) && !locked ? roles.map((r) => [r, label(r)]) : [[u.role, label(u.role)]], u.role);
        if (locked) roleSelect.disabled = true;
        roleSelect.setAttribute("aria-label", `Role of ${u.display_name}`);
        roleSelect.addEventListener("change", () => patch(u, { role: roleSelect.value }));
        const toggle = h("button", { type: "button", class: "secondary" }, u.is_active === false ? "Reactivate" : "Deactivate");
        toggle.addEventListener("click", () => patch(u, { is_active: u.is_active === false }));
        const action = u.id === ctx.me.user_id ? "You" : (locked && u.is_active === false ? "" : toggle);
        return [u.display_name, u.email, roleSelect, u.is_active === false ? "No" : "Yes", action];
      })));
    } catch (err) {
      replace(results, errorNotice(err));
    }
  };
  const patch = async (user, body) => {
    try {
      await api.patch(`/api/v1/users/${user.id}`, body);
      replace(messages, notice("success", `${user.display_name} updated.`));
      announce(`${user.display_name} updated.`);
    } catch (err) {
      replace(messages, errorNotice(err));
    }
    await load();
  };
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    try {
      const user = await api.post("/api/v1/users", { email: email.value.trim(), display_name: name.value.trim(), role: role.value, tenant_id: tenant.value });
      form.reset();
      replace(messages, notice("success", `${user.display_name} added.`));
      announce(`${user.display_name} added.`);
      await load();
    } catch (err) {
      replace(messages, errorNotice(err));
    }
  });
  await load(firstUsers);
}
