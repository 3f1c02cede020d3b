"""The replay page with real clients (issue #10): two speakers take turns (aiortc, tones that
start and stop), listeners react, the host ends; the timeline places each turn where the
replay has it, and in headless Chromium the replay page lists the speakers, jumps to a turn
when it is clicked and to a moment given as #t=…"""

from __future__ import annotations

import asyncio
import time

import httpx
import numpy as np
from browser import CHROMIUM, chromium_args

from ruang.tools.tones import sine
from ruang.tools.whip_client import SignalTrack, WhipPublisher
from ruangtest import ajoin

SPEAK_S = 4.0  # each speaker talks this long, then the other does


def turns(offset_s: float) -> SignalTrack:
    """A tone for SPEAK_S seconds, silence for SPEAK_S, again: `offset_s` shifts the pattern."""

    def signal(start: int, n: int) -> np.ndarray:
        t = (start + np.arange(n)) / 48_000 + offset_s
        on = (t // SPEAK_S) % 2 == 0
        return np.where(on, sine(500.0 + 200 * offset_s, n / 48_000, 0.3, start), 0.0)

    return SignalTrack(signal)


async def test_the_replay_shows_who_spoke_when_and_jumps_there(server, tmp_path, artifacts) -> None:
    from playwright.async_api import async_playwright

    async with httpx.AsyncClient(base_url=server.url, timeout=20, follow_redirects=True) as api:
        space = (await api.post("/api/spaces", json={"title": "Turns " + "long " * 30})).json()
        sid, host_token = space["id"], space["host_token"]
        auth = {"Authorization": f"Bearer {host_token}"}
        r = await api.post(f"/api/spaces/{sid}/speakers", json={"name": "Bima"}, headers=auth)
        guest = r.json()
        host = WhipPublisher(space["whip_url"], host_token, turns(0.0))
        other = WhipPublisher(guest["whip_url"], guest["token"], turns(SPEAK_S))
        await asyncio.gather(host.start(), other.start())
        await asyncio.gather(host.wait_connected(), other.wait_connected())
        ticket = (await ajoin(api, sid))["listen_url"].split("/t/", 1)[1].split("/", 1)[0]
        await asyncio.sleep(6)
        for kind in ("👏", "🔥"):
            r = await api.post(
                f"/api/spaces/{sid}/reactions",
                json={"kind": kind},
                headers={"Authorization": f"Bearer {ticket}"},
            )
            assert r.status_code == 202, r.text
        await asyncio.sleep(14)
        await asyncio.gather(host.stop(), other.stop())
        assert (await api.post(f"/api/spaces/{sid}/end", headers=auth)).status_code == 200
        view = (await api.get(f"/api/spaces/{sid}", headers=auth)).json()
        host_id = view["you"]["id"]
        guest_id = next(s["id"] for s in view["speakers"] if s["name"] == "Bima")

        deadline = time.monotonic() + 10
        while True:  # the last batch of the journal is written within a second of the end
            tl = (await api.get(f"/api/spaces/{sid}/timeline")).json()
            if tl["state"] == "ended" and tl["reactions"]["bins"] or time.monotonic() > deadline:
                break
            await asyncio.sleep(0.5)
        assert 18 < tl["duration_s"] < 40, tl
        mine = [t for t in tl["turns"] if t["speaker"] == host_id]
        theirs = [t for t in tl["turns"] if t["speaker"] == guest_id]
        assert len(mine) >= 2 and len(theirs) >= 2, tl["turns"]
        for turn in mine[:-1] + theirs[:-1]:  # about SPEAK_S each (the last may be cut short)
            assert SPEAK_S - 1.5 < turn["end_s"] - turn["start_s"] < SPEAK_S + 1.5, turn
        # they alternate: the guest's turns start about when the host's end
        starts = sorted((t["start_s"], t["speaker"]) for t in tl["turns"])
        assert all(a[1] != b[1] for a, b in zip(starts, starts[1:], strict=False)), starts
        assert sum(b["total"] for b in tl["reactions"]["bins"]) == 2
        assert {s["name"] for s in tl["speakers"]} >= {"Bima"}
        r = await api.get(f"/api/spaces/{sid}/timeline")
        assert "max-age=3600" in r.headers["cache-control"]  # ended: fixed, cacheable

    jump_to = theirs[1]["start_s"]
    async with async_playwright() as p:
        browser = await p.chromium.launch(
            executable_path=CHROMIUM, headless=True, args=chromium_args(tmp_path / "none.wav")
        )
        try:
            page = await browser.new_page(viewport={"width": 1280, "height": 900})
            await page.goto(f"{server.url}/s/{sid}/replay#t=5")
            await page.wait_for_function("window.ruangReplay?.state === 'ready'")
            await page.wait_for_function("document.getElementById('player').duration > 15")
            await page.wait_for_function(
                "Math.abs(document.getElementById('player').currentTime - 5) < 0.6"
            )
            names = await page.locator("#speaker-list .name").all_text_contents()
            assert "Bima" in names
            turn_buttons = page.locator(".timeline-turn")
            assert await turn_buttons.count() == len(tl["turns"])
            label = f"Bima, {int(jump_to // 60)}:{int(jump_to % 60):02d}"
            await page.locator(f".timeline-turn[aria-label^='{label}']").first.click()
            await page.wait_for_function(
                f"Math.abs(document.getElementById('player').currentTime - {jump_to}) < 0.8"
            )
            assert await page.locator(".reaction-bar").count() >= 1
            await page.screenshot(path=str(artifacts / "replay-desktop.png"), full_page=True)
            await page.set_viewport_size({"width": 375, "height": 740})
            width = await page.evaluate("document.scrollingElement.scrollWidth")
            assert width <= 375, f"the replay page scrolls sideways on a phone ({width} px)"
            await page.screenshot(path=str(artifacts / "replay-phone.png"), full_page=True)
        finally:
            await browser.close()
