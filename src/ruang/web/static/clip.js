// Ruang: a clip's page (/s/{space}/clips/{clip}): its player, share (Web Share where the
// browser has it, else copy), the download and the moment in the whole replay.
"use strict";

(function () {
  const U = window.RuangUI;
  const { $, t, tr, setText } = U;
  const m = /^\/s\/([^/]+)\/clips\/([^/]+)/.exec(location.pathname);
  const hook = (window.ruangClip = { state: "loading" }); // for tests
  const canShare = typeof navigator.share === "function";
  let clip = null;

  setText($("share-button"), tr(canShare ? "clip.share" : "clip.copy"));

  function render() {
    document.title = t("clip.title_of", { title: clip.title });
    $("clip-title").textContent = clip.title;
    $("clip-title").removeAttribute("data-i18n");
    setText($("clip-of"), () => t("clip.of", {
      space: clip.space_title, at: U.formatDuration(clip.start_s), length: Math.round(clip.duration_s),
    }));
    $("clip-link").value = clip.page_url;
    $("clip-download").href = clip.file_url;
    $("clip-context").href = clip.replay_at_url;
  }

  $("share-button").addEventListener("click", async () => {
    if (!clip) return;
    if (canShare) {
      try {
        await navigator.share({ title: clip.title, url: clip.page_url });
        setText($("share-status"), tr("clip.shared"));
        return;
      } catch (err) {
        if (err && err.name === "AbortError") return;
      }
    }
    const ok = await U.copyText(clip.page_url);
    setText($("share-status"), tr(ok ? "clip.copied" : "copy_failed"));
  });

  async function start() {
    if (!m) return;
    const path = "/api/spaces/" + m[1] + "/clips/" + m[2];
    try {
      clip = (await U.api("GET", path)).data;
    } catch (err) {
      U.notify($("notice"), err.status === 410 ? tr("replay.gone") : err.message, "error");
      hook.state = "error";
      return;
    }
    render();
    $("clip-audio").src = clip.file_url;
    hook.state = "ready";
  }
  U.onLanguage(() => { if (clip) render(); });
  start();
})();
