// Password reset: ask for a link by email, then set a new password from the
// emailed link /reset-password#token=... (or /reset?token=...): the token is read,
// then removed from the address bar and from history.
import { api } from "../api.js";
import { errorNotice, field, h, notice, announce, append, replace } from "../dom.js";
import { heading } from "../page.js";

export async function render(container, ctx) {
  const token = new URLSearchParams(location.hash.slice(1)).get("token") || ctx.query.get("token");
  if (token) {
    // Keep the one-time token out of history and out of any later Referer.
    history.replaceState(null, "", location.pathname);
    return complete(container, ctx, token);
  }
  heading(container, "Reset your password", ctx, "Enter the email of your account. If it exists, we send a link to set a new password.");
  const messages = h("div");
  const email = h("input", { type: "email", name: "email", autocomplete: "email", required: true });
  const submit = h("button", { type: "submit", class: "button" }, "Send reset link");
  const form = h("form", { class: "form narrow" }, field("Email", email), submit);
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    submit.disabled = true;
    try {
      await api.post("/api/v1/password-resets", { email: email.value.trim() }, { allow401: true });
      replace(messages, notice("success", "If an account uses that email, a reset link is on its way. It works once and expires soon."));
      announce("Reset link requested.");
    } catch (err) {
      replace(messages, errorNotice(err));
    } finally {
      submit.disabled = false;
    }
  });
  append(container, messages, form);
}

function complete(container, ctx, token) {
  heading(container, "Choose a new password", ctx, "At least 8 characters. Long passphrases are best; very common passwords are refused.");
  const messages = h("div");
  const pw = h("input", { type: "password", name: "new_password", autocomplete: "new-password", minlength: 8, maxlength: 128, required: true });
  const again = h("input", { type: "password", name: "confirm", autocomplete: "new-password", required: true });
  const submit = h("button", { type: "submit", class: "button" }, "Set new password");
  const form = h("form", { class: "form narrow" }, field("New password", pw), field("Repeat the new password", again), submit);
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    if (pw.value !== again.value) {
      replace(messages, notice("error", "The two passwords differ."));
      again.focus();
      return;
    }
    submit.disabled = true;
    try {
      await api.post("/api/v1/password-resets/complete", { token, new_password: pw.value }, { allow401: true });
      form.remove();
      replace(messages, notice("success", "Your password is set. You can sign in now.", h("p", {}, h("a", { href: "/signin", "data-link": true }, "Sign in"))));
      announce("Password set.");
    } catch (err) {
      replace(messages, errorNotice(err));
    } finally {
      submit.disabled = false;
    }
  });
  append(container, messages, form);
}
