// Ruang: a space's replay page (/s/{id}/replay): the recording with who spoke when, the
// reactions over time, captions to search, a link to any moment (#t=90, #t=1m30s, #t=1:30)
// and the download.
"use strict";

(function () {
  const U = window.RuangUI;
  const I = window.RuangI18n;
  const t = (key, vars) => (I ? I.t(key, vars) : key);
  const $ = U.$;
  const spaceId = U.spaceIdFromPath();
  const audio = $("player");
  let hls = null;
  let space = null;
  let timeline = null;
  let cues = [];
  let pendingSeek = null; // a moment asked for before the audio could seek
  const ROLES = { host: "replay.role.host", cohost: "replay.role.cohost", speaker: "replay.role.speaker" };
  const hook = (window.ruangReplay = { state: "loading", seeks: 0 }); // for tests

  // "#t=90", "#t=90.5", "#t=1m30s", "#t=1h2m3s", "#t=1:30", "#t=1:02:03" -> seconds (or null)
  function momentFromHash() {
    const raw = new URLSearchParams(location.hash.replace(/^#/, "")).get("t");
    if (!raw) return null;
    if (/^\d+(\.\d+)?$/.test(raw)) return Number(raw);
    let m = /^(?:(\d+)h)?(?:(\d+)m)?(?:(\d+(?:\.\d+)?)s?)?$/.exec(raw);
    if (m && (m[1] || m[2] || m[3])) return (+m[1] || 0) * 3600 + (+m[2] || 0) * 60 + (+m[3] || 0);
    m = /^(?:(\d+):)?(\d+):(\d+(?:\.\d+)?)$/.exec(raw);
    if (m) return (+m[1] || 0) * 3600 + +m[2] * 60 + +m[3];
    return null;
  }

  function seek(seconds, play) {
    if (!Number.isFinite(seconds) || seconds < 0) return;
    hook.seeks++;
    if (audio.readyState >= 1 && Number.isFinite(audio.duration)) {
      audio.currentTime = Math.min(seconds, Math.max(0, audio.duration - 0.25));
      pendingSeek = null;
    } else {
      pendingSeek = seconds;
    }
    if (play) {
      const p = audio.play();
      if (p && p.catch) p.catch(() => {}); // the browser may want a tap first: controls are there
    }
  }

  function momentUrl(seconds) {
    return location.origin + "/s/" + encodeURIComponent(spaceId) + "/replay#t=" + Math.floor(seconds);
  }

  function showPosition() {
    const now = audio.currentTime || 0;
    const total = Number.isFinite(audio.duration) ? audio.duration : (timeline && timeline.duration_s) || 0;
    $("position").textContent = U.formatDuration(now) + " / " + U.formatDuration(total);
    const playhead = document.querySelector(".timeline-playhead");
    if (playhead && total) playhead.style.left = Math.min(100, (100 * now) / total) + "%";
    for (const li of $("caption-list").children) {
      const on = now >= Number(li.dataset.start) && now < Number(li.dataset.end);
      li.classList.toggle("cue-now", on);
    }
  }

  function nameOf(id) {
    const who = timeline && timeline.speakers.find((s) => s.id === id);
    return who ? who.name : t("replay.someone");
  }

  function renderTimeline() {
    const box = $("timeline");
    const total = timeline.duration_s || 1;
    const rows = [];
    const bySpeaker = new Map();
    for (const turn of timeline.turns) {
      if (!bySpeaker.has(turn.speaker)) bySpeaker.set(turn.speaker, []);
      bySpeaker.get(turn.speaker).push(turn);
    }
    for (const [id, turns] of bySpeaker) {
      const name = nameOf(id);
      const track = U.h("div", { className: "timeline-track" });
      for (const turn of turns) {
        const label = t("replay.turn", {
          name, from: U.formatDuration(turn.start_s), to: U.formatDuration(turn.end_s),
        });
        const b = U.h("button", {
          type: "button", className: "timeline-turn", title: label, "aria-label": label,
        });
        b.dataset.start = String(turn.start_s);
        b.style.left = (100 * turn.start_s) / total + "%";
        b.style.width = Math.max(0.6, (100 * (turn.end_s - turn.start_s)) / total) + "%";
        b.addEventListener("click", () => seek(turn.start_s, true));
        track.append(b);
      }
      rows.push(U.h("div", { className: "timeline-row" }, [
        U.h("span", { className: "timeline-name", text: name }), track,
      ]));
    }
    const axis = U.h("div", { className: "timeline-row timeline-axis", "aria-hidden": "true" }, [
      U.h("span", { className: "timeline-name" }),
      U.h("div", { className: "timeline-track" }, [U.h("span", { className: "timeline-playhead" })]),
    ]);
    box.replaceChildren(...rows, axis);
    $("timeline-empty").hidden = rows.length > 0;

    const chart = $("reactions");
    const bins = timeline.reactions.bins;
    const most = Math.max(1, ...bins.map((b) => b.total));
    chart.replaceChildren(...bins.map((b) => {
      const bar = U.h("button", {
        type: "button", className: "reaction-bar",
        "aria-label": t("replay.reaction_bin", { n: b.total, at: U.formatDuration(b.t_s) }),
        title: Object.entries(b.counts).map(([k, n]) => k + " " + n).join("  "),
      });
      bar.style.left = (100 * b.t_s) / total + "%";
      bar.style.height = Math.max(8, (100 * b.total) / most) + "%";
      bar.addEventListener("click", () => seek(b.t_s, true));
      return bar;
    }));
    const sum = bins.reduce((n, b) => n + b.total, 0);
    $("reactions-total").textContent = t("replay.reactions_total", { n: sum });

    U.renderList($("speaker-list"), timeline.speakers, () => timeline.speakers.map((s) => {
      const first = timeline.turns.find((x) => x.speaker === s.id);
      const jump = U.h("button", {
        type: "button", className: "btn btn-small btn-quiet",
        text: t("replay.first_words"), disabled: !first,
        "aria-label": t("replay.first_words_of", { name: s.name }),
      });
      if (first) jump.addEventListener("click", () => seek(first.start_s, true));
      return U.h("li", {}, [
        U.h("span", { className: "avatar", text: U.initials(s.name), "aria-hidden": "true" }),
        U.h("span", { className: "name", text: s.name }),
        U.h("span", { className: "tag", text: t(ROLES[s.role] || "replay.role.speaker") }),
        U.h("span", { className: "muted small", text: t("replay.spoke", { d: U.formatDuration(s.spoke_s) }) }),
        jump,
      ]);
    }));
  }

  // WebVTT -> [{start, end, text}] (the cues' settings and ids are ignored).
  function parseVtt(text) {
    const out = [];
    const time = (s) => {
      const p = s.trim().split(":").map(Number);
      return p.length === 3 ? p[0] * 3600 + p[1] * 60 + p[2] : p[0] * 60 + p[1];
    };
    for (const block of text.replace(/\r/g, "").split(/\n\n+/)) {
      const lines = block.split("\n");
      const at = lines.findIndex((l) => l.includes("-->"));
      if (at < 0) continue;
      const [a, b] = lines[at].split("-->");
      const words = lines.slice(at + 1).join(" ").trim();
      if (words) out.push({ start: time(a), end: time(b.trim().split(/\s+/)[0]), text: words });
    }
    return out;
  }

  function renderCues() {
    const query = $("caption-search").value.trim().toLocaleLowerCase();
    const hits = query ? cues.filter((c) => c.text.toLocaleLowerCase().includes(query)) : cues;
    const list = $("caption-list");
    list.replaceChildren(...hits.slice(0, 500).map((c) => {
      const b = U.h("button", { type: "button", className: "cue-jump", text: U.formatDuration(c.start) });
      b.setAttribute("aria-label", t("replay.jump_to", { at: U.formatDuration(c.start) }));
      b.addEventListener("click", () => seek(c.start, true));
      const li = U.h("li", { className: "cue" }, [b, U.h("span", { text: " " + c.text })]);
      li.dataset.start = String(c.start);
      li.dataset.end = String(c.end);
      return li;
    }));
    $("caption-count").textContent = query ? t("replay.hits", { n: hits.length }) : "";
  }

  async function loadCaptions(url) {
    try {
      const res = await fetch(url);
      if (!res.ok) return;
      cues = parseVtt(await res.text());
    } catch (e) { return; }
    $("captions-card").hidden = cues.length === 0;
    renderCues();
  }

  function attach(url) {
    if (window.Hls && window.Hls.isSupported()) {
      hls = new window.Hls({ lowLatencyMode: false });
      hls.on(window.Hls.Events.ERROR, (event, data) => {
        if (data.fatal) {
          hook.state = "error";
          U.notify($("notice"), t("replay.cannot_play"), "error");
        }
      });
      hls.loadSource(url);
      hls.attachMedia(audio);
    } else if (audio.canPlayType("application/vnd.apple.mpegurl")) {
      audio.src = url; // Safari plays HLS itself
    } else {
      U.notify($("notice"), t("replay.no_hls"), "error");
    }
  }

  function showSpace() {
    document.title = t("replay.title_of", { title: space.title });
    $("space-title").textContent = space.title;
    $("space-title").removeAttribute("data-i18n");
    U.setBadge($("state-badge"), space.state);
    $("space-when").textContent = space.started_at ? U.formatDateTime(space.started_at) : "";
    const download = $("download");
    download.hidden = !space.recording_url;
    if (space.recording_url) download.href = space.recording_url;
  }

  async function start() {
    if (!spaceId) return;
    try {
      space = (await U.api("GET", "/api/spaces/" + encodeURIComponent(spaceId))).data;
    } catch (err) {
      U.notify($("notice"), err.message, "error");
      hook.state = "error";
      return;
    }
    showSpace();
    if (space.state !== "ended") {
      U.notify($("notice"), t(space.state === "live" ? "replay.still_live" : "replay.not_yet"), "info");
    }
    if (!space.replay_url) {
      U.notify($("notice"), t("replay.gone"), "warn");
      hook.state = "gone";
      return;
    }
    try {
      timeline = (await U.api("GET", "/api/spaces/" + encodeURIComponent(spaceId) + "/timeline")).data;
      renderTimeline();
    } catch (err) {
      U.notify($("notice"), err.message, "error");
    }
    if (space.captions_url) loadCaptions(space.captions_url);
    attach(space.replay_url);
    $("clip-card").hidden = space.state === "scheduled";
    showClipFrom();
    pendingSeek = momentFromHash();
    hook.state = "ready";
  }

  // Clips: from where the player is, 15–60 s; a person needs a session (a name) once.
  function showClipFrom() {
    $("clip-from").textContent = t("clip.from", { at: U.formatDuration(audio.currentTime || 0) });
  }

  async function cutClip(event) {
    event.preventDefault();
    const status = $("clip-status");
    const length = Math.min(60, Math.max(15, Math.round(Number($("clip-length").value) || 30)));
    const total = Number.isFinite(audio.duration) ? audio.duration : timeline.duration_s;
    const start = Math.max(0, Math.min(audio.currentTime || 0, total - length));
    const body = { start_s: Math.round(start * 10) / 10, duration_s: length,
      title: $("clip-title-input").value.trim() || undefined };
    const path = "/api/spaces/" + encodeURIComponent(spaceId) + "/clips";
    $("clip-button").disabled = true;
    status.textContent = t("clip.cutting");
    try {
      let res;
      try {
        res = await U.api("POST", path, { body });
      } catch (err) {
        if (err.code !== "identity_required") throw err;
        const name = $("clip-name").value.trim();
        $("clip-name-field").hidden = false;
        if (!name) { status.textContent = t("clip.field.name_hint"); $("clip-name").focus(); return; }
        await U.api("POST", "/api/session", { body: { name } });
        res = await U.api("POST", path, { body });
      }
      $("clip-name-field").hidden = true;
      status.textContent = "";
      $("clip-result").hidden = false;
      $("clip-result-link").href = res.data.page_url;
      hook.clip = res.data;
    } catch (err) {
      status.textContent = err.message;
    } finally {
      $("clip-button").disabled = false;
    }
  }

  audio.addEventListener("loadedmetadata", () => { if (pendingSeek !== null) seek(pendingSeek, false); });
  audio.addEventListener("timeupdate", () => { showPosition(); showClipFrom(); });
  $("clip-form").addEventListener("submit", cutClip);
  audio.addEventListener("durationchange", showPosition);
  window.addEventListener("hashchange", () => { const m = momentFromHash(); if (m !== null) seek(m, true); });
  $("caption-search").addEventListener("input", renderCues);
  U.wireCopy($("moment-copy"), () => momentUrl(audio.currentTime || 0));
  if (I) I.onChange(() => { if (space) showSpace(); if (timeline) { renderTimeline(); renderCues(); } });
  start();
})();
