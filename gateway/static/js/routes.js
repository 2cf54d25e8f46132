// Client-side routes: path pattern, page module, who may open it, and which
// navigation entry it belongs to. Role checks here only decide what to show;
// the API enforces every rule itself.
//
// ``preload``: the API calls the page makes first, exactly as it makes them (same path
// and query, in the same order: see api.js query()). On a full page load the shell
// lists them as <link rel="preload" as="fetch">, so the browser asks for the page's
// data while it starts the app, and the page's own fetch takes the answer on arrival.
// "{tenant_id}" / "{user_id}" are the signed-in user's, "{name}" a ":name" of the path;
// "role,role:/api/..." preloads for those roles only. A URL here that the page does not
// fetch is a wasted request (Chromium warns, and the browser tests fail on it).

export const STAFF = ["teacher", "school_admin", "district_admin", "program_staff", "program_admin"];
export const SCHOOL = ["teacher", "school_admin"];
export const ADMINS = ["school_admin", "district_admin"];
export const PROGRAM = ["program_staff", "program_admin"];

export const ROUTES = [
  { path: "/signin", page: "signin", title: "Sign in", public: true },
  { path: "/signout", page: "signout", title: "Signed out", public: true },
  { path: "/reset", page: "reset", title: "Reset your password", public: true },
  // The emailed link is /reset-password#token=... (a fragment never reaches a server log).
  { path: "/reset-password", page: "reset", title: "Reset your password", public: true },
  { path: "/privacy", page: "privacy", title: "Privacy policy", public: true },
  { path: "/", page: "home", title: "Home" },
  { path: "/account/password", page: "password", title: "Change your password" },
  { path: "/search", page: "search", title: "Find services", roles: STAFF, preload: ["/api/v1/directory/categories"] },
  { path: "/services/:service_id", page: "service", title: "Service", roles: STAFF, preload: ["/api/v1/directory/services/{service_id}"] },
  { path: "/referrals", page: "referrals", title: "Referrals", roles: [...SCHOOL, "district_admin"], preload: ["/api/v1/students?per_page=200&page=1", "teacher:/api/v1/referrals?scope=mine", "school_admin,district_admin:/api/v1/referrals?scope=school"] },
  { path: "/referrals/:referral_id", page: "referral", title: "Referral", roles: [...SCHOOL, "district_admin", ...PROGRAM], preload: ["/api/v1/referrals/{referral_id}"] },
  { path: "/incoming", page: "referrals", title: "Incoming referrals", roles: PROGRAM, scope: "incoming", preload: ["/api/v1/referrals?scope=incoming"] },
  { path: "/lists", page: "lists", title: "Saved lists", roles: SCHOOL, preload: ["/api/v1/lists"] },
  { path: "/admin/roster", page: "roster", title: "Roster import", roles: ["school_admin"], preload: ["/api/v1/students?page=1"] },
  { path: "/admin/oneroster", page: "oneroster", title: "OneRoster import", roles: ["school_admin", "district_admin"] },
  { path: "/admin/users", page: "users", title: "Users and roles", roles: ["school_admin", "district_admin", "program_admin", "operator"], preload: ["/api/v1/users?page=1", "operator,district_admin:/api/v1/tenants?page=1"] },
  { path: "/admin/settings", page: "settings", title: "School settings", roles: ADMINS, preload: ["/api/v1/tenants/{tenant_id}"] },
  { path: "/admin/opt-out", page: "optout", title: "Parent opt-out", roles: ADMINS, preload: ["/api/v1/deletion-requests?tenant_id={tenant_id}&scope=student", "/api/v1/students?per_page=200&page=1"] },
  { path: "/students/:student_id", page: "student", title: "Student record", roles: ["school_admin"], preload: ["/api/v1/students/{student_id}/disclosures", "/api/v1/users?page=1", "/api/v1/inspection-requests", "/api/v1/students/{student_id}"] },
  { path: "/admin/access-log", page: "access-log", title: "Access log", roles: [...ADMINS, "program_admin"], preload: ["/api/v1/access-log?page=1"] },
  { path: "/dashboard", page: "dashboard", title: "Dashboard", roles: ADMINS, preload: ["/api/v1/analytics/dashboard?period=semester"] },
  { path: "/operator/directory", page: "directory", title: "Directory services", roles: ["operator"], preload: ["/api/v1/directory/categories"] },
  { path: "/operator/imports", page: "imports", title: "Directory imports", roles: ["operator"] },
  { path: "/operator/tenants", page: "tenants", title: "Tenants", roles: ["operator"], preload: ["/api/v1/tenants?page=1"] },
  // The link in the approvers' email; operators ask here, the tenant's administrators decide.
  { path: "/break-glass", page: "break-glass", title: "Break-glass recovery", roles: ["operator", "school_admin", "district_admin", "program_admin"] },
  { path: "/operator/account-conflicts", page: "account-conflicts", title: "Account conflicts", roles: ["operator"], preload: ["/api/v1/operator/account-conflicts?page=1"] },
  { path: "/operator/notices", page: "notices", title: "Policy and notices", roles: ["operator"], preload: ["/api/v1/policy-versions", "/api/v1/incident-notices"] },
  // Development mode only (the API answers 404 elsewhere): what the demo's mail and SMS catcher received.
  { path: "/messages", page: "messages", title: "Messages sent", preload: ["/api/v1/dev/messages"] },
  { path: "/audit", page: "audit", title: "Deletion requests", roles: ["auditor"], preload: ["/api/v1/deletion-requests?per_page=200"] },
  { path: "/audit/:request_id", page: "audit-request", title: "Deletion request", roles: ["auditor"], preload: ["/api/v1/deletion-requests/{request_id}"] },
];

