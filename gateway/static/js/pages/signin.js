import { api } from "../api.js";
import { errorNotice, field, h, notice, announce, append, replace } from "../dom.js";
import { heading } from "../page.js";
import { loadMe } from "../session.js";
import { safeNext } from "../app.js";

export async function render(container, ctx) {
  heading(container, "Sign in", ctx);
  const next = safeNext(ctx.query.get("next") || "/");
  const messages = h("div", { id: "signin-messages" });
  if (ctx.query.get("expired")) {
    append(messages, notice("info", "Your session has ended. Sign in again to continue where you were."));
  }
  const email = h("input", { type: "email", name: "email", autocomplete: "username", required: true });
  const password = h("input", { type: "password", name: "password", autocomplete: "current-password", required: true });
  const submit = h("button", { type: "submit", class: "button" }, "Sign in");
  // Single sign-on: the organisation is found by the address's domain, then the browser
  // goes to its provider (a full navigation: the provider's page is not ours).
  const sso = h("button", { type: "button", class: "secondary", id: "sso-sign-in" }, "Sign in with single sign-on");
  sso.addEventListener("click", async () => {
    replace(messages, );
    if (!email.value.trim()) {
      replace(messages, notice("info", "Type your work email first: it tells us your organisation's sign-in provider."));
      email.focus();
      return;
    }
    sso.disabled = true;
    try {
      const found = await api.post("/api/v1/sso/lookup", { email: email.value.trim() }, { allow401: true });
      announce(`Going to ${found.provider_name}.`);
      window.location.assign(found.start_url);
    } catch (err) {
      replace(messages, errorNotice(err));
      sso.disabled = false;
    }
  });
  const form = h("form", { class: "form narrow", novalidate: false },
    field("Email", email), field("Password", password), submit, sso,
    h("p", {}, h("a", { href: "/reset", "data-link": true }, "Forgot your password?")));
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    submit.disabled = true;
    replace(messages, );
    try {
      // The response also carries a bearer token for API clients; the browser
      // relies on the HttpOnly cookie alone and drops the token here.
      await api.post("/api/v1/sessions", { email: email.value.trim(), password: password.value }, { allow401: true });
      password.value = "";
      await loadMe();
      announce("Signed in.");
      ctx.navigate(next, { replace: true });
    } catch (err) {
      replace(messages, errorNotice(err));
      password.focus();
    } finally {
      submit.disabled = false;
    }
  });
  append(container, messages, form);
}
