// Ruang: small helpers shared by the pages. Exposes window.RuangUI.
"use strict";

(function () {
  const $ = (id) => document.getElementById(id);

  // A string in the page's language (static/i18n.js), with {name} filled in from vars.
  function t(key, vars) {
    return window.RuangI18n ? window.RuangI18n.t(key, vars) : key;
  }

  // Elements whose text is made by a function, so that it follows a change of language:
  // setText(el, () => t("key", vars)) shows it now and again after each switch; a plain
  // string (a server's message, a name) is shown as it is and forgotten.
  const bound = new Map();
  function setText(el, text) {
    if (typeof text === "function") {
      bound.set(el, text);
      el.textContent = text();
    } else {
      bound.delete(el);
      el.textContent = text || "";
    }
  }
  // The text of key, as setText and notify take it: tr("key", vars) is () => t("key", vars).
  const tr = (key, vars) => () => t(key, vars);
  // Call fn after every change of language (after the bound texts are redone).
  function onLanguage(fn) {
    if (window.RuangI18n) window.RuangI18n.onChange(fn);
  }
  onLanguage(() => {
    for (const [el, make] of bound) {
      if (el.isConnected) el.textContent = make(); else bound.delete(el);
    }
  });

  // Build an element: h("li", {className: "x", text: "hi"}, [children]).
  function h(tag, props, children) {
    const el = document.createElement(tag);
    for (const [key, value] of Object.entries(props || {})) {
      if (value === undefined || value === null || value === false) continue;
      if (key === "text") el.textContent = value;
      else if (key === "className") el.className = value;
      else if (key.startsWith("data-") || key.startsWith("aria-")) el.setAttribute(key, value);
      else el[key] = value;
    }
    for (const child of children || []) if (child) el.append(child);
    return el;
  }

  // "/s/{id}", "/s/{id}/host", "/s/{id}/speak" -> id (or null).
  function spaceIdFromPath() {
    const m = /^\/s\/([^/]+)/.exec(location.pathname);
    return m ? decodeURIComponent(m[1]) : null;
  }

  function fragmentParam(name) {
    return new URLSearchParams(location.hash.replace(/^#/, "")).get(name);
  }

  function queryFlag(name) {
    const v = new URLSearchParams(location.search).get(name);
    return v === "1" || v === "true";
  }

  class ApiError extends Error {
    constructor(status, message, code, retryAfter) {
      super(message);
      this.status = status; // 0 means the server could not be reached
      this.code = code || null;
      this.retryAfter = retryAfter;
    }
  }

  // Seconds from a Retry-After header (delta seconds or HTTP date).
  function retryAfterSeconds(headers, fallback) {
    const raw = headers && headers.get("Retry-After");
    let s = NaN;
    if (raw) {
      s = /^\s*\d+\s*$/.test(raw) ? Number(raw) : (Date.parse(raw) - Date.now()) / 1000;
    }
    if (!Number.isFinite(s)) s = fallback;
    return Math.min(Math.max(Math.ceil(s), 1), 300);
  }

  async function readJson(res) {
    const text = await res.text();
    if (!text) return null;
    try { return JSON.parse(text); } catch (e) { return null; }
  }

  // JSON API call. Resolves {status, data, headers} for 2xx, and also for the
  // statuses listed in opts.accept; otherwise rejects with ApiError.
  async function api(method, path, opts) {
    const o = opts || {};
    const headers = { Accept: "application/json" };
    if (o.token) headers.Authorization = "Bearer " + o.token;
    let body;
    if (o.body !== undefined) {
      headers["Content-Type"] = "application/json";
      body = JSON.stringify(o.body);
    }
    let res;
    try {
      res = await fetch(path, {
        method, headers, body, cache: "no-store", credentials: "same-origin",
        referrerPolicy: "no-referrer", signal: o.signal,
      });
    } catch (err) {
      if (err && err.name === "AbortError") throw err;
      throw new ApiError(0, t("err.network"), "network");
    }
    const data = await readJson(res);
    if (res.ok || (o.accept || []).includes(res.status)) {
      return { status: res.status, data, headers: res.headers };
    }
    throw errorFrom(res, data);
  }

  function errorFrom(res, data) {
    const message = (data && typeof data.message === "string" && data.message) ||
      t("err.http", { status: res.status });
    return new ApiError(res.status, message, data && data.error, retryAfterSeconds(res.headers, 5));
  }

  async function copyText(text) {
    try {
      if (navigator.clipboard && window.isSecureContext) {
        await navigator.clipboard.writeText(text);
        return true;
      }
    } catch (e) { /* fall back below */ }
    const ta = h("textarea", { value: text, readOnly: true, className: "visually-hidden" });
    document.body.append(ta);
    ta.select();
    let ok = false;
    try { ok = document.execCommand("copy"); } catch (e) { ok = false; }
    ta.remove();
    return ok;
  }

  // Wire a button to copy a text; the button says "Copied" for a moment.
  function wireCopy(button, getText) {
    let timer = 0, label = "";
    button.addEventListener("click", async () => {
      if (!timer) label = button.textContent;  // in the page's language of the moment
      const ok = await copyText(getText());
      button.textContent = ok ? t("copied") : t("copy_failed");
      clearTimeout(timer);
      timer = setTimeout(() => { button.textContent = label; timer = 0; }, 2000);
    });
  }

  // All <button data-copy="inputId"> in root copy that input's value.
  function wireCopyButtons(root) {
    for (const btn of (root || document).querySelectorAll("button[data-copy]")) {
      const input = $(btn.getAttribute("data-copy"));
      if (input) wireCopy(btn, () => input.value);
    }
  }

  function toDate(iso) {
    const d = iso ? new Date(iso) : null;
    return d && !Number.isNaN(d.getTime()) ? d : null;
  }

  // The page's language for dates (the browser's own when the page has no language files).
  function locale() {
    return window.RuangI18n ? window.RuangI18n.locale() : undefined;
  }

  function formatDateTime(iso) {
    const d = toDate(iso);
    if (!d) return "";
    return new Intl.DateTimeFormat(locale(), { dateStyle: "medium", timeStyle: "short" }).format(d);
  }

  // "in 3 hours", "5 minutes ago"
  function relativeTime(iso) {
    const d = toDate(iso);
    if (!d) return "";
    const s = (d.getTime() - Date.now()) / 1000;
    const units = [["day", 86400], ["hour", 3600], ["minute", 60], ["second", 1]];
    const rtf = new Intl.RelativeTimeFormat(locale(), { numeric: "auto" });
    for (const [unit, size] of units) {
      if (Math.abs(s) >= size || unit === "second") return rtf.format(Math.round(s / size), unit);
    }
    return "";
  }

  function formatDuration(seconds) {
    if (!Number.isFinite(seconds) || seconds < 0) return "";
    const t = Math.floor(seconds);
    const hh = Math.floor(t / 3600), mm = Math.floor((t % 3600) / 60), ss = t % 60;
    const two = (n) => String(n).padStart(2, "0");
    return hh ? hh + ":" + two(mm) + ":" + two(ss) : mm + ":" + two(ss);
  }

  const STATE_LABELS = { scheduled: "state.scheduled", live: "state.live", ended: "state.ended" };

  function setBadge(el, state) {
    setText(el, () => (STATE_LABELS[state] ? t(STATE_LABELS[state]) : "…"));
    el.className = "badge" + (state ? " badge-" + state : "");
    el.hidden = !state;
  }

  // Show a message (a string, or a function as setText takes) in a notice element (empty
  // message hides it).
  function notify(el, message, kind) {
    setText(el, message);
    el.className = "notice" + (kind ? " notice-" + kind : "");
    el.hidden = !message;
  }

  // Replace a list's children with build()'s items, but only when data changed
  // (so a poll does not swallow a click), keeping keyboard focus on the same
  // control (matched by its data-key).
  const rendered = new WeakMap();
  function renderList(list, data, build) {
    const sig = JSON.stringify([data, window.RuangI18n ? window.RuangI18n.lang : ""]);
    if (rendered.get(list) === sig) return list.children.length;
    rendered.set(list, sig);
    const items = build();
    const active = document.activeElement;
    const key = active && list.contains(active) ? active.getAttribute("data-key") : null;
    list.replaceChildren(...items);
    if (key) {
      const again = list.querySelector('[data-key="' + CSS.escape(key) + '"]');
      if (again) again.focus();
    }
    return items.length;
  }

  // People on stage, host first, keeping the server's order otherwise.
  function hostFirst(people) {
    return (people || []).slice().sort((a, b) => (b.role === "host") - (a.role === "host"));
  }

  function initials(name) {
    const parts = String(name || "?").trim().split(/\s+/).filter(Boolean);
    const chars = parts.slice(0, 2).map((p) => Array.from(p)[0]);
    return (chars.join("") || "?").toUpperCase();
  }

  const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

  window.RuangUI = {
    $, h, t, tr, setText, onLanguage, spaceIdFromPath, fragmentParam, queryFlag, ApiError, api, errorFrom, readJson,
    retryAfterSeconds, copyText, wireCopy, wireCopyButtons, formatDateTime, relativeTime,
    formatDuration, setBadge, notify, renderList, hostFirst, initials, sleep,
  };
})();
