// The operators' queue of account conflicts: a tenant admin asked for an account whose
// address another tenant's account has. The admin was told only that the address cannot
// be used; here the operator sees who asked, where, and for which address.
import { api } from "../api.js";
import { announce, errorNotice, formatDate, h, label, table, append, replace } from "../dom.js";
import { heading, resultsRegion } from "../page.js";

export async function render(container, ctx) {
  heading(container, "Account conflicts", ctx, "Addresses tenant admins asked for that already have an account in another tenant. Contact the admin to sort it out.");
  const results = resultsRegion("Account conflicts");
  append(container, results);
  try {
    const data = await api.get("/api/v1/operator/account-conflicts", { page: 1 });
    const items = data.items || [];
    const summary = `${data.total ?? items.length} conflict${data.total === 1 ? "" : "s"}.`;
    replace(results, h("p", {}, summary), items.length ? table("Account conflicts", ["When", "Tenant", "Address", "Role asked for"], items.map((c) => [
      formatDate(c.created_at), c.tenant_name, c.email, label(c.role)])) : h("p", {}, "No conflicts."));
    announce(summary);
  } catch (err) {
    if (err.status === 401) throw err;
    replace(results, errorNotice(err));
  }
}
