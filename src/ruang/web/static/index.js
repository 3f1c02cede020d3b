// Ruang: the "create a space" page.
"use strict";

(function () {
  const { $, api, notify, wireCopyButtons, formatDateTime, relativeTime } = window.RuangUI;
  const { t } = window.RuangI18n;

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
    if (!title) return fail(t("index.err.title"), titleInput);
    const body = { title };
    if (startsInput.value) {
      const iso = toUtcIso(startsInput.value);
      if (!iso) return fail(t("index.err.start"), startsInput);
      body.starts_at = iso;
    }

    button.disabled = true;
    button.textContent = t("index.creating");
    try {
      const key = keyInput.value.trim();
      const { data } = await api("POST", "/api/spaces", { body, token: key || undefined });
      if (!data || !data.id) throw new Error(t("index.err.answer"));
      showResult(data);
    } catch (err) {
      if (err.code === "create_key_required" || err.code === "create_key_refused") {
        keyField.hidden = false;  // this server wants its create key: ask for it
        return fail(err.message, keyInput);
      }
      fail(err.message || t("index.err.create"));
    } finally {
      button.disabled = false;
      button.textContent = t("index.create");
    }
  });

  function absolute(url) {
    try { return url ? new URL(url, location.href).href : ""; } catch (e) { return url || ""; }
  }

  function showResult(space) {
    const pageUrl = absolute(space.page_url || "/s/" + encodeURIComponent(space.id));
    const hostUrl = absolute(space.host_url ||
      "/s/" + encodeURIComponent(space.id) + "/host#token=" + encodeURIComponent(space.host_token || ""));
    shown = space;
    renderResultText();
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

  let shown = null;  // the space on show, so its sentences follow a change of language
  function renderResultText() {
    if (!shown) return;
    const space = shown;
    // the title in its own element inside the sentence (it is the user's text, never markup)
    const [before, after] = t("index.ready", { title: "\u0000" }).split("\u0000");
    const title = document.createElement("span");
    title.id = "result-title";
    title.textContent = space.title || "";
    $("result-heading").replaceChildren(before, title, after || "");
    $("result-when").textContent = space.state === "live"
      ? t("index.when.live")
      : space.starts_at
        ? t("index.when.scheduled", { when: formatDateTime(space.starts_at), relative: relativeTime(space.starts_at) })
        : t("index.when.later");
  }
  window.RuangI18n.onChange(() => {
    renderResultText();
    setTokenVisible($("host-token").type === "text");
  });

  const tokenToggle = $("token-toggle");
  function setTokenVisible(show) {
    $("host-token").type = show ? "text" : "password";
    tokenToggle.textContent = show ? t("hide") : t("show");
    tokenToggle.setAttribute("aria-label", t("index.show_token"));
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