/** Navigation entries per role, in order. */
export const NAV = {
  teacher: [["/search", "Find services"], ["/referrals", "My referrals"], ["/lists", "Saved lists"]],
  school_admin: [["/search", "Find services"], ["/referrals", "School referrals"], ["/admin/roster", "Roster"], ["/admin/oneroster", "OneRoster"], ["/admin/users", "Users"], ["/admin/settings", "Settings"], ["/admin/opt-out", "Opt-out"], ["/admin/access-log", "Access log"], ["/dashboard", "Dashboard"], ["/break-glass", "Recovery"]],
  district_admin: [["/dashboard", "Dashboard"], ["/search", "Find services"], ["/referrals", "Referrals"], ["/admin/oneroster", "OneRoster"], ["/admin/users", "Users"], ["/admin/settings", "Settings"], ["/admin/opt-out", "Opt-out"], ["/admin/access-log", "Access log"], ["/break-glass", "Recovery"]],
  program_staff: [["/incoming", "Incoming referrals"], ["/search", "Find services"]],
  program_admin: [["/incoming", "Incoming referrals"], ["/admin/users", "Users"], ["/admin/access-log", "Access log"], ["/search", "Find services"], ["/break-glass", "Recovery"]],
  operator: [["/operator/directory", "Directory"], ["/operator/imports", "Directory imports"], ["/operator/tenants", "Tenants"], ["/operator/notices", "Policy and notices"], ["/operator/account-conflicts", "Account conflicts"], ["/admin/users", "Users"], ["/break-glass", "Break-glass"]],
  auditor: [["/audit", "Deletion requests"]],
};

const UUID = "[0-9a-fA-F-]{36}";

/** The route for a path, with its path values: match("/services/<uuid>") -> {route, params}. */
export function match(pathname) {
  const path = pathname.length > 1 ? pathname.replace(/\/+$/, "") : pathname;
  for (const route of ROUTES) {
    const names = [];
    const pattern = route.path.replace(/:([a-z_]+)/g, (_, name) => { names.push(name); return `(${UUID})`; });
    const found = new RegExp(`^${pattern}$`).exec(path);
    if (found) {
      const params = {};
      names.forEach((name, i) => { params[name] = found[i + 1]; });
      return { route, params };
    }
  }
  return null;
}
