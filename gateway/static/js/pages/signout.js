import { h, append } from "../dom.js";
import { heading } from "../page.js";
import { takeProviderSignOut } from "../session.js";

export async function render(container, ctx) {
  heading(container, "You are signed out", ctx);
  append(container, h("p", {}, "Your session has ended on this device."));
  // A single sign-on session: the provider's own session is still open; offer to end it too.
  const provider = takeProviderSignOut();
  if (provider) {
    append(container, h("p", {}, "You signed in with your organisation's account, which is still signed in on this browser. ",
      h("a", { href: provider, id: "provider-sign-out" }, "Sign out of your organisation's account too")));
  }
  append(container, h("p", {}, h("a", { href: "/signin", "data-link": true, class: "button" }, "Sign in again")));
}
