import { api } from "../api.js";
import { errorNotice, field, h, notice, announce, append, replace } from "../dom.js";
import { heading } from "../page.js";

export async function render(container, ctx) {
  heading(container, "Change your password", ctx, "Changing it signs you out everywhere else.");
  const messages = h("div");
  const current = h("input", { type: "password", name: "current_password", autocomplete: "current-password", required: true });
  const pw = h("input", { type: "password", name: "new_password", autocomplete: "new-password", minlength: 8, maxlength: 128, required: true });
  const again = h("input", { type: "password", name: "confirm", autocomplete: "new-password", required: true });
  const submit = h("button", { type: "submit", class: "button" }, "Change password");
  const form = h("form", { class: "form narrow" }, field("Current password", current),
    field("New password", pw, "8 to 128 characters; common passwords are refused."), field("Repeat the new password", again), submit);
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    if (pw.value !== again.value) {
      replace(messages, notice("error", "The two new passwords differ."));
      again.focus();
      return;
    }
    submit.disabled = true;
    try {
      await api.post("/api/v1/me/password", { current_password: current.value, new_password: pw.value });
      form.reset();
      replace(messages, notice("success", "Your password is changed."));
      announce("Password changed.");
    } catch (err) {
      replace(messages, errorNotice(err));
    } finally {
      submit.disabled = false;
    }
  });
  append(container, messages, form);
}
