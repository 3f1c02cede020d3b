// Ruang: reactions (issue #9). On the listener page, buttons send one of the six reactions
// with the listener's ticket (POST /api/spaces/{id}/reactions, 202); on every page that
// follows the space's events, what the audience sent shows for a few seconds. Mounts itself
// into #reactions (data-send="1" for the buttons); the page's events call show(event).
// Exposes window.RuangReactions = { show, seen } (seen: totals per kind, for tests).
"use strict";

(function () {
  const U = window.RuangUI;
  const { h, api, t } = U;
  const KINDS = ["👏", "❤️", "😂", "🔥", "🙌", "😮"];
  const SHOW_MS = 10000; // how long a reaction stays on show
  const box = document.getElementById("reactions");
  const spaceId = U.spaceIdFromPath();
  const seen = {};
  const recent = []; // [when (ms), kind, count]
  window.RuangReactions = { show, seen };
  if (!box || !spaceId) return;

  const strip = h("p", { className: "reaction-strip", id: "reaction-strip" });
  const status = h("p", { className: "small muted", id: "reaction-status", "aria-live": "polite" });
  const send = box.getAttribute("data-send") === "1";
  const buttons = send ? KINDS.map((k) => h("button", { type: "button", className: "btn btn-small reaction-button",
    text: k, "data-kind": k, "aria-label": t("react.send", { kind: k }) })) : [];
  const heading = h("h2", { id: "reactions-heading", className: "visually-hidden" });
  U.setText(heading, U.tr("react.heading"));
  box.append(heading, strip,
    ...(send ? [h("div", { className: "row", id: "reaction-buttons" }, buttons), status] : []));

  function render() {
    const now = Date.now();
    while (recent.length && now - recent[0][0] > SHOW_MS) recent.shift();
    const counts = {};
    for (const [, k, n] of recent) counts[k] = (counts[k] || 0) + n;
    const kinds = KINDS.filter((k) => counts[k]);
    strip.replaceChildren(...kinds.map((k) => h("span", { className: "reaction", "data-kind": k,
      text: k + (counts[k] > 1 ? " ×" + counts[k] : "") })));
    strip.hidden = kinds.length === 0;
    box.hidden = !send && kinds.length === 0;
    const ticket = window.RuangListen && window.RuangListen.ticket();
    for (const b of buttons) b.disabled = !ticket;
    const hint = t("react.play_first");
    if (send && !ticket && !status.textContent) U.setText(status, U.tr("react.play_first"));
    if (send && ticket && status.textContent === hint) U.setText(status, "");
  }

  // A `reaction` event: counts per kind over the last second, from the whole audience.
  function show(event) {
    const counts = (event && event.counts) || {};
    for (const [k, n] of Object.entries(counts)) {
      if (!KINDS.includes(k) || !(n > 0)) continue;
      seen[k] = (seen[k] || 0) + n;
      recent.push([Date.now(), k, n]);
    }
    render();
  }

  for (const b of buttons) {
    b.addEventListener("click", async () => {
      const ticket = window.RuangListen && window.RuangListen.ticket();
      if (!ticket) return;
      try {
        await api("POST", "/api/spaces/" + encodeURIComponent(spaceId) + "/reactions",
          { token: ticket, body: { kind: b.getAttribute("data-kind") } });
        U.setText(status, "");
      } catch (err) {
        U.setText(status, err.status === 429 ? U.tr("react.too_many") : err.message);
      }
    });
  }
  U.onLanguage(() => { for (const b of buttons) b.setAttribute("aria-label", t("react.send", { kind: b.getAttribute("data-kind") })); });
  setInterval(render, 1000);
  render();
})();
