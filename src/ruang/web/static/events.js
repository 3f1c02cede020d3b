// The space's live events (GET /api/spaces/{id}/events, Server-Sent Events): one EventSource
// per page. The server ends each answer after a batch; the browser reconnects by itself with
// the last id it saw (Last-Event-ID), so nothing is missed or repeated. Used by the listener
// page and the studio: RuangEvents.follow(spaceId, { listeners(n), speaking(ids), stage(e),
// state(s), reaction(e), any(e) }) → { stop() }.
(function () {
  "use strict";
  const REFUSED_RETRY_MS = 3000; // after a refusal (404, 503) browsers give up: we try again

  function follow(spaceId, on) {
    const url = "/api/spaces/" + encodeURIComponent(spaceId) + "/events";
    let lastId = null, source = null, timer = 0, stopped = false;

    function deliver(event) {
      if (on.any) on.any(event);
      if (event.type === "listeners" && on.listeners) on.listeners(event.count);
      else if (event.type === "speaking" && on.speaking) on.speaking(event.speakers || []);
      else if (event.type === "state" && on.state) on.state(event.state);
      else if (on[event.type]) on[event.type](event);
    }

    function open() {
      source = new EventSource(lastId === null ? url : url + "?after=" + lastId);
      source.onmessage = (m) => {
        const id = Number(m.lastEventId);
        if (lastId !== null && id <= lastId) return; // never twice, whatever a cache did
        lastId = id;
        let event;
        try { event = JSON.parse(m.data); } catch (err) { return; }
        deliver(event);
        if (event.type === "state" && event.state === "ended") stop();
      };
      source.onerror = () => {
        if (!stopped && source.readyState === EventSource.CLOSED) {
          clearTimeout(timer);
          timer = setTimeout(open, REFUSED_RETRY_MS);
        }
      };
    }

    function stop() {
      stopped = true;
      clearTimeout(timer);
      if (source) source.close();
    }

    open();
    return { stop, lastId: () => lastId };
  }

  // Marks the people of a stage list (items with data-speaker) who are heard now, and names
  // them in the page's #speaking-now live region (only when who is heard changes).
  function markSpeaking(list, ids) {
    const t = window.RuangUI.t;
    const heard = new Set(ids || []);
    const names = [];
    for (const li of list.querySelectorAll("[data-speaker]")) {
      const on = heard.has(li.getAttribute("data-speaker"));
      li.classList.toggle("speaking", on);
      if (on) li.setAttribute("aria-description", t("speaking")); else li.removeAttribute("aria-description");
      const name = li.querySelector(".name");
      if (on && name) names.push(name.textContent);
    }
    const region = document.getElementById("speaking-now");
    const text = names.length ? t("speaking.now", { names: names.join(", ") }) : "";
    if (region && region.textContent !== text) region.textContent = text;
  }

  window.RuangEvents = { follow, markSpeaking };
})();
