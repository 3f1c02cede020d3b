// Ruang: the public listener page (/s/{id}). Live via LL-HLS, replay after the end.
"use strict";

(function () {
  const U = window.RuangUI;
  const { $, h, api, notify, t, tr, setText } = U;

  const spaceId = U.spaceIdFromPath();
  const base = spaceId ? "/api/spaces/" + encodeURIComponent(spaceId) : null;
  const audio = $("player"), button = $("play-button"), statusEl = $("listen-status");
  const notice = $("notice"), readout = $("readout");

  // Test hook: what the player is doing, and how far it has played.
  const hook = window.ruangListener = { state: "idle", currentTime: 0, mode: null, error: null, powMs: null, stalls: 0 };

  let space = null;
  let hls = null;
  // The hls.js player (latency, playingDate), for benchmarks; not enumerable, so a test's
  // snapshot of the hook stays plain data.
  Object.defineProperty(hook, "hls", { get: () => hls });
  let mode = null;            // "live" | "replay" while a source is attached
  let sourceUrl = null;
  let needsTap = false;       // autoplay was refused: the next click calls play()
  let wantPlay = U.queryFlag("autoplay"); // play as soon as possible
  let waitChosen = false;     // a scheduled space: listeners wait to play unless they cancel
  let joinSeq = 0, retryTimer = 0, countdownTimer = 0, pollTimer = 0, loadRetries = 0;
  let queueToken = null, ticket = null, renewTimer = 0;
  let powSolution = null, powTries = 0; // proof-of-work (pow.js): sent once with the next join

  // message: a string (a server's words) or a function giving the text in the page's
  // language (U.tr), so that it follows a change of language.
  function setState(state, message) {
    hook.state = state;
    if (state === "error") hook.error = (typeof message === "function" ? message() : message) || null;
    if (message !== undefined) setText(statusEl, message);
    render();
  }

  function render() {
    const st = hook.state, ended = space && space.state === "ended";
    let label = "listen.play", disabled = !spaceId;
    if (st === "joining" || st === "waiting") label = "listen.cancel";
    else if (st === "playing") label = mode === "replay" ? "listen.pause" : "listen.stop";
    else if (needsTap || (mode === "replay" && sourceUrl)) label = mode === "replay" ? "listen.play_replay" : "listen.play";
    else if (ended) { label = "listen.play_replay"; disabled = !space.replay_url; }
    else if (space && space.state === "scheduled") label = wantPlay ? "listen.waiting_cancel" : "listen.play_when";
    button.textContent = t(label);
    button.disabled = disabled;
    $("volume-box").hidden = mode !== "live";
    audio.controls = mode === "replay";
  }

  // ---- Joining the live stream -------------------------------------------
  function clearTimers() {
    clearTimeout(retryTimer);
    clearInterval(countdownTimer);
  }

  // Show text(secondsLeft) every second, then call again() when it reaches 0.
  function retryIn(seconds, text, again) {
    clearTimers();
    let left = seconds;
    setText(statusEl, () => text(left));
    countdownTimer = setInterval(() => { left = Math.max(0, left - 1); setText(statusEl, () => text(left)); }, 1000);
    retryTimer = setTimeout(again, seconds * 1000);
  }

  async function join() {
    const seq = ++joinSeq;
    clearTimers();
    notify(notice, "");
    setState("joining", tr("listen.joining"));
    try {
      const body = {};
      if (queueToken) body.queue = queueToken;
      if (powSolution) { body.pow = powSolution; powSolution = null; }
      const res = await api("POST", base + "/join", { accept: [202, 428, 429, 503], body });
      if (seq !== joinSeq) return;
      const data = res.data || {};
      const wait = U.retryAfterSeconds(res.headers, 5);
      if (res.status === 428) {
        await proveThenJoin(seq, data.pow);
        return;
      }
      powTries = 0;
      if (res.status === 202) {
        queueToken = data.queue || queueToken; // our place in line: keep it for the next try
        setState("waiting");
        const pos = data.position != null ? data.position : "?";
        const eta = data.estimated_wait_s != null ? Math.round(data.estimated_wait_s) : wait;
        retryIn(wait, () => t("listen.in_line", { position: pos, eta }), join);
      } else if (res.status === 503 || res.status === 429) {
        setState("waiting");
        retryIn(wait, (s) => t("listen.busy", { s }), join);
      } else if (data.listen_url) {
        queueToken = null;
        keepTicket(data);
        const kind = data.state === "ended" ? "replay" : "live";
        const young = kind === "live" && space && space.created_at
          ? FIRST_SEGMENTS_MS - (Date.now() - Date.parse(space.created_at)) : 0;
        if (young > 0) {
          setState("joining", tr("listen.starting"));
          retryTimer = setTimeout(() => { if (seq === joinSeq) startPlayback(data.listen_url, kind); }, Math.min(young, FIRST_SEGMENTS_MS));
        } else {
          startPlayback(data.listen_url, kind);
        }
      } else {
        if (space) { space.state = data.state || space.state; space.replay_url = data.replay_url || space.replay_url; }
        setState("idle", tr(data.state === "ended" ? "listen.ended" : "listen.not_live"));
        refresh();
      }
    } catch (err) {
      if (seq !== joinSeq) return;
      setState("error", err.message);
    }
  }

  // Under pressure join asks for a proof of work (428): solve it in the background (pow.js,
  // well under a second at normal difficulty) and join again with the solution.
  async function proveThenJoin(seq, pow) {
    if (!window.solvePow || !pow || ++powTries > 3) {
      powTries = 0;
      setState("waiting");
      retryIn(10, (s) => t("listen.busy", { s }), join);
      return;
    }
    setState("joining", tr("listen.pow"));
    const started = performance.now();
    const nonce = await window.solvePow(pow);
    if (seq !== joinSeq) return;
    hook.powMs = Math.round(performance.now() - started);
    powSolution = { challenge: pow.challenge, nonce };
    join();
  }

  // ---- Tickets ------------------------------------------------------------
  // The listen URL carries a short-lived ticket in its path (/t/<ticket>/). It is renewed at
  // half-life, and hls.js rewrites every request to use the newest one: playback never stops.
  function keepTicket(data) {
    ticket = data.ticket || null;
    clearTimeout(renewTimer);
    if (!ticket || !data.renew_after_s) return;
    renewTimer = setTimeout(async () => {
      try {
        let res = await api("POST", base + "/join", { body: { ticket }, accept: [428] });
        const pow = res.status === 428 && res.data && res.data.pow;
        if (pow && window.solvePow) {
          const nonce = await window.solvePow(pow);
          res = await api("POST", base + "/join", { body: { ticket, pow: { challenge: pow.challenge, nonce } } });
        }
        if (res.data && res.data.ticket) keepTicket(res.data);
      } catch (err) {
        renewTimer = setTimeout(() => keepTicket(data), 10000); // try again soon
      }
    }, data.renew_after_s * 1000);
  }

  // reactions.js and liveclip.js send with the ticket; liveclip.js shows while live
  window.RuangListen = { ticket: () => ticket, state: () => (space ? space.state : null) };

  function withTicket(url) {
    return ticket ? url.replace(/\/t\/[^/]+\//, "/t/" + ticket + "/") : url;
  }

  // ---- Playback -----------------------------------------------------------
  // How far behind the live edge hls.js plays (docs/BENCHMARKS.md, "Listener latency in
  // hls.js"). The playlist's PART-HOLD-BACK (1.536 s, 3 parts, for every player) put the page
  // 1.9 s behind the mix; a part reaches the origin within ~0.05 s of its last sample, so 1.0 s
  // behind the edge (2 parts) still keeps ~0.9 s buffered. hls.js catches up by playing at up
  // to 1.1x (inaudible for speech) and jumps back to the sync point if it falls 4 s behind.
  const LIVE_SYNC = { liveSyncDuration: 1.0, liveMaxLatencyDuration: 4, maxLiveSyncPlaybackRate: 1.1 };
  // hls.js 1.7.4 started in a space's first segment re-fetches its last part in a loop (about
  // 150 requests a second) until that segment leaves the playlist's part listing, and plays
  // 6 s behind after: attach only once the space has been on air this long, so it starts in
  // the second segment. A scheduled space is on air (silence) from its creation, so listeners
  // waiting for its start are not held back.
  const FIRST_SEGMENTS_MS = 4200;
  function startPlayback(url, kind) {
    stopPlayback();
    mode = kind;
    sourceUrl = url;
    hook.mode = kind;
    setState("joining", tr(kind === "live" ? "listen.connecting" : "listen.loading_replay"));
    if (window.Hls && window.Hls.isSupported()) {
      const live = kind === "live";
      hls = new window.Hls({
        lowLatencyMode: live, backBufferLength: 30, ...(live ? LIVE_SYNC : {}),
        xhrSetup: (xhr, u) => { xhr.open("GET", withTicket(u), true); },
      });
      hls.on(window.Hls.Events.ERROR, onHlsError);
      hls.on(window.Hls.Events.MANIFEST_PARSED, () => { loadRetries = 0; });
      hls.loadSource(url);
      hls.attachMedia(audio);
    } else if (audio.canPlayType("application/vnd.apple.mpegurl")) {
      audio.src = url; // Safari plays HLS by itself
    } else {
      setState("error", tr("listen.unsupported"));
      return;
    }
    tryPlay();
  }

  function tryPlay() {
    needsTap = false;
    const p = audio.play();
    if (p && p.catch) {
      p.catch((err) => {
        if (err && err.name === "NotAllowedError") {
          needsTap = true;
          setState("idle", tr("listen.press_play"));
        } else if (err && err.name !== "AbortError" && hook.state !== "error") {
          setState("error", tr("listen.could_not_play", { reason: err.message || err.name }));
        }
      });
    }
  }

  function stopPlayback() {
    if (hls) { hls.destroy(); hls = null; }
    audio.pause();
    audio.removeAttribute("src");
    audio.load();
    mode = null;
    sourceUrl = null;
    needsTap = false;
    hook.mode = null;
    readout.hidden = true;
  }

  function onHlsError(event, data) {
    if (!data.fatal || !hls) return;
    const E = window.Hls.ErrorTypes;
    if (data.type === E.MEDIA_ERROR && loadRetries < 3) {
      loadRetries++;
      hls.recoverMediaError();
    } else if (data.type === E.NETWORK_ERROR && loadRetries < 5) {
      loadRetries++;
      const url = sourceUrl, kind = mode, again = loadRetries;
      setText(statusEl, tr("listen.network"));
      setTimeout(() => {
        if (sourceUrl !== url) return;
        if (/manifest/i.test(data.details || "")) { startPlayback(url, kind); loadRetries = again; } else if (hls) hls.startLoad();
      }, 1000 * loadRetries);
    } else {
      const msg = mode === "replay" ? "listen.replay_broken" : "listen.live_stopped";
      stopPlayback();
      setState("error", tr(msg));
    }
  }

  audio.addEventListener("playing", () => {
    setState("playing", tr(mode === "replay" ? "listen.playing_replay" : "listen.playing_live"));
  });
  audio.addEventListener("waiting", () => {
    if (hook.state !== "playing") return;
    hook.stalls++; // playback ran dry: a latency that stalls is worse than a longer one
    setText(statusEl, tr("listen.buffering"));
  });
  audio.addEventListener("pause", () => {
    if (hook.state === "playing") setState("idle", tr(mode === "replay" ? "listen.paused" : "listen.stopped"));
  });
  audio.addEventListener("ended", () => {
    const wasLive = mode === "live";
    if (wasLive) stopPlayback();
    setState("idle", tr(wasLive ? "listen.space_ended" : "listen.replay_end"));
    if (wasLive) refresh();
  });
  audio.addEventListener("timeupdate", () => { hook.currentTime = audio.currentTime; });
  audio.addEventListener("durationchange", () => {
    if (mode === "replay" && Number.isFinite(audio.duration)) {
      setText(statusEl, tr("listen.replay_length", { duration: U.formatDuration(audio.duration) }));
    }
  });

  // Latency and buffer, for the curious; refreshed every second.
  function bufferAhead() {
    const t = audio.currentTime, b = audio.buffered;
    for (let i = 0; i < b.length; i++) if (b.start(i) <= t + 0.1 && t <= b.end(i)) return b.end(i) - t;
    return 0;
  }
  setInterval(() => {
    hook.currentTime = audio.currentTime;
    if (hook.state !== "playing") { readout.hidden = true; return; }
    const parts = [];
    if (mode === "live" && hls && Number.isFinite(hls.latency) && hls.latency > 0) {
      parts.push(t("listen.latency", { s: hls.latency.toFixed(1) }));
    }
    parts.push(t("listen.buffer", { s: bufferAhead().toFixed(1) }));
    if (mode === "replay") parts.push(U.formatDuration(audio.currentTime) + " / " + U.formatDuration(audio.duration));
    parts.push(hls ? "hls.js " + window.Hls.version : t("listen.native"));
    readout.textContent = parts.join(" · ");
    readout.hidden = false;
  }, 1000);

  button.addEventListener("click", () => {
    const st = hook.state;
    if (st === "joining" || st === "waiting") {
      joinSeq++;
      clearTimers();
      wantPlay = false;
      stopPlayback();
      setState("idle", "");
    } else if (st === "playing") {
      if (mode === "replay") audio.pause();
      else { stopPlayback(); setState("idle", tr("listen.stopped")); }
    } else if (needsTap || (mode === "replay" && sourceUrl)) {
      tryPlay();
    } else if (space && space.state === "ended") {
      join(); // an ended space's join answers with the replay, ticketed
    } else if (space && space.state === "scheduled") {
      wantPlay = !wantPlay;
      setState("idle", wantPlay ? tr("listen.will_play") : "");
    } else {
      join();
    }
  });

  $("volume").addEventListener("input", (e) => { audio.volume = Number(e.target.value); });

  // ---- Space info (poll every 5 s) ---------------------------------------
  async function refresh() {
    clearTimeout(pollTimer);
    try {
      const { data } = await api("GET", base);
      space = data || {};
      if (space.captions_url) captions.available();
      if (notice.classList.contains("notice-warn")) notify(notice, "");
      renderSpace();
    } catch (err) {
      if (err.status === 404) {
        notify(notice, err.code ? err.message : tr("space.missing"), "error");
        button.disabled = true;
        return; // nothing more to poll
      }
      notify(notice, tr("retrying", { message: err.message }), "warn");
    }
    pollTimer = setTimeout(refresh, window.RuangSchedule ? window.RuangSchedule.pollMs(space) : 5000);
  }

  let speaking = []; // stage members heard now (the `speaking` event)
  function renderSpace() {
    setText($("space-title"), space.title || tr("listen.untitled"));
    document.title = t("listen.doc_title", { title: space.title || t("listen.untitled") });
    U.setBadge($("state-badge"), space.state);
    const when = {
      scheduled: space.starts_at && t("when.starts", { when: U.formatDateTime(space.starts_at), relative: U.relativeTime(space.starts_at) }),
      live: space.started_at && t("when.started", { relative: U.relativeTime(space.started_at) }),
      ended: space.ended_at && t("when.ended", { when: U.formatDateTime(space.ended_at) }),
    }[space.state];
    $("space-when").textContent = when || "";
    const count = U.renderList($("stage-list"), space.stage || [], () => U.hostFirst(space.stage).map((p) => h("li", { "data-speaker": p.id }, [
      h("span", { className: "avatar", text: U.initials(p.name), "aria-hidden": "true" }),
      h("span", { className: "name", text: p.name || t("speaker") }),
      h("span", { className: "tags" }, [
        p.role === "host" && h("span", { className: "tag", text: t("role.host") }),
        p.muted && h("span", { className: "tag tag-muted", text: t("tag.muted") }),
      ]),
    ])));
    $("stage-empty").hidden = count > 0;
    $("replay-page").hidden = !(space.state === "ended" && space.replay_url);
    $("replay-page-link").href = "/s/" + encodeURIComponent(space.id) + "/replay";
    if (window.RuangSchedule) window.RuangSchedule.render(space); // schedule.js: topics, countdown
    if (space.state === "scheduled" && !waitChosen) { waitChosen = true; wantPlay = true; } // join at the start
    window.RuangEvents.markSpeaking($("stage-list"), speaking);
    if (space.state === "scheduled" && hook.state === "idle" && !statusEl.textContent) {
      setText(statusEl, tr(wantPlay ? "listen.will_play" : "listen.not_started"));
    }
    if (space.state === "ended" && mode === "live" && hook.state === "playing") {
      setText(statusEl, tr("listen.last_moments"));
    }
    if (wantPlay && hook.state === "idle" && !mode) {
      if (space.state === "live") { wantPlay = false; join(); }
      else if (space.state === "ended") { wantPlay = false; join(); }
    }
    render();
  }

  // A change of language: the button, and the space's sentences (status texts follow by themselves).
  U.onLanguage(() => { if (space) renderSpace(); else render(); });
  setText($("space-title"), tr("listen.untitled"));
  // Live captions (caption events): the last few lines in an aria-live log, behind a toggle
  // whose choice is kept. Shown once the space has captions.
  const captions = (function () {
    const KEY = "ruang.captions", KEEP = 3;
    const box = $("captions-box"), text = $("captions-text"), toggle = $("captions-toggle");
    let on = true;
    try { on = localStorage.getItem(KEY) !== "off"; } catch (e) { /* private mode */ }
    function show() {
      toggle.setAttribute("aria-pressed", String(on));
      text.hidden = !on;
    }
    toggle.addEventListener("click", () => {
      on = !on;
      try { localStorage.setItem(KEY, on ? "on" : "off"); } catch (e) { /* private mode */ }
      show();
    });
    show();
    return {
      add(e) {
        box.hidden = false;
        const line = document.createElement("span");
        line.className = "caption-line";
        line.textContent = e.text || "";
        text.append(line);
        while (text.children.length > KEEP) text.firstElementChild.remove();
        hook.captions = (hook.captions || 0) + 1;
      },
      available() { box.hidden = false; },
    };
  })();

  if (!spaceId) {
    notify(notice, tr("listen.no_id"), "error");
    render();
  } else {
    render();
    refresh();
    // Live events (events.js): the count, who is heard, and the stage without waiting for a poll.
    window.RuangEvents.follow(spaceId, {
      listeners: (n) => { const el = $("listener-count"); el.hidden = false; setText(el, tr("listen.count", { n })); },
      speaking: (ids) => { speaking = ids; window.RuangEvents.markSpeaking($("stage-list"), ids); },
      stage: () => refresh(),
      state: () => refresh(),
      reaction: (e) => window.RuangReactions.show(e),
      caption: (e) => captions.add(e),
    });
  }
})();
