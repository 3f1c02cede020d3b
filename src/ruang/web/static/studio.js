// Ruang: the studio page, for the host (/s/{id}/host) and invited speakers (/s/{id}/speak).
"use strict";

(function () {
  const U = window.RuangUI;
  const W = window.RuangWhip;
  const { $, h, api, notify } = U;

  const spaceId = U.spaceIdFromPath();
  const role = /\/host\/?$/.test(location.pathname) ? "host" : "speaker";
  const token = U.fragmentParam("token");
  const enc = encodeURIComponent;
  const base = spaceId ? "/api/spaces/" + enc(spaceId) : null;

  // Test hook: state of the stage connection, and the last error shown.
  const hook = window.ruangStudio = { state: "idle", error: null, role };

  let space = null;
  let loadedOnce = false;
  let stopped = false;       // removed, ended or unusable link: no more polling
  let pollTimer = 0;
  let polling = false;
  let attempt = 0;           // bumps on every go/leave so stale async steps stop
  let pc = null, stream = null, resourceUrl = null;
  let stopMeter = () => {};
  let selfMuted = false;
  let wantOnStage = false;   // the user pressed "Go on stage" and has not left: keep them there
  let retries = 0;           // reconnections in a row without a good connection
  let retryTimer = 0;
  let connectedAt = 0;       // when the current connection came up (ms)
  let speaking = [];         // stage members heard now (the `speaking` event, events.js)
  let elsewhere = false;     // the server said we are on stage in another tab (409)

  const goButton = $("go-button"), leaveButton = $("leave-button"), micToggle = $("mic-toggle");
  const remoteAudio = $("remote-audio"), notice = $("notice");

  $("role-label").textContent = role === "host" ? "Host studio" : "Speaker studio";

  function showError(message) {
    hook.error = message;
    notify(notice, message, "error");
  }

  // ---- Connection state -------------------------------------------------
  const STATE_TEXT = {
    idle: ["Off stage", ""], connecting: ["Connecting…", "dot-busy"],
    connected: ["On stage: you are live", "dot-ok"], failed: ["Can't go on stage", "dot-bad"],
    reconnecting: ["Reconnecting to the stage…", "dot-busy"],
    left: ["You left the stage", ""],
  };

  function setState(state, error) {
    hook.state = state;
    if (error !== undefined) hook.error = error;
    const [text, dot] = STATE_TEXT[state];
    $("conn-text").textContent = text + (state === "failed" && hook.error ? ": " + hook.error : "");
    $("conn-dot").className = "dot " + dot;
    const onStage = state === "connecting" || state === "connected" || state === "reconnecting";
    goButton.hidden = onStage || stopped;
    goButton.textContent = elsewhere && state === "failed" ? "Take over here" : "Go on stage";
    goButton.disabled = stopped || !spaceId || !token || (space && space.state === "ended");
    leaveButton.hidden = !onStage;
    leaveButton.textContent = state === "connecting" ? "Cancel" : "Leave stage";
    micToggle.hidden = state !== "connected";
    $("meter-hint").hidden = onStage;
  }

  function applyMute() {
    const hostMuted = !!(space && space.you && space.you.muted);
    $("host-muted").hidden = !hostMuted;
    if (stream) for (const t of stream.getAudioTracks()) t.enabled = !(selfMuted || hostMuted);
    $("meter").classList.toggle("is-muted", selfMuted || hostMuted);
    micToggle.textContent = selfMuted || hostMuted ? "Unmute my mic" : "Mute my mic";
  }

  // ---- Going on stage (WHIP) --------------------------------------------
  async function goOnStage(again) {
    if (!spaceId || !token || stopped) return;
    const mine = ++attempt;
    wantOnStage = true;
    clearTimeout(retryTimer);
    if (notice.classList.contains("notice-error")) notify(notice, "");
    setState(again === true ? "reconnecting" : "connecting", null);
    try {
      const media = await W.getMic();
      if (mine !== attempt) { media.getTracks().forEach((t) => t.stop()); return; }
      stream = media;
      applyMute();
      stopMeter = W.startMeter(media, $("meter-fill"));
      const conn = pc = new RTCPeerConnection({ iceServers: [] });
      conn.addEventListener("track", (e) => {
        remoteAudio.srcObject = e.streams && e.streams[0] ? e.streams[0] : new MediaStream([e.track]);
        playRemote();
      });
      conn.addEventListener("connectionstatechange", () => onConnectionState(conn, mine));
      // Our own earlier session (a reconnection) or an explicit "Take over here" replaces the
      // one the server holds; a plain first try from a second tab is refused with 409.
      const takeOver = again === true || again === "take_over";
      const whipUrl = ((space && space.whip_url) || "/whip/" + enc(spaceId)) + (takeOver ? "?take_over=1" : "");
      const url = await W.publish(conn, media.getAudioTracks()[0], media, whipUrl, token);
      if (mine !== attempt) { if (url) W.unpublish(url, token); return; }
      resourceUrl = url;
      if (conn.connectionState === "connected") onConnected();
    } catch (err) {
      if (mine !== attempt) return;
      teardown(true);
      // Refused for good (removed, ended, bad link): say so. Anything else (the server
      // restarting a process, a full node, the network): try again by itself.
      if (err && [401, 403, 404, 409].includes(err.status)) {
        wantOnStage = false;
        elsewhere = err.code === "on_stage_elsewhere";
        setState("failed", (err && err.message) || "Could not go on stage.");
        pollSoon(0);
      } else if (wantOnStage) {
        reconnectLater((err && err.message) || "Could not go on stage.");
      } else {
        setState("failed", (err && err.message) || "Could not go on stage.");
      }
    }
  }

  function onConnected() {
    retries = 0;
    elsewhere = false;
    connectedAt = Date.now();
    setState("connected");
  }

  // The stage connection is gone (a server process restarted, the network dropped): go on
  // stage again by ourselves, sooner first, then every few seconds.
  function reconnectLater(why) {
    if (!wantOnStage || stopped) return;
    teardown(false);
    const delay = Math.min(500 * 2 ** retries, 8000);
    retries += 1;
    setState("reconnecting", why);
    $("conn-text").textContent = "Reconnecting to the stage…" + (why ? " (" + why + ")" : "");
    retryTimer = setTimeout(() => goOnStage(true), delay);
  }

  function onConnectionState(conn, mine) {
    if (mine !== attempt || conn !== pc) return;
    const s = conn.connectionState;
    if (s === "connected") onConnected();
    else if (s === "disconnected") {
      $("conn-text").textContent = "Connection unstable, trying to recover…";
      // ICE may recover by itself; if not within 2 s, start afresh
      setTimeout(() => { if (conn === pc && conn.connectionState === "disconnected") reconnectLater("connection lost"); }, 2000);
    } else if (s === "failed" || s === "closed") {
      reconnectLater("connection lost");
      pollSoon(0); // were we removed, or did the space end?
    }
  }

  function playRemote() {
    const p = remoteAudio.play();
    if (p && p.catch) p.catch(() => { $("hear-button").hidden = false; });
  }

  // Close everything local; with sendDelete, end the WHIP session on the server.
  function teardown(sendDelete) {
    attempt++;
    const url = resourceUrl, conn = pc;
    resourceUrl = null;
    pc = null;
    if (stream) { stream.getTracks().forEach((t) => t.stop()); stream = null; }
    stopMeter();
    stopMeter = () => {};
    remoteAudio.srcObject = null;
    $("hear-button").hidden = true;
    // End the session with DELETE first, then close the peer connection (at most 1.5 s later).
    const ended = url && sendDelete ? Promise.race([W.unpublish(url, token), U.sleep(1500)]) : Promise.resolve();
    ended.then(() => { if (conn) conn.close(); });
  }

  function leaveStage(byUser) {
    wantOnStage = false;
    clearTimeout(retryTimer);
    teardown(true);
    setState("left", byUser ? null : hook.error);
  }

  // ---- Space state (poll every 2 s) -------------------------------------
  function pollSoon(ms) {
    clearTimeout(pollTimer);
    if (!stopped) pollTimer = setTimeout(poll, ms);
  }

  async function poll() {
    if (polling || stopped) return;
    polling = true;
    try {
      const { data } = await api("GET", base, { token });
      space = data || {};
      loadedOnce = true;
      // The server no longer has our session (its media process restarted) though our side
      // still looks connected: go on stage again.
      if (hook.state === "connected" && space.you && space.you.on_stage === false &&
          Date.now() - connectedAt > 4000) reconnectLater("the server restarted");
      if (notice.classList.contains("notice-warn")) notify(notice, "");
      renderSpace();
    } catch (err) {
      if ([401, 403, 404].includes(err.status)) stop(goneMessage(err));
      else notify(notice, err.message + " Retrying…", "warn");
    } finally {
      polling = false;
    }
    pollSoon(2000);
  }

  function goneMessage(err) {
    if (loadedOnce && role === "speaker") return "You were removed from the stage.";
    if (err.status === 404) return loadedOnce ? "This space no longer exists." : (err.code ? err.message : "This space doesn't exist.");
    return err.code ? err.message : "This link is not valid (its key was refused).";
  }

  function stop(message) {
    stopped = true;
    wantOnStage = false;
    clearTimeout(pollTimer);
    clearTimeout(retryTimer);
    const wasOn = ["connecting", "connected", "reconnecting"].includes(hook.state);
    teardown(false);
    $("host-muted").hidden = true;
    showError(message);
    setState(wasOn || loadedOnce ? "left" : "failed", message);
  }

  function renderSpace() {
    const title = space.title || "Untitled space";
    $("space-title").textContent = title;
    document.title = title + " · Ruang studio";
    U.setBadge($("state-badge"), space.state);
    const when = { scheduled: space.starts_at && "Starts " + U.formatDateTime(space.starts_at) + " (" + U.relativeTime(space.starts_at) + ")",
      live: space.started_at && "Live since " + U.formatDateTime(space.started_at),
      ended: space.ended_at && "Ended " + U.formatDateTime(space.ended_at) }[space.state];
    $("space-when").textContent = when || "";
    applyMute();
    renderStage();
    if (role === "host") renderHostPanel();
    if (window.RuangModerate) window.RuangModerate.render(space, { token, base, hostAction, refresh: () => pollSoon(0) });
    if (space.state === "ended") {
      if (["connecting", "connected", "reconnecting"].includes(hook.state)) leaveStage(false);
      stopped = true;
      notify(notice, "This space has ended." + (space.replay_url ? " The replay is on the listener page." : ""), "info");
    }
    setState(hook.state);
  }

  function personItem(p) {
    const you = space.you && p.id === space.you.id;
    const tags = h("span", { className: "tags" }, [
      p.role === "host" && h("span", { className: "tag", text: "host" }),
      p.role === "cohost" && h("span", { className: "tag", text: "co-host" }),
      you && h("span", { className: "tag", text: "you" }),
      p.on_stage === false && h("span", { className: "tag", text: "not on stage" }),
      p.muted && h("span", { className: "tag tag-muted", text: "muted" }),
    ]);
    const li = h("li", { "data-speaker": p.id }, [
      h("span", { className: "avatar", text: U.initials(p.name), "aria-hidden": "true" }),
      h("span", { className: "name", text: p.name || "Speaker" }), tags,
    ]);
    const M = window.RuangModerate; // the host's and co-hosts' buttons (moderate.js)
    const actions = M && !you ? M.personActions(p, space) : null;
    if (actions) li.append(actions);
    return li;
  }

  function renderStage() {
    let people = space.stage || [];
    if (Array.isArray(space.speakers)) { // the host's and co-hosts' view
      // Everyone invited, plus whoever is on stage but not in that list (the host).
      const ids = new Set(space.speakers.map((p) => p.id));
      people = space.speakers.concat(people.filter((p) => !ids.has(p.id)));
    }
    const you = space.you && space.you.id;
    const count = U.renderList($("stage-list"), [people, you], () => U.hostFirst(people).map(personItem));
    $("stage-empty").hidden = count > 0;
    window.RuangEvents.markSpeaking($("stage-list"), speaking);
  }

  function renderHostPanel() {
    $("host-panel").hidden = false;
    $("start-button").hidden = space.state !== "scheduled";
    $("end-button").hidden = space.state === "ended";
    $("invite-panel").hidden = space.state === "ended";
    const page = space.page_url || "/s/" + enc(spaceId);
    $("listen-url").value = new URL(page, location.href).href;
    const l = space.listeners;
    $("listeners-box").hidden = !(l && typeof l.current === "number");
    if (l && typeof l.current === "number") {
      $("listeners-current").textContent = String(l.current);
      $("listeners-text").textContent = "listening" + (typeof l.peak === "number" ? " · peak " + l.peak : "");
    }
    renderGuard(space.guard);
    renderAutoEnd();
  }

  // An abandoned space ends by itself (the server says when): say so while it can be avoided.
  function renderAutoEnd() {
    const box = $("auto-end");
    const at = space.state !== "ended" && space.auto_end_at ? new Date(space.auto_end_at) : null;
    box.hidden = !at || Number.isNaN(at.getTime());
    hook.autoEnd = box.hidden ? null : space.auto_end_at;
    if (box.hidden) return;
    const today = at.toDateString() === new Date().toDateString();
    const when = today
      ? new Intl.DateTimeFormat(undefined, { timeStyle: "short" }).format(at)
      : U.formatDateTime(space.auto_end_at);
    box.textContent = space.state === "scheduled"
      ? "This space has not started: it ends by itself at " + when + " unless you start it."
      : "Nobody is on stage: this space ends by itself at " + when + " unless someone goes on stage.";
  }

  // Attack mode, proof-of-work and refusals, as the delivery workers report them.
  function renderGuard(g) {
    $("guard-box").hidden = !g;
    if (!g) return;
    const badge = $("guard-badge");
    badge.textContent = g.attack_mode ? "Under attack · defences raised" : "No attack";
    badge.className = "badge " + (g.attack_mode ? "badge-attack" : "badge-calm");
    const parts = [];
    if (g.attack_mode && g.reason) parts.push(g.reason);
    if (g.pow_difficulty) parts.push("new listeners solve a proof-of-work (" + g.pow_difficulty + " bits)");
    if (g.rate_limited) parts.push(g.rate_limited + " requests over their source's limit");
    $("guard-text").textContent = parts.join(" · ");
  }

  // The incident report needs the host's key, so it is fetched here and shown from memory.
  async function openReport() {
    const win = window.open("", "_blank");
    try {
      const r = await fetch(base + "/report", { headers: { Authorization: "Bearer " + token } });
      if (!r.ok) throw new Error("The report could not be made (" + r.status + ").");
      const url = URL.createObjectURL(new Blob([await r.text()], { type: "text/html" }));
      if (win) win.location.href = url; else location.href = url;
    } catch (err) {
      if (win) win.close();
      showError(err.message);
    }
  }

  // ---- Host actions -------------------------------------------------------
  async function hostAction(button, method, path, body) {
    button.disabled = true;
    try {
      await api(method, base + path, { token, body });
      pollSoon(0);
    } catch (err) {
      showError(err.message);
    } finally {
      button.disabled = false;
    }
  }

  $("stage-list").addEventListener("click", (e) => {
    const b = e.target.closest("button[data-action]");
    if (!b) return;
    if (window.RuangModerate) window.RuangModerate.onAction(b, hostAction);
  });

  $("start-button").addEventListener("click", (e) => hostAction(e.currentTarget, "POST", "/start"));
  $("report-button").addEventListener("click", openReport);
  $("end-button").addEventListener("click", (e) => {
    if (window.confirm("End this space for everyone? Speakers are disconnected and listeners hear the end.")) {
      hostAction(e.currentTarget, "POST", "/end");
    }
  });

  $("invite-form").addEventListener("submit", async (e) => {
    e.preventDefault();
    const input = $("invite-name"), err = $("invite-error"), button = $("invite-button");
    const name = input.value.trim();
    notify(err, "", "error");
    if (!name) { notify(err, "Please type the speaker's name.", "error"); input.focus(); return; }
    button.disabled = true;
    try {
      const { data } = await api("POST", base + "/speakers", { token, body: { name } });
      $("invite-who").textContent = data.name || name;
      $("invite-url").value = new URL(data.invite_url, location.href).href;
      $("invite-result").hidden = false;
      input.value = "";
      pollSoon(0);
    } catch (ex) {
      notify(err, ex.message, "error");
    } finally {
      button.disabled = false;
    }
  });

  // ---- Wiring -------------------------------------------------------------
  goButton.addEventListener("click", () => goOnStage(elsewhere ? "take_over" : false));
  leaveButton.addEventListener("click", () => leaveStage(true));
  // Muting oneself is the server's too (others see it; a muted voice is never decoded), and
  // only oneself can unmute — a host or co-host who muted you cannot.
  micToggle.addEventListener("click", async () => {
    const muted = !(selfMuted || (space && space.you && space.you.muted));
    if (space && space.you) {
      try {
        const { data } = await api("POST", base + "/speakers/" + enc(space.you.id) + "/mute", { token, body: { muted } });
        space.you = Object.assign({}, space.you, data);
      } catch (err) { showError(err.message); return; }
    }
    selfMuted = muted;
    applyMute();
    pollSoon(0);
  });
  $("hear-button").addEventListener("click", () => { $("hear-button").hidden = true; playRemote(); });
  window.addEventListener("pagehide", () => { if (resourceUrl) teardown(true); });
  window.addEventListener("pageshow", (e) => { if (e.persisted) location.reload(); }); // back/forward cache
  U.wireCopyButtons(document);

  async function init() {
    if (!spaceId) { stopped = true; setState("failed", "No space in this address."); showError("This page needs a space address like /s/abc123/host."); return; }
    if (!token) { stopped = true; setState("failed", "Missing key."); showError("This link is missing its key. Open the full private link you were given (it ends with #token=…)."); return; }
    setState("idle");
    // Live events (events.js): the listener count and who is heard, as they change.
    window.RuangEvents.follow(spaceId, {
      listeners: (n) => { $("listeners-current").textContent = String(n); },
      speaking: (ids) => { speaking = ids; window.RuangEvents.markSpeaking($("stage-list"), ids); },
      stage: () => pollSoon(0),
      reaction: (e) => window.RuangReactions.show(e),
    });
    await poll();
    if (U.queryFlag("autostart") && !stopped) goButton.click();
  }
  init();
})();
