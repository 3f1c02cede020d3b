// Ruang: taking part from the listener page (issue #9). Asks for a display name once (a
// signed, HttpOnly session cookie: no account), requests to speak, shows the pending state,
// and once approved goes on stage with the microphone through the same WHIP path as speakers.
// Mounts itself into #take-part; exposes window.RuangTakePart = { state, refresh }.
"use strict";

(function () {
  const U = window.RuangUI, W = window.RuangWhip;
  const { h, api, t, tr, setText } = U;
  const box = document.getElementById("take-part");
  const spaceId = U.spaceIdFromPath();
  if (!box || !spaceId) return;
  const base = "/api/spaces/" + encodeURIComponent(spaceId);
  const hook = (window.RuangTakePart = { state: "idle", error: null, refresh: () => poll() });
  let me = null, pc = null, stream = null, resourceUrl = null, timer = 0, elsewhere = false;

  // Elements whose words come from the language files (data-i18n: i18n.js redoes them on a
  // change of language).
  const words = (el, key) => { el.setAttribute("data-i18n", key); el.textContent = t(key); return el; };
  const status = h("p", { className: "muted", id: "take-part-status", role: "status", "aria-live": "polite" });
  const nameForm = h("form", { className: "row", id: "name-form", hidden: true }, [
    words(h("label", { htmlFor: "display-name" }), "take.name"),
    h("input", { id: "display-name", type: "text", maxLength: 60, autocomplete: "nickname", required: true }),
    words(h("button", { type: "submit", className: "btn btn-primary" }), "take.continue"),
  ]);
  const ask = words(h("button", { type: "button", className: "btn", id: "request-button" }), "take.request");
  const cancel = words(h("button", { type: "button", className: "btn", id: "cancel-request", hidden: true }), "take.cancel");
  const go = h("button", { type: "button", className: "btn btn-primary", id: "take-stage", hidden: true });
  const mute = h("button", { type: "button", className: "btn", id: "take-mute", hidden: true });
  const leave = words(h("button", { type: "button", className: "btn", id: "take-leave", hidden: true }), "stage.leave");
  const audio = h("audio", { id: "take-part-audio", autoplay: true });
  box.append(words(h("h2", { id: "take-part-heading" }), "take.heading"), status, nameForm,
    h("div", { className: "row" }, [ask, cancel, go, mute, leave]), audio);

  // text: a key of the language files, or a server's message as it is.
  function say(text, state, isMessage) {
    setText(status, text && !isMessage ? tr(text) : text);
    if (state) hook.state = state;
  }

  function renderMute() {
    mute.textContent = t(me && me.you && me.you.muted ? "stage.unmute" : "stage.mute");
  }

  function show() {
    const role = me && me.role;
    const req = me && me.request;
    const onStage = hook.state === "on_stage" || hook.state === "connecting";
    const approved = !!(me && me.token);
    const pending = req && req.state === "pending";
    ask.hidden = onStage || approved || pending || (me && me.blocked) || role !== "listener" && role !== "anonymous";
    cancel.hidden = !pending;
    go.hidden = !approved || onStage;
    go.textContent = t(elsewhere ? "stage.take_over" : "stage.go");
    renderMute();
    mute.hidden = hook.state !== "on_stage";
    leave.hidden = !onStage;
    if (me && me.blocked) say("take.blocked", "blocked");
    else if (onStage) return;
    else if (approved) say(elsewhere ? "stage.elsewhere" : "take.invited", "approved");
    else if (pending) say("take.pending", "pending");
    else if (req && req.state === "denied") say("take.denied", "denied");
    else if (hook.state !== "naming") say("", "idle");
  }

  async function poll() {
    clearTimeout(timer);
    try {
      me = (await api("GET", base + "/me")).data;
    } catch (err) {
      hook.error = err.message;
    }
    show();
    if (me && me.role !== "anonymous") timer = setTimeout(poll, 2000);
  }

  async function requestToSpeak() {
    try {
      await api("POST", base + "/requests", { body: {} });
      await poll();
    } catch (err) {
      if (err.code === "session_required") {
        hook.state = "naming";
        nameForm.hidden = false;
        document.getElementById("display-name").focus();
        say("take.choose_name");
        return;
      }
      say(err.message, null, true);
    }
  }

  nameForm.addEventListener("submit", async (e) => {
    e.preventDefault();
    const name = document.getElementById("display-name").value.trim();
    if (!name) return;
    try {
      await api("POST", "/api/session", { body: { name } });
      nameForm.hidden = true;
      hook.state = "idle";
      await requestToSpeak();
    } catch (err) {
      say(err.message, null, true);
    }
  });

  async function goOnStage() {
    const takeOver = elsewhere;
    say("take.connecting", "connecting");
    show();
    try {
      stream = await W.getMic();
      const conn = (pc = new RTCPeerConnection({ iceServers: [] }));
      conn.addEventListener("track", (e) => {
        audio.srcObject = e.streams && e.streams[0] ? e.streams[0] : new MediaStream([e.track]);
        audio.play().catch(() => {});
      });
      conn.addEventListener("connectionstatechange", () => {
        if (conn !== pc) return;
        if (conn.connectionState === "connected") { elsewhere = false; say("take.live", "on_stage"); show(); }
        if (conn.connectionState === "failed") { teardown(); say("take.lost", "idle"); show(); }
      });
      resourceUrl = await W.publish(conn, stream.getAudioTracks()[0], stream,
        me.whip_url + (takeOver ? "?take_over=1" : ""), me.token);
    } catch (err) {
      teardown();
      elsewhere = err.code === "on_stage_elsewhere";
      hook.state = "approved";
      show();
      if (!elsewhere) say(err.message || t("stage.could_not"), null, true);
    }
  }

  function teardown() {
    if (resourceUrl && me && me.token) W.unpublish(resourceUrl, me.token);
    resourceUrl = null;
    if (pc) pc.close();
    pc = null;
    if (stream) stream.getTracks().forEach((t) => t.stop());
    stream = null;
  }

  ask.addEventListener("click", requestToSpeak);
  cancel.addEventListener("click", async () => {
    try { await api("DELETE", base + "/requests/mine", { body: {} }); } catch (err) { say(err.message, null, true); }
    poll();
  });
  go.addEventListener("click", goOnStage);
  leave.addEventListener("click", () => { teardown(); hook.state = "approved"; poll(); });
  mute.addEventListener("click", async () => {
    // the server mutes: a muted speaker's packets are dropped undecoded
    const muted = !(me && me.you && me.you.muted);
    try {
      const r = await api("POST", base + "/speakers/" + encodeURIComponent(me.you.id) + "/mute", { token: me.token, body: { muted } });
      me.you = r.data;
      renderMute();
    } catch (err) { say(err.message, null, true); }
  });
  U.onLanguage(show);
  window.addEventListener("pagehide", teardown);
  poll();
})();
