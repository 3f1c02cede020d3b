// Ruang: the pages' words in the reader's language. Exposes window.RuangI18n.
//
// Each language is one file, static/lang/<code>.js, that adds its strings to
// window.RuangStrings[<code>]: adding a language is adding a file (and its name below).
// The language is the one chosen on the page (kept in localStorage), else the first of the
// browser's languages that Ruang has, else English. Markup names its words with
// data-i18n="key" (text) and data-i18n-attr="attribute:key;attribute:key"; scripts call t().
"use strict";

(function () {
  const STRINGS = window.RuangStrings || {};
  const NAMES = { en: "English", id: "Bahasa Indonesia" };
  const STORE_KEY = "ruang.lang";
  const listeners = [];

  function available() {
    return Object.keys(NAMES).filter((code) => STRINGS[code]);
  }

  function pick() {
    let saved = null;
    try { saved = localStorage.getItem(STORE_KEY); } catch (e) { /* private mode */ }
    if (saved && STRINGS[saved]) return saved;
    for (const tag of navigator.languages || [navigator.language || "en"]) {
      const code = String(tag).toLowerCase().split("-")[0];
      if (code === "in" && STRINGS.id) return "id"; // the old code for Indonesian
      if (STRINGS[code]) return code;
    }
    return "en";
  }

  let lang = pick();

  // The string for key in the current language (English if missing), with {name} filled in.
  function t(key, vars) {
    const table = STRINGS[lang] || {};
    let s = key in table ? table[key] : (STRINGS.en || {})[key];
    if (s === undefined) s = key;
    if (vars) s = s.replace(/\{(\w+)\}/g, (m, name) => (name in vars ? String(vars[name]) : m));
    return s;
  }

  // Put the current language's words into every marked element under root.
  function apply(root) {
    const scope = root || document;
    for (const el of scope.querySelectorAll("[data-i18n]")) el.textContent = t(el.dataset.i18n);
    for (const el of scope.querySelectorAll("[data-i18n-attr]")) {
      for (const pair of el.dataset.i18nAttr.split(";")) {
        const [attr, key] = pair.split(":").map((x) => x.trim());
        if (attr && key) el.setAttribute(attr, t(key));
      }
    }
    document.documentElement.lang = lang;
  }

  function setLang(code) {
    if (!STRINGS[code] || code === lang) return;
    lang = code;
    try { localStorage.setItem(STORE_KEY, code); } catch (e) { /* private mode */ }
    apply(document);
    for (const fn of listeners) fn(lang);
  }

  // A language switcher in the page's header (a labelled <select>).
  function addSwitcher() {
    const header = document.querySelector(".site-header");
    if (!header || available().length < 2 || document.getElementById("lang-select")) return;
    const select = document.createElement("select");
    select.id = "lang-select";
    select.className = "lang-select";
    select.setAttribute("aria-label", t("lang.label"));
    for (const code of available()) {
      const opt = document.createElement("option");
      opt.value = code;
      opt.textContent = NAMES[code];
      opt.lang = code;
      select.append(opt);
    }
    select.value = lang;
    select.addEventListener("change", () => setLang(select.value));
    listeners.push(() => { select.value = lang; select.setAttribute("aria-label", t("lang.label")); });
    header.append(select);
  }

  window.RuangI18n = {
    t, apply, setLang,
    get lang() { return lang; },
    onChange(fn) { listeners.push(fn); },
    locale() { return lang === "id" ? "id-ID" : "en"; },
  };
  document.addEventListener("DOMContentLoaded", () => { apply(document); addSwitcher(); });
  if (document.readyState !== "loading") { apply(document); addSwitcher(); }
})();
