// Ruang: a space's topics, and the "coming up" card of a scheduled space on the listener page:
// a live countdown, the .ics reminder, sharing and the link. listen.js calls render(space) on
// every refresh and asks pollMs(space) how soon to look again. Exposes window.RuangSchedule.
"use strict";

(function () {
  const U = window.RuangUI;
  const { $, h, t, tr, setText } = U;

  const card = $("schedule"), countdown = $("countdown"), spoken = $("countdown-spoken");
  const shareButton = $("share-button"), shareStatus = $("share-status"), link = $("share-link");
  const calendar = $("calendar-link");
  const canShare = typeof navigator.share === "function";

  // Test hook: what the card shows.
  const hook = window.ruangSchedule = { shown: false, countdown: "", spoken: "" };

  let space = null;
  let ticker = 0;
  let shareTimer = 0;

  // The button says what it does (and which link): share where the browser can, else copy.
  setText(shareButton, tr(canShare ? "sched.share" : "sched.copy_link"));

  // "2 d 3 h", "1 h 05 min", "4:07" (minutes:seconds under an hour).
  function left(seconds) {
    const all = Math.ceil(seconds);
    const d = Math.floor(all / 86400), hh = Math.floor((all % 86400) / 3600);
    const mm = Math.floor((all % 3600) / 60), ss = all % 60;
    const two = (n) => String(n).padStart(2, "0");
    if (d > 0) return t("sched.days", { d, h: hh });
    if (hh > 0) return t("sched.hours", { h: hh, m: two(mm) });
    return mm + ":" + two(ss);
  }

  // What a screen reader hears: coarse, so the live region speaks about once a minute at
  // most (every minute in the last ten, then at 30 and 10 seconds), never every second.
  function coarse(seconds) {
    if (seconds <= 0) return t("sched.soon_spoken");
    if (seconds <= 10) return t("sched.few_seconds");
    if (seconds <= 30) return t("sched.lt30");
    if (seconds <= 60) return t("sched.lt60");
    if (seconds <= 600) return t("sched.minutes", { n: Math.ceil(seconds / 60) });
    return t("sched.later", { relative: U.relativeTime(space.starts_at), when: U.formatDateTime(space.starts_at) });
  }

  function tick() {
    if (!space || space.state !== "scheduled") return;
    const seconds = (Date.parse(space.starts_at) - Date.now()) / 1000;
    const text = !Number.isFinite(seconds) ? t("sched.not_started")
      : seconds > 0 ? t("sched.starts_in", { left: left(seconds) }) : t("sched.starting");
    if (countdown.textContent !== text) countdown.textContent = text;
    const say = Number.isFinite(seconds) ? coarse(seconds) : "";
    if (spoken.textContent !== say) spoken.textContent = say;
    hook.countdown = text;
    hook.spoken = say;
  }

  function renderTags(tags) {
    const list = $("space-tags");
    list.replaceChildren(...(tags || []).map((t) => h("li", { className: "tag", text: t })));
    list.hidden = !(tags && tags.length);
  }

  function render(next) {
    space = next;
    renderTags(space.tags);
    const scheduled = space.state === "scheduled";
    card.hidden = !scheduled;
    hook.shown = scheduled;
    if (!scheduled) { clearInterval(ticker); ticker = 0; return; }
    const url = space.page_url || location.origin + location.pathname;
    if (link.value !== url) link.value = url;
    calendar.href = "/api/spaces/" + encodeURIComponent(space.id) + "/calendar.ics";
    if (!ticker) ticker = setInterval(tick, 1000);
    tick();
  }

  // How soon listen.js should look at the space again: often close to the start, so waiting
  // listeners are moved in within a couple of seconds (the space JSON is cached 2 s).
  function pollMs(s) {
    if (!s || s.state !== "scheduled" || !s.starts_at) return 5000;
    return Date.parse(s.starts_at) - Date.now() < 120000 ? 2000 : 5000;
  }

  function confirm(key) {
    setText(shareStatus, tr(key));
    clearTimeout(shareTimer);
    shareTimer = setTimeout(() => { setText(shareStatus, ""); }, 4000);
  }

  shareButton.addEventListener("click", async () => {
    const url = link.value;
    if (canShare) {
      try {
        await navigator.share({ title: space ? space.title : document.title, url });
        confirm("sched.shared");
      } catch (err) {
        if (err && err.name === "AbortError") return; // the person closed the share sheet
        confirm((await U.copyText(url)) ? "sched.copied" : "sched.copy_failed");
      }
      return;
    }
    confirm((await U.copyText(url)) ? "sched.copied" : "sched.copy_failed");
  });

  link.addEventListener("focus", () => link.select());
  U.onLanguage(tick); // the countdown in the new language at once, not a second later

  window.RuangSchedule = { render, pollMs };
})();
