// The operator publishes a new privacy-policy version (every user sees the banner
// again until they acknowledge it) and posts or ends incident notices (shown to
// everyone at once, signed in or not).
import { api } from "../api.js";
import { announce, busy, errorNotice, field, formatDate, h, label, notice, select, table, append, replace } from "../dom.js";
import { heading, resultsRegion } from "../page.js";
import { forgetNotices } from "../policy.js";

function today() {
  const d = new Date();
  const pad = (n) => String(n).padStart(2, "0");
  return `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())}`;
}

/** Refresh the banners of this very page (the operator sees what everyone sees). */
function refreshBanners() {
  forgetNotices();
  window.dispatchEvent(new CustomEvent("wi:notices-changed"));
}

export async function render(container, ctx) {
  heading(container, "Policy and notices", ctx, "Publish a new privacy policy version, or tell everyone about an incident.");

  // -- policy versions -----------------------------------------------------------------
  const policyMessages = h("div");
  const lastUpdated = h("input", { type: "date", name: "last_updated", required: true, value: today(), max: today() });
  const summary = h("textarea", { name: "summary", required: true, maxlength: 500, rows: 3 });
  const publish = h("button", { type: "submit", class: "button" }, "Publish version");
  const policyForm = h("form", { class: "form narrow", id: "policy-form" }, h("h2", {}, "New privacy policy version"),
    field("Last Updated date", lastUpdated, "The date the privacy page will show. Not before the current version, not in the future."),
    field("What changed", summary, "One line, shown in the banner every user sees until they acknowledge it."),
    publish);
  const versions = resultsRegion("Policy versions");

  // -- incident notices ----------------------------------------------------------------
  const noticeMessages = h("div");
  const message = h("textarea", { name: "message", required: true, maxlength: 500, rows: 3 });
  const severity = select("severity", [["warning", "Warning"], ["info", "Information"]], "warning");
  const endsAt = h("input", { type: "datetime-local", name: "ends_at" });
  const post = h("button", { type: "submit", class: "button" }, "Post notice");
  const noticeForm = h("form", { class: "form narrow", id: "notice-form" }, h("h2", {}, "New incident notice"),
    field("Message", message, "Shown to everyone, on every page, at once. No personal data."),
    field("Kind", severity),
    field("Ends at (optional)", endsAt, "Your local time. Leave empty to end it yourself."),
    post);
  const notices = resultsRegion("Incident notices");

  append(container, policyMessages, policyForm, versions, noticeMessages, noticeForm, notices);

  const loadVersions = async () => {
    try {
      const data = await api.get("/api/v1/policy-versions");
      replace(versions, table("Published policy versions (newest first)", ["Last Updated", "What changed", "Published"],
        (data.items || []).map((v, i) => [v.last_updated + (i === 0 ? " (current)" : ""), v.summary, formatDate(v.published_at)])));
    } catch (err) {
      if (err.status === 401) throw err;
      replace(versions, errorNotice(err));
    }
  };

  const endButton = (n) => {
    const button = h("button", { type: "button", class: "button secondary", "data-end": n.id }, "End now");
    button.addEventListener("click", busy(button, async () => {
      try {
        await api.post(`/api/v1/incident-notices/${n.id}/end`);
        replace(noticeMessages, notice("success", "The notice has ended."));
        announce("The notice has ended.");
        refreshBanners();
      } catch (err) {
        if (err.status === 401) throw err;
        replace(noticeMessages, errorNotice(err));
      }
      await loadNotices();
    }));
    return button;
  };

  const loadNotices = async () => {
    try {
      const data = await api.get("/api/v1/incident-notices");
      const items = data.items || [];
      replace(notices, items.length
        ? table("Incident notices (newest first)", ["Message", "Kind", "From", "Until", "State"],
          items.map((n) => [n.message, label(n.severity), formatDate(n.starts_at), n.ends_at ? formatDate(n.ends_at) : "until ended",
            n.active ? endButton(n) : "Ended"]))
        : h("p", {}, "No incident notice has been posted."));
    } catch (err) {
      if (err.status === 401) throw err;
      replace(notices, errorNotice(err));
    }
  };

  policyForm.addEventListener("submit", busy(publish, async () => {
    try {
      const version = await api.post("/api/v1/policy-versions", { last_updated: lastUpdated.value, summary: summary.value.trim() });
      summary.value = "";
      replace(policyMessages, notice("success", `Version of ${version.last_updated} published. Every user will be asked to read it.`));
      announce("Policy version published.");
      refreshBanners();
    } catch (err) {
      if (err.status === 401) throw err;
      replace(policyMessages, errorNotice(err));
    }
    await loadVersions();
  }));

  noticeForm.addEventListener("submit", busy(post, async () => {
    const body = { message: message.value.trim(), severity: severity.value };
    if (endsAt.value) {
      const end = new Date(endsAt.value); // local time as typed -> an instant with its offset
      if (Number.isNaN(end.getTime())) {
        replace(noticeMessages, notice("error", "The end time is not a valid date and time."));
        return;
      }
      body.ends_at = end.toISOString();
    }
    try {
      await api.post("/api/v1/incident-notices", body);
      noticeForm.reset();
      replace(noticeMessages, notice("success", "Notice posted. Everyone sees it now."));
      announce("Notice posted.");
      refreshBanners();
    } catch (err) {
      if (err.status === 401) throw err;
      replace(noticeMessages, errorNotice(err));
    }
    await loadNotices();
  }));

  await Promise.all([loadVersions(), loadNotices()]);
}
