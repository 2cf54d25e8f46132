// The administrator's single sign-on section of the settings page (a district, an
// independent school or a program): the provider, its client, allowed domains, whether
// passwords still work, and just-in-time accounts. The secret is sent, never shown back.
import { api, allPages } from "../api.js";
import { announce, errorNotice, field, h, notice, append, replace, select } from "../dom.js";

const PRESETS = [["google", "Google Workspace"], ["entra", "Microsoft Entra ID"], ["clever", "Clever"], ["classlink", "ClassLink"], ["generic", "Other OpenID Connect provider"]];

export async function ssoSection(tenant) {
  const section = h("section", { "aria-labelledby": "sso-title", id: "sso" }, h("h2", { id: "sso-title" }, "Single sign-on"));
  let current = null;
  try {
    current = await api.get(`/api/v1/tenants/${tenant.id}/sso`);
  } catch (err) {
    if (err.code === "sso_configured_by_district") {
      append(section, h("p", {}, "Your district's administrator configures single sign-on for every school of the district."));
      return section;
    }
    if (err.code !== "sso_not_configured") {
      append(section, errorNotice(err));
      return section;
    }
  }
  const messages = h("div", { "aria-live": "polite" });
  const preset = select("preset", PRESETS, current ? current.preset : "google");
  const issuer = h("input", { type: "url", name: "issuer_url", value: current && current.preset === "generic" ? current.issuer_url : "" });
  const entra = h("input", { type: "text", name: "provider_tenant", value: (current && current.provider_tenant) || "" });
  const clientId = h("input", { type: "text", name: "client_id", required: true, autocomplete: "off", value: (current && current.client_id) || "" });
  const secret = h("input", { type: "password", name: "client_secret", autocomplete: "new-password", required: !current });
  const domains = h("input", { type: "text", name: "allowed_domains", required: true, value: current ? current.allowed_domains.join(", ") : "" });
  const passwords = h("input", { type: "checkbox", name: "password_sign_in_allowed", checked: current ? !!current.password_sign_in_allowed : true });
  const schools = tenant.kind === "district"
    ? (await allPages("/api/v1/tenants", { kind: "school" })).filter((t) => t.district_id === tenant.id)
    : [tenant];
  const jitRole = tenant.kind === "program" ? "program_staff" : "teacher";
  const jit = select("jit_tenant_id", [["", "Off: only people who already have an account"], ...schools.map((s) => [s.id, `On: new staff join ${s.name} as ${jitRole === "teacher" ? "teachers" : "program staff"}`])], current && current.jit_tenant_id);
  const issuerField = field("Issuer URL", issuer, "Its discovery document is at <issuer>/.well-known/openid-configuration.");
  const entraField = field("Directory (tenant) id", entra, "Microsoft Entra ID: your directory's id or its domain.");
  const shown = () => {
    issuerField.hidden = preset.value !== "generic";
    entraField.hidden = preset.value !== "entra";
  };
  preset.addEventListener("change", shown);
  shown();
  const form = h("form", { class: "form narrow", id: "sso-form" },
    field("Provider", preset), issuerField, entraField,
    field("Client id", clientId),
    field("Client secret", secret, current && current.client_secret_set ? "Stored encrypted. Leave empty to keep it." : "Stored encrypted; never shown again."),
    field("Allowed email domains", domains, "Comma-separated, e.g. riverside.k12.example. Only verified addresses of these domains sign in."),
    h("label", { class: "check" }, passwords, "Staff may still sign in with a password"),
    field("Accounts for new staff", jit, "Off unless you choose: a new account is recorded in the access log."),
    h("p", { class: "hint" }, "Register this redirect URI at your provider: ", h("code", { id: "sso-redirect-uri" }, (current && current.redirect_uri) || `${window.location.origin}/api/v1/sso/callback`)),
    h("button", { type: "submit", class: "button" }, "Save single sign-on"));
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    const body = {
      preset: preset.value, client_id: clientId.value.trim(),
      allowed_domains: domains.value.split(",").map((d) => d.trim()).filter(Boolean),
      password_sign_in_allowed: passwords.checked,
      jit_role: jit.value ? jitRole : null, jit_tenant_id: jit.value || null,
    };
    if (preset.value === "generic") body.issuer_url = issuer.value.trim();
    if (preset.value === "entra") body.provider_tenant = entra.value.trim();
    if (secret.value) body.client_secret = secret.value;
    try {
      current = await api.put(`/api/v1/tenants/${tenant.id}/sso`, body);
      secret.value = "";
      secret.required = false;
      secret.setAttribute("placeholder", "Stored encrypted. Leave empty to keep it.");
      replace(messages, notice("success", `Single sign-on with ${current.provider_name} saved.`));
      announce("Single sign-on saved.");
    } catch (err) {
      replace(messages, errorNotice(err));
    }
  });
  append(section, h("p", {}, "Let staff sign in with the account your organisation already gives them."), messages, form);
  return section;
}
