// Development mode's "Messages sent": every email and SMS the demo's local catcher received
// (weintervene/catcher.py), newest first, as the family got it. Nothing here leaves the machine.
import { api } from "../api.js";
import { errorNotice, formatDate, h, append, replace } from "../dom.js";
import { heading, resultsRegion } from "../page.js";

const CHANNELS = { email: "Email", sms: "SMS" };

function messageCard(message) {
  const facts = [
    ["Channel", CHANNELS[message.channel] || message.channel],
    ["To", message.to],
    ...(message.subject ? [["Subject", message.subject]] : []),
    ["Language", message.language || (message.channel === "sms" ? "not carried by SMS" : "not stated")],
    ["Received", formatDate(message.received_at)],
  ];
  return h("article", { class: "card caught-message", "data-channel": message.channel },
    h("h2", {}, `${CHANNELS[message.channel] || message.channel} to ${message.to}`),
    h("dl", {}, ...facts.flatMap(([term, value]) => [h("dt", {}, term), h("dd", {}, value)])),
    h("pre", { class: "message-text", lang: message.language || undefined }, message.text));
}

export async function render(container, ctx) {
  heading(container, "Messages sent", ctx, "What families (and staff) received from this demo: every email and text message the local mail and SMS catcher took in, newest first. Development mode only; a restart empties it.");
  const refresh = h("button", { type: "button", class: "button" }, "Refresh");
  const results = resultsRegion("Messages");
  append(container, h("p", {}, refresh), results);
  const load = async () => {
    try {
      const data = await api.get("/api/v1/dev/messages");
      if (!data.catcher_running) {
        replace(results, h("p", {}, "No catcher runs: start the demo with make run, or look in the mail server and SMS provider the settings name."));
        return;
      }
      replace(results, data.items.length ? h("div", { class: "caught-messages" }, ...data.items.map(messageCard))
        : h("p", {}, "Nothing sent yet. Share a service with a family and it appears here."));
    } catch (err) {
      if (err.status === 401) throw err;
      replace(results, errorNotice(err));
    }
  };
  refresh.addEventListener("click", load);
  await load();
}
