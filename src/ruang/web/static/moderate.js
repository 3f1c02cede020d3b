// Ruang: the host's and co-hosts' controls in the studio (issue #9): requests to speak with
// approve/deny, and for each person on stage mute / move to audience / remove / block, plus
// "make co-host" and "hand over host" for the host, "mute everyone" and the host's own name.
// The server enforces every rule (ruang/spaces/permissions.py); this only offers what fits.
// Exposes window.RuangModerate = { personActions, onAction, render }.
"use strict";

(function () {
  const U = window.RuangUI;
  const { h, api, t } = U;
  const enc = encodeURIComponent;
  let ctx = null, lastRequests = "";

  function myRole(space) { return (space && space.you && space.you.role) || null; }
  function moderating(space) { return ["host", "cohost"].includes(myRole(space)); }

  // Each action's words, and the question asked before the ones that cannot be undone.
  const LABEL = {
    mute: "mod.mute", audience: "mod.audience", remove: "mod.remove", block: "mod.block",
    cohost: "mod.cohost", speaker: "mod.speaker", handover: "mod.handover",
  };
  const CONFIRM = { remove: "mod.confirm.remove", block: "mod.confirm.block", handover: "mod.confirm.handover" };

  // A button for one action on p.
  function button(action, p, extra) {
    const name = p.name || t("mod.this_speaker"), text = t(LABEL[action]);
    return h("button", Object.assign({ type: "button", className: "btn btn-small", text,
      "data-action": action, "data-id": p.id, "data-name": name, "data-key": action + ":" + p.id,
      "aria-label": t("mod.label", { action: text, name }) }, extra || {}));
  }

  // The buttons beside one person on stage, or null when the viewer may do nothing to them.
  function personActions(p, space) {
    const me = myRole(space);
    if (!moderating(space) || p.role === "host" || (me === "cohost" && p.role === "cohost")) return null;
    const out = [];
    if (!p.muted) out.push(button("mute", p)); // nobody can unmute someone else
    out.push(button("audience", p), button("remove", p, { className: "btn btn-small btn-danger" }),
      button("block", p, { className: "btn btn-small btn-danger" }));
    if (me === "host" && p.role === "speaker") out.push(button("cohost", p));
    if (me === "host" && p.role === "cohost") out.push(button("speaker", p), button("handover", p));
    return h("span", { className: "actions" }, out);
  }


  // A click on one of those buttons: the request, through the studio's hostAction.
  function onAction(b, hostAction) {
    const action = b.getAttribute("data-action"), name = b.getAttribute("data-name");
    const sid = "/speakers/" + enc(b.getAttribute("data-id"));
    if (CONFIRM[action] && !window.confirm(t(CONFIRM[action], { name }))) return;
    const calls = {
      mute: ["POST", sid + "/mute", { muted: true }],
      audience: ["POST", sid + "/audience"],
      remove: ["DELETE", sid],
      block: ["POST", sid + "/block"],
      cohost: ["POST", sid + "/role", { role: "cohost" }],
      speaker: ["POST", sid + "/role", { role: "speaker" }],
      handover: ["POST", "/host", { speaker: b.getAttribute("data-id") }],
    }[action];
    if (calls) hostAction(b, calls[0], calls[1], calls[2]);
  }

  // The panel: requests to speak, mute everyone, and the viewer's own name.
  const panel = document.getElementById("moderation");
  const list = h("ul", { className: "people", id: "request-list" });
  // Fixed words are marked data-i18n: i18n.js redoes them on a change of language.
  const words = (el, key) => { el.setAttribute("data-i18n", key); el.textContent = t(key); return el; };
  const empty = words(h("p", { className: "muted", id: "requests-empty" }), "mod.empty");
  const muteAll = words(h("button", { type: "button", className: "btn", id: "mute-all" }), "mod.mute_all");
  const nameInput = h("input", { id: "my-name", type: "text", maxLength: 60, autocomplete: "nickname" });
  const nameForm = h("form", { className: "row", id: "my-name-form" }, [
    words(h("label", { htmlFor: "my-name" }), "mod.my_name"), nameInput,
    words(h("button", { type: "submit", className: "btn btn-small" }), "mod.save_name"),
  ]);
  if (panel) {
    panel.append(words(h("h2", { id: "requests-heading" }), "mod.requests"), list, empty,
      h("div", { className: "row" }, [muteAll]), nameForm);
  }

  function requestItem(r) {
    return h("li", {}, [
      h("span", { className: "avatar", text: U.initials(r.name), "aria-hidden": "true" }),
      h("span", { className: "name", text: r.name }),
      h("span", { className: "actions" }, [
        h("button", { type: "button", className: "btn btn-small btn-primary", text: t("mod.approve"),
          "data-request": r.id, "data-verdict": "approve", "aria-label": t("mod.approve_label", { name: r.name }) }),
        h("button", { type: "button", className: "btn btn-small", text: t("mod.deny"),
          "data-request": r.id, "data-verdict": "deny", "aria-label": t("mod.deny_label", { name: r.name }) }),
      ]),
    ]);
  }

  async function loadRequests() {
    try {
      const { data } = await api("GET", ctx.base + "/requests", { token: ctx.token });
      const requests = (data && data.requests) || [];
      const key = JSON.stringify([requests.map((r) => r.id), window.RuangI18n.lang]);
      if (key !== lastRequests) {
        lastRequests = key;
        list.replaceChildren(...requests.map(requestItem));
      }
      empty.hidden = requests.length > 0;
    } catch (err) { /* the next poll tries again */ }
  }

  // Called by the studio after every poll of the space.
  function render(space, context) {
    ctx = context;
    if (!panel) return;
    const mod = moderating(space) && space.state !== "ended";
    panel.hidden = !(space.you && space.state !== "ended");
    list.hidden = empty.hidden = muteAll.hidden = !mod;
    panel.querySelector("#requests-heading").hidden = !mod;
    if (document.activeElement !== nameInput && space.you) nameInput.value = space.you.name || "";
    if (mod) loadRequests();
  }

  if (panel) {
    list.addEventListener("click", async (e) => {
      const b = e.target.closest("button[data-request]");
      if (!b || !ctx) return;
      b.disabled = true;
      try {
        await api("POST", ctx.base + "/requests/" + enc(b.getAttribute("data-request")) + "/" + b.getAttribute("data-verdict"), { token: ctx.token });
      } catch (err) { window.alert(err.message); }
      lastRequests = "";
      loadRequests();
      ctx.refresh();
    });
    muteAll.addEventListener("click", (e) => ctx && ctx.hostAction(e.currentTarget, "POST", "/mute-all"));
    nameForm.addEventListener("submit", (e) => {
      e.preventDefault();
      const name = nameInput.value.trim();
      if (name && ctx) ctx.hostAction(nameForm.querySelector("button"), "PATCH", "/me", { name });
      nameInput.blur();
    });
  }

  window.RuangModerate = { personActions, onAction, render };
})();
