import { h, append } from "../dom.js";
import { heading } from "../page.js";
import { acknowledge, loadNotices } from "../policy.js";

export async function render(container, ctx) {
  const data = await loadNotices(ctx.me, { fresh: true });
  const policy = data.policy || { last_updated: "", version: null };
  heading(container, "Privacy policy", ctx);
  const ackButton = h("button", { type: "button", class: "button", id: "privacy-ack" }, "I have read this version");
  const ackState = h("p", { role: "status", id: "privacy-ack-state" });
  const showState = (done) => {
    ackState.textContent = done ? `You acknowledged the version of ${policy.last_updated}.` : "";
    ackButton.hidden = done || !ctx.me || !policy.version;
  };
  ackButton.addEventListener("click", async () => {
    ackButton.disabled = true;
    try {
      await acknowledge(policy.version);
      document.querySelector(".banner-policy")?.remove();
      showState(true);
    } catch (err) {
      if (err.status === 401) throw err;
      ackState.textContent = err.message || "Could not record that. Try again.";
    } finally {
      ackButton.disabled = false;
    }
  });
  showState(data.acknowledged === true);
  append(container,
    h("p", { class: "updated" }, "Last Updated: ", h("time", { datetime: policy.last_updated }, policy.last_updated)),
    policy.summary ? h("p", { class: "intro" }, "What changed: ", policy.summary) : null,
    h("section", {}, h("h2", {}, "What we keep"),
      h("p", {}, "Schools keep a roster with only the fields on our allow-list: name, grade, optional date of birth and student ID, and family contacts authorised by parents. Any other column of an import is dropped before anything is stored."),
      h("p", {}, "When staff share a service with a family we keep the referral, its status and who received it. A walk-in share keeps no information about the family.")),
    h("section", {}, h("h2", {}, "Who sees it"),
      h("p", {}, "Staff see only students they serve; school admins see their school. Platform operators and auditors never see student data. Leaders see de-identified counts, with small numbers suppressed."),
      h("p", {}, "When student information goes to an outside program, the disclosure is logged and the school can read that log.")),
    h("section", {}, h("h2", {}, "Deletion"),
      h("p", {}, "Parents may ask the school to remove their child's information. Every service deletes it and confirms; the school and auditors can see the confirmations, which never name the student.")),
    h("section", {}, h("h2", {}, "Your browser"),
      h("p", {}, "We use two cookies, both needed to keep you signed in safely. Which policy version you acknowledged is recorded with your account, not in your browser. No trackers, no third-party cookies, nothing loaded from other sites.")),
    ackState, ackButton,
  );
}
