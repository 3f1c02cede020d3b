// Ruang: the "create a space" page.
"use strict";

(function () {
  const { $, api, notify, wireCopyButtons, formatDateTime, relativeTime } = window.RuangUI;

  const form = $("create-form");
  const titleInput = $("title");
  const startsInput = $("starts-at");
  const errorBox = $("create-error");
  const button = $("create-button");
  const result = $("result");
  const keyField = $("key-field");
  const keyInput = $("create-key");

  // "YYYY-MM-DDTHH:MM" in local time, as a datetime-local input wants it.
  function localInputValue(d) {
    const two = (n) => String(n).padStart(2, "0");
    return d.getFullYear() + "-" + two(d.getMonth() + 1) + "-" + two(d.getDate()) +
      "T" + two(d.getHours()) + ":" + two(d.getMinutes());
  }

  // datetime-local value (local time, no zone) -> ISO 8601 UTC, or null.
  function toUtcIso(value) {
    const m = /^(\d{4})-(\d{2})-(\d{2})T(\d{2}):(\d{2})(?::(\d{2}))?/.exec(value || "");
    if (!m) return null;
    const d = new Date(+m[1], +m[2] - 1, +m[3], +m[4], +m[5], +(m[6] || 0));
    return Number.isNaN(d.getTime()) ? null : d.toISOString().replace(/\.\d{3}Z$/, "Z");
  }

  startsInput.min = localInputValue(new Date());

  function fail(message, field) {
    notify(errorBox, message, "error");
    if (field) {
      field.setAttribute("aria-invalid", "true");
      field.focus();
    }
  }

  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    notify(errorBox, "");
    titleInput.removeAttribute("aria-invalid");
    startsInput.removeAttribute("aria-invalid");
    keyInput.removeAttribute("aria-invalid");

    const title = titleInput.value.trim();
    if (!title) return fail("Please give your space a title.", titleInput);
    const body = { title };
    if (startsInput.value) {
      const iso = toUtcIso(startsInput.value);
      if (!iso) return fail("That start time doesn't look like a date and time.", startsInput);
      body.starts_at = iso;
    }

    button.disabled = true;
    button.textContent = "Creating…";
    try {
      const key = keyInput.value.trim();
      const { data } = await api("POST", "/api/spaces", { body, token: key || undefined });
      if (!data || !data.id) throw new Error("The server gave an unexpected answer.");
      showResult(data);
    } catch (err) {
      if (err.code === "create_key_required" || err.code === "create_key_refused") {
        keyField.hidden = false;  // this server wants its create key: ask for it
        return fail(err.message, keyInput);
      }
      fail(err.message || "Could not create the space.");
    } finally {
      button.disabled = false;
      button.textContent = "Create space";
    }
  });

  function absolute(url) {
    try { return url ? new URL(url, location.href).href : ""; } catch (e) { return url || ""; }
  }

  function showResult(space) {
    const pageUrl = absolute(space.page_url || "/s/" + encodeURIComponent(space.id));
    const hostUrl = absolute(space.host_url ||
      "/s/" + encodeURIComponent(space.id) + "/host#token=" + encodeURIComponent(space.host_token || ""));
    $("result-title").textContent = space.title || "";
    $("result-when").textContent = space.state === "live"
      ? "It is live now: open the studio and go on stage."
      : space.starts_at
        ? "Scheduled for " + formatDateTime(space.starts_at) + " (" + relativeTime(space.starts_at) + "). Start it from the studio."
        : "Start it from the studio whenever you are ready.";
    $("studio-link").href = hostUrl;
    $("host-url").value = hostUrl;
    $("page-url").value = pageUrl;
    $("whip-url").value = absolute(space.whip_url || "/whip/" + encodeURIComponent(space.id));
    $("host-token").value = space.host_token || "";
    setTokenVisible(false);
    $("create-card").hidden = true;
    result.hidden = false;
    result.focus();
  }

  const tokenToggle = $("token-toggle");
  function setTokenVisible(show) {
    $("host-token").type = show ? "text" : "password";
    tokenToggle.textContent = show ? "Hide" : "Show";
  }
  tokenToggle.addEventListener("click", () => {
    setTokenVisible($("host-token").type === "password");
  });

  $("another").addEventListener("click", () => {
    form.reset();
    for (const id of ["host-url", "page-url", "whip-url", "host-token"]) $(id).value = "";
    result.hidden = true;
    $("create-card").hidden = false;
    titleInput.focus();
  });

  wireCopyButtons(document);
})();
