import { h, append } from "../dom.js";
import { heading } from "../page.js";

export async function render(container, ctx) {
  heading(container, "You are signed out", ctx);
  append(container, h("p", {}, "Your session has ended on this device."), h("p", {}, h("a", { href: "/signin", "data-link": true, class: "button" }, "Sign in again")));
}
