// Ruang: the studio page, for the host (/s/{id}/host) and invited speakers (/s/{id}/speak).
"use strict";

(function () {
  const U = window.RuangUI;
  const W = window.RuangWhip;
  const { $, h, api, notify, t, tr, setText } = U;

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

  setText($("role-label"), tr(role === "host" ? "studio.role.host" : "studio.role.speaker"));
  setText($("space-title"), tr("studio.role"));

  // A message: a string (a server's words) or a function giving it in the page's language.
  const say = (message) => (typeof message === "function" ? message() : message);
  let errorMessage = null;   // the last error shown, as say() takes it

  function showError(message) {
    errorMessage = message;
    hook.error = say(message);
    notify(notice, message, "error");
  }

  // ---- Connection state -------------------------------------------------
  const STATE_TEXT = {
    idle: ["studio.off", ""], connecting: ["studio.connecting", "dot-busy"],
    connected: ["studio.connected", "dot-ok"], failed: ["studio.failed", "dot-bad"],
    reconnecting: ["studio.reconnecting", "dot-busy"],
    left: ["studio.left", ""],
  };

  function setState(state, error) {
    hook.state = state;
    if (error !== undefined) { errorMessage = error; hook.error = say(error); }
    const [key, dot] = STATE_TEXT[state];
    const why = state === "failed" && errorMessage;
    setText($("conn-text"), () => (why ? t("studio.failed_why", { state: t(key), why: say(why) }) : t(key)));
    $("conn-dot").className = "dot " + dot;
    const onStage = state === "connecting" || state === "connected" || state === "reconnecting";
    goButton.hidden = onStage || stopped;
    goButton.textContent = t(elsewhere && state === "failed" ? "stage.take_over" : "stage.go");
    goButton.disabled = stopped || !spaceId || !token || (space && space.state === "ended");
    leaveButton.hidden = !onStage;
    leaveButton.textContent = t(state === "connecting" ? "studio.cancel" : "stage.leave");
    micToggle.hidden = state !== "connected";
    $("meter-hint").hidden = onStage;
  }

  function applyMute() {
    const hostMuted = !!(space && space.you && space.you.muted);
    $("host-muted").hidden = !hostMuted;
    if (stream) for (const t of stream.getAudioTracks()) t.enabled = !(selfMuted || hostMuted);
    $("meter").classList.toggle("is-muted", selfMuted || hostMuted);
    micToggle.textContent = t(selfMuted || hostMuted ? "stage.unmute" : "stage.mute");
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
        setState("failed", (err && err.message) || tr("stage.could_not"));
        pollSoon(0);
      } else if (wantOnStage) {
        reconnectLater((err && err.message) || tr("stage.could_not"));
      } else {
        setState("failed", (err && err.message) || tr("stage.could_not"));
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
    setText($("conn-text"), () => (why ? t("studio.reconnecting_why", { why: say(why) }) : t("studio.reconnecting")));
    retryTimer = setTimeout(() => goOnStage(true), delay);
  }

  function onConnectionState(conn, mine) {
    if (mine !== attempt || conn !== pc) return;
    const s = conn.connectionState;
    if (s === "connected") onConnected();
    else if (s === "disconnected") {
      setText($("conn-text"), tr("studio.unstable"));
      // ICE may recover by itself; if not within 2 s, start afresh
      setTimeout(() => { if (conn === pc && conn.connectionState === "disconnected") reconnectLater(tr("studio.lost")); }, 2000);
    } else if (s === "failed" || s === "closed") {
      reconnectLater(tr("studio.lost"));
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
    setState("left", byUser ? null : errorMessage);
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
          Date.now() - connectedAt > 4000) reconnectLater(tr("studio.restarted"));
      if (notice.classList.contains("notice-warn")) notify(notice, "");
      renderSpace();
    } catch (err) {
      if ([401, 403, 404].includes(err.status)) stop(goneMessage(err));
      else notify(notice, tr("retrying", { message: err.message }), "warn");
    } finally {
      polling = false;
    }
    pollSoon(2000);
  }

  function goneMessage(err) {
    if (loadedOnce && role === "speaker") return tr("studio.removed");
    if (err.status === 404) return loadedOnce ? tr("studio.gone") : (err.code ? err.message : tr("space.missing"));
    return err.code ? err.message : tr("studio.bad_key");
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
    setText($("space-title"), space.title || tr("studio.untitled"));
    document.title = t("studio.doc_title", { title: space.title || t("studio.untitled") });
    U.setBadge($("state-badge"), space.state);
    const when = {
      scheduled: space.starts_at && t("when.starts", { when: U.formatDateTime(space.starts_at), relative: U.relativeTime(space.starts_at) }),
      live: space.started_at && t("when.live_since", { when: U.formatDateTime(space.started_at) }),
      ended: space.ended_at && t("when.ended", { when: U.formatDateTime(space.ended_at) }) }[space.state];
    $("space-when").textContent = when || "";
    applyMute();
    renderStage();
    if (role === "host") renderHostPanel();
    if (window.RuangModerate) window.RuangModerate.render(space, { token, base, hostAction, refresh: () => pollSoon(0) });
    if (space.state === "ended") {
      if (["connecting", "connected", "reconnecting"].includes(hook.state)) leaveStage(false);
      stopped = true;
      notify(notice, tr(space.recording_deleted ? "studio.deleted" : space.replay_url ? "studio.ended_replay" : "studio.ended"), "info");
    }
    setState(hook.state);
  }

  function personItem(p) {
    const you = space.you && p.id === space.you.id;
    const tags = h("span", { className: "tags" }, [
      p.role === "host" && h("span", { className: "tag", text: t("role.host") }),
      p.role === "cohost" && h("span", { className: "tag", text: t("role.cohost") }),
      you && h("span", { className: "tag", text: t("tag.you") }),
      p.on_stage === false && h("span", { className: "tag", text: t("tag.off_stage") }),
      p.muted && h("span", { className: "tag tag-muted", text: t("tag.muted") }),
    ]);
    const li = h("li", { "data-speaker": p.id }, [
      h("span", { className: "avatar", text: U.initials(p.name), "aria-hidden": "true" }),
      h("span", { className: "name", text: p.name || t("speaker") }), tags,
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
    const kept = space.state === "ended" && !space.recording_deleted;
    $("after-panel").hidden = !kept;
    $("replay-page-link").href = "/s/" + enc(spaceId) + "/replay";
    $("recording-link").hidden = !space.recording_url;
    if (space.recording_url) $("recording-link").href = space.recording_url;
    $("invite-panel").hidden = space.state === "ended";
    const page = space.page_url || "/s/" + enc(spaceId);
    $("listen-url").value = new URL(page, location.href).href;
    const l = space.listeners;
    if (l && typeof l.current === "number") {
      $("listeners-box").hidden = false;
      $("listeners-current").textContent = String(l.current);
      $("listeners-text").textContent = typeof l.peak === "number"
        ? t("studio.listening_peak", { peak: l.peak }) : t("studio.listening");
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
      ? new Intl.DateTimeFormat(window.RuangI18n.locale(), { timeStyle: "short" }).format(at)
      : U.formatDateTime(space.auto_end_at);
    box.textContent = t(space.state === "scheduled" ? "studio.auto_end.scheduled" : "studio.auto_end.live", { when });
  }

  // Attack mode, proof-of-work and refusals, as the delivery workers report them.
  function renderGuard(g) {
    $("guard-box").hidden = !g;
    if (!g) return;
    const badge = $("guard-badge");
    badge.textContent = t(g.attack_mode ? "studio.attack" : "studio.calm");
    badge.className = "badge " + (g.attack_mode ? "badge-attack" : "badge-calm");
    const parts = [];
    if (g.attack_mode && g.reason) parts.push(g.reason);
    if (g.pow_difficulty) parts.push(t("studio.pow", { bits: g.pow_difficulty }));
    if (g.rate_limited) parts.push(t("studio.limited", { n: g.rate_limited }));
    $("guard-text").textContent = parts.join(" · ");
  }

  // The incident report needs the host's key, so it is fetched here and shown from memory.
  async function openReport() {
    const win = window.open("", "_blank");
    try {
      const r = await fetch(base + "/report", { headers: { Authorization: "Bearer " + token } });
      if (!r.ok) throw new Error(t("studio.report_failed", { status: r.status }));
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
    if (window.confirm(t("studio.confirm_end"))) {
      hostAction(e.currentTarget, "POST", "/end");
    }
  });

  $("delete-recording").addEventListener("click", async (e) => {
    if (!window.confirm(t("studio.confirm_delete"))) return;
    const button = e.currentTarget;
    button.disabled = true;
    try {
      await api("DELETE", base + "/recording", { token });
      space.recording_deleted = true;
      delete space.recording_url;
      $("after-panel").hidden = true;
      notify(notice, tr("studio.deleted"), "info");
    } catch (err) {
      showError(err.message);
    } finally {
      button.disabled = false;
    }
  });

  $("invite-form").addEventListener("submit", async (e) => {
    e.preventDefault();
    const input = $("invite-name"), err = $("invite-error"), button = $("invite-button");
    const name = input.value.trim();
    notify(err, "", "error");
    if (!name) { notify(err, tr("studio.err.name"), "error"); input.focus(); return; }
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

  // A change of language: the buttons, the stage and the host's panel in the new words.
  U.onLanguage(() => {
    hook.error = say(errorMessage);
    if (space) renderSpace(); else setState(hook.state);
  });

  async function init() {
    if (!spaceId) { stopped = true; setState("failed", tr("studio.no_id")); showError(tr("studio.no_id_long")); return; }
    if (!token) { stopped = true; setState("failed", tr("studio.no_key")); showError(tr("studio.no_key_long")); return; }
    setState("idle");
    if (!window.isSecureContext) { // say why before anyone presses Go on stage
      notify(notice, tr("mic.insecure", { origin: location.origin }), "error");
    }
    // Live events (events.js): the listener count and who is heard, as they change.
    window.RuangEvents.follow(spaceId, {
      listeners: (n) => { // everyone on the studio sees the count, not only the host
        $("listeners-current").textContent = String(n);
        if ($("listeners-box").hidden) {
          $("listeners-box").hidden = false;
          U.setText($("listeners-text"), U.tr("studio.listening"));
        }
      },
      speaking: (ids) => { speaking = ids; window.RuangEvents.markSpeaking($("stage-list"), ids); },
      stage: () => pollSoon(0),
      reaction: (e) => window.RuangReactions.show(e),
    });
    await poll();
    if (U.queryFlag("autostart") && !stopped) goButton.click();
  }
  init();
})();
