// reflow dashboard: live updates and the resume / cancel buttons. Plain JavaScript, no
// library; every page also works without it (forms post, links page).
"use strict";

(function () {
  const csrf = document.querySelector('meta[name="csrf-token"]');

  // Filters submit themselves when changed.
  function wireFilters(root) {
    root.querySelectorAll("form[data-autosubmit]").forEach((form) => {
      form.querySelectorAll("select, input[type=checkbox]").forEach((field) => {
        field.addEventListener("change", () => form.submit());
      });
    });
  }

  function say(text, isError) {
    const box = document.querySelector("[data-message]");
    if (!box) return;
    box.textContent = text;
    box.className = "notice" + (isError ? " error" : "");
    box.hidden = false;
  }

  // Resume and cancel: POST to the API with the CSRF header, say what happened, refresh.
  function wireActions(root) {
    root.querySelectorAll("form[data-api]").forEach((form) => {
      form.addEventListener("submit", async (event) => {
        event.preventDefault();
        const question = form.getAttribute("data-confirm");
        if (question && !window.confirm(question)) return;
        const button = form.querySelector("button");
        if (button) button.disabled = true;
        try {
          const answer = await fetch(form.getAttribute("data-api"), {
            method: "POST",
            credentials: "same-origin",
            headers: { "X-Reflow-CSRF": csrf ? csrf.content : "", "Accept": "application/json" },
          });
          const body = await answer.json().catch(() => ({}));
          say(body.message || body.detail || ("error " + answer.status), !answer.ok);
        } catch (error) {
          say("the dashboard did not answer: " + error, true);
        }
        refreshAll(true);
      });
    });
  }

  function wire(root) {
    wireFilters(root);
    wireActions(root);
  }

  // Live parts: [data-poll] holds the URL of its own fragment. With [data-status] (a run),
  // the fragment is fetched again only when the run's version changed.
  const live = [];

  async function refresh(part, force) {
    if (part.busy) return;
    part.busy = true;
    try {
      const el = part.el;
      const status = el.getAttribute("data-status");
      if (status && !force) {
        const answer = await fetch(status, { credentials: "same-origin" });
        if (!answer.ok) return;
        const now = await answer.json();
        if (now.version === el.getAttribute("data-version")) return;
        el.setAttribute("data-version", now.version);
      }
      const answer = await fetch(el.getAttribute("data-poll"), { credentials: "same-origin" });
      if (!answer.ok) return;
      const html = await answer.text();
      if (html === part.last) return;
      const open = new Set(Array.from(el.querySelectorAll("details[open]")).map((d) => d.textContent.slice(0, 80)));
      el.innerHTML = html;
      el.querySelectorAll("details").forEach((d) => { if (open.has(d.textContent.slice(0, 80))) d.open = true; });
      part.last = html;
      wire(el);
      if (status && force) {
        const again = await fetch(status, { credentials: "same-origin" });
        if (again.ok) el.setAttribute("data-version", (await again.json()).version);
      }
    } catch (error) {
      // the server went away for a moment: try again at the next tick
    } finally {
      part.busy = false;
      stamp();
    }
  }

  function refreshAll(force) {
    live.forEach((part) => refresh(part, force));
  }

  function stamp() {
    document.querySelectorAll("[data-live]").forEach((el) => {
      el.textContent = "live, " + new Date().toLocaleTimeString();
    });
  }

  document.querySelectorAll("[data-poll]").forEach((el) => {
    const part = { el: el, busy: false, last: null };
    live.push(part);
    const every = parseInt(el.getAttribute("data-every") || "3000", 10);
    window.setInterval(() => {
      if (document.visibilityState === "visible") refresh(part, false);
    }, every);
  });
  wire(document);
})();
