// Ruang: microphone, level meter and a small WHIP (RFC 9725) client. Exposes window.RuangWhip.
"use strict";

(function () {
  const U = window.RuangUI;
  const { t } = U;

  function micErrorMessage(err) {
    const name = err && err.name;
    if (name === "NotAllowedError" || name === "SecurityError") return t("mic.refused");
    if (name === "NotFoundError" || name === "OverconstrainedError") return t("mic.none");
    if (name === "NotReadableError") return t("mic.busy");
    return err && err.message ? t("mic.failed_why", { why: err.message }) : t("mic.failed");
  }

  async function getMic() {
    if (!window.isSecureContext) {
      // browsers hide navigator.mediaDevices on http:// pages other than localhost
      throw new Error(t("mic.insecure", { origin: location.origin }));
    }
    if (!navigator.mediaDevices || !window.RTCPeerConnection) {
      throw new Error(t("mic.unsupported"));
    }
    try {
      return await navigator.mediaDevices.getUserMedia({
        audio: { echoCancellation: true, noiseSuppression: true, autoGainControl: true },
      });
    } catch (err) {
      throw new Error(micErrorMessage(err));
    }
  }

  // Drive fillEl's scaleX from the stream's loudness (-60..0 dBFS). Returns stop().
  function startMeter(stream, fillEl) {
    const Ctx = window.AudioContext || window.webkitAudioContext;
    if (!Ctx) return () => {};
    const ctx = new Ctx();
    const analyser = ctx.createAnalyser();
    analyser.fftSize = 1024;
    ctx.createMediaStreamSource(stream).connect(analyser);
    const buf = new Float32Array(analyser.fftSize);
    let raf = 0, level = 0;
    const tick = () => {
      analyser.getFloatTimeDomainData(buf);
      let sum = 0;
      for (const v of buf) sum += v * v;
      const db = 20 * Math.log10(Math.sqrt(sum / buf.length) || 1e-8);
      // Rise at once, fall slowly: calmer to watch.
      level = Math.max(Math.min(1, Math.max(0, (db + 60) / 60)), level * 0.9);
      fillEl.style.transform = "scaleX(" + level.toFixed(3) + ")";
      raf = requestAnimationFrame(tick);
    };
    tick();
    if (ctx.state === "suspended") ctx.resume().catch(() => {});
    return () => {
      cancelAnimationFrame(raf);
      ctx.close().catch(() => {});
      fillEl.style.transform = "scaleX(0)";
    };
  }

  // Resolve when ICE gathering is complete (non-trickle WHIP), or after ms.
  function waitForIce(pc, ms) {
    if (pc.iceGatheringState === "complete") return Promise.resolve();
    return new Promise((resolve) => {
      const done = () => {
        clearTimeout(timer);
        pc.removeEventListener("icegatheringstatechange", check);
        pc.removeEventListener("icecandidate", onCandidate);
        resolve();
      };
      const check = () => { if (pc.iceGatheringState === "complete") done(); };
      const onCandidate = (e) => { if (!e.candidate) done(); };
      const timer = setTimeout(done, ms);
      pc.addEventListener("icegatheringstatechange", check);
      pc.addEventListener("icecandidate", onCandidate);
    });
  }

  // Offer our track (sendrecv: we hear the others back) and send it by WHIP.
  // Resolves to the absolute resource URL from Location (or null). The caller
  // owns pc and closes it on failure. Throws Error / RuangUI.ApiError.
  async function publish(pc, track, stream, whipUrl, token) {
    pc.addTransceiver(track, { direction: "sendrecv", streams: [stream] });
    await pc.setLocalDescription(await pc.createOffer());
    await waitForIce(pc, 2000);
    let res;
    try {
      res = await fetch(whipUrl, {
        method: "POST", cache: "no-store", referrerPolicy: "no-referrer",
        headers: { "Content-Type": "application/sdp", Authorization: "Bearer " + token },
        body: pc.localDescription.sdp,
      });
    } catch (e) {
      throw new Error(t("err.network"));
    }
    if (!res.ok) throw U.errorFrom(res, await U.readJson(res));
    const answer = await res.text();
    const loc = res.headers.get("Location");
    const resourceUrl = loc ? new URL(loc, res.url || location.href).href : null;
    if (pc.signalingState === "closed") {
      if (resourceUrl) unpublish(resourceUrl, token); // cancelled meanwhile
      throw new Error(t("cancelled"));
    }
    await pc.setRemoteDescription({ type: "answer", sdp: answer });
    return resourceUrl;
  }

  // WHIP session teardown: DELETE the resource. keepalive lets it finish on page close.
  function unpublish(resourceUrl, token) {
    return fetch(resourceUrl, {
      method: "DELETE", keepalive: true, cache: "no-store", referrerPolicy: "no-referrer",
      headers: { Authorization: "Bearer " + token },
    }).catch(() => {});
  }

  window.RuangWhip = { getMic, startMeter, waitForIce, publish, unpublish };
})();
