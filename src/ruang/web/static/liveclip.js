// Ruang: on a live space's listener page, "Clip the last 30 seconds" (issue #10). The clip is
// cut by the server from what is recorded so far (POST /api/spaces/{id}/clips with the
// listener's ticket); the page links to the clip's own page. Shown while the space is live and
// the page holds a ticket (it plays the live audio).
"use strict";

(function () {
  const U = window.RuangUI;
  const { $, h, t, tr, setText } = U;
  const LENGTH_S = 30;
  const box = $("live-clip"), button = $("live-clip-button"), status = $("live-clip-status");
  const spaceId = U.spaceIdFromPath();
  if (!box || !spaceId) return;
  const base = "/api/spaces/" + encodeURIComponent(spaceId);

  function ticket() { return window.RuangListen && window.RuangListen.ticket(); }

  function refresh() { // what the page already knows: no request of its own
    const state = window.RuangListen && window.RuangListen.state();
    box.hidden = !(state === "live" && ticket());
  }

  button.addEventListener("click", async () => {
    button.disabled = true;
    setText(status, tr("clip.cutting"));
    try {
      const tl = (await U.api("GET", base + "/timeline")).data;
      const start = Math.max(0, Math.floor(tl.duration_s - LENGTH_S));
      const length = Math.min(LENGTH_S, Math.max(15, Math.floor(tl.duration_s - start)));
      const made = (await U.api("POST", base + "/clips", {
        token: ticket(), body: { start_s: start, duration_s: length },
      })).data;
      status.replaceChildren(h("a", { href: made.page_url, text: t("clip.open"), id: "live-clip-link" }));
    } catch (err) {
      setText(status, err.message);
    } finally {
      button.disabled = false;
    }
  });
  setInterval(refresh, 1000);
})();
