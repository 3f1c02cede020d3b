// Ruang: a space's topics, and the "coming up" card of a scheduled space on the listener page:
// a live countdown, the .ics reminder, sharing and the link. listen.js calls render(space) on
// every refresh and asks pollMs(space) how soon to look again. Exposes window.RuangSchedule.
"use strict";

(function () {
  const U = window.RuangUI;
  const { $, h } = U;

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
  shareButton.textContent = canShare ? "Share this space" : "Copy link to this space";

  // "2 d 3 h", "1 h 05 min", "4:07" (minutes:seconds under an hour).
  function left(seconds) {
    const t = Math.ceil(seconds);
    const d = Math.floor(t / 86400), hh = Math.floor((t % 86400) / 3600);
    const mm = Math.floor((t % 3600) / 60), ss = t % 60;
    const two = (n) => String(n).padStart(2, "0");
    if (d > 0) return d + " d " + hh + " h";
    if (hh > 0) return hh + " h " + two(mm) + " min";
    return mm + ":" + two(ss);
  }

  // What a screen reader hears: coarse, so the live region speaks about once a minute at
  // most (every minute in the last ten, then at 30 and 10 seconds), never every second.
  function coarse(seconds) {
    if (seconds <= 0) return "Starting soon. The audio starts here when the host begins.";
    if (seconds <= 10) return "Starts in a few seconds.";
    if (seconds <= 30) return "Starts in less than 30 seconds.";
    if (seconds <= 60) return "Starts in less than a minute.";
    if (seconds <= 600) return "Starts in " + Math.ceil(seconds / 60) + " minutes.";
    return "Starts " + U.relativeTime(space.starts_at) + ", " + U.formatDateTime(space.starts_at) + ".";
  }

  function tick() {
    if (!space || space.state !== "scheduled") return;
    const seconds = (Date.parse(space.starts_at) - Date.now()) / 1000;
    const text = !Number.isFinite(seconds) ? "Not started yet"
      : seconds > 0 ? "Starts in " + left(seconds) : "Starting soon…";
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

  function confirm(message) {
    shareStatus.textContent = message;
    clearTimeout(shareTimer);
    shareTimer = setTimeout(() => { shareStatus.textContent = ""; }, 4000);
  }

  shareButton.addEventListener("click", async () => {
    const url = link.value;
    if (canShare) {
      try {
        await navigator.share({ title: space ? space.title : document.title, url });
        confirm("Shared.");
      } catch (err) {
        if (err && err.name === "AbortError") return; // the person closed the share sheet
        confirm((await U.copyText(url)) ? "Link copied." : "Select the link above and copy it.");
      }
      return;
    }
    confirm((await U.copyText(url)) ? "Link copied." : "Select the link above and copy it.");
  });

  link.addEventListener("focus", () => link.select());

  window.RuangSchedule = { render, pollMs };
})();
