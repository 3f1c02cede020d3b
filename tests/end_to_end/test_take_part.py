"""Taking part with real clients (issue #9): a second tab of someone on stage is recognised
(409) rather than knocking the first off stage, unless it asks to take over; and in headless
Chromium a listener asks to speak, the host approves, and the listener is heard."""

from __future__ import annotations

import asyncio
from datetime import datetime, timedelta
from pathlib import Path

import httpx
import numpy as np
import pytest
from browser import BROWSER_HZ, CHROMIUM, chromium_args, watch_csp, write_wav
from listening import decode_mp4, ffmpeg_decode, parts_with_times

from ruang_bench.tools.tones import sine, tone_levels_db
from ruang_bench.tools.whip_client import SignalTrack, WhipPublisher
from ruangtest import ajoin

KEY = "a-create-key-for-the-take-part-tests"


@pytest.fixture
def srv(server_factory):
    s = server_factory(env={"RUANG_CREATE_KEY": KEY})
    s.start()
    return s


def tone() -> SignalTrack:
    return SignalTrack(lambda start, n: sine(550.0, n / 48_000, 0.25, start))


async def test_a_second_tab_is_recognised(srv) -> None:
    async with httpx.AsyncClient(base_url=srv.url, timeout=20) as api:
        r = await api.post(
            "/api/spaces", json={"title": "Tabs"}, headers={"Authorization": f"Bearer {KEY}"}
        )
        space = r.json()
        first = WhipPublisher(space["whip_url"], space["host_token"], tone())
        await first.start()
        await first.wait_connected()
        second = WhipPublisher(space["whip_url"], space["host_token"], tone())
        with pytest.raises(RuntimeError) as refusal:
            await second.start()
        assert "409" in str(refusal.value) and "on_stage_elsewhere" in str(refusal.value)
        assert "another tab" in str(refusal.value)
        await asyncio.sleep(1.0)
        view = (await api.get(f"/api/spaces/{space['id']}")).json()
        assert [m["role"] for m in view["stage"]] == ["host"]  # the first is still on stage
        assert first._pc.connectionState == "connected"
        # asked explicitly, a new tab takes over: the first is hung up
        third = WhipPublisher(space["whip_url"] + "?take_over=1", space["host_token"], tone())
        await third.start()
        await third.wait_connected()
        for _ in range(50):
            if first._pc.connectionState in ("closed", "failed", "disconnected"):
                break
            await asyncio.sleep(0.2)
        view = (await api.get(f"/api/spaces/{space['id']}")).json()
        assert [m["role"] for m in view["stage"]] == ["host"]
        assert await third.stop() == 200
        await first.stop()


async def test_a_listener_asks_is_approved_and_is_heard(srv, tmp_path: Path) -> None:
    """Headless Chromium: the listener page asks to speak (a display name once), the host's
    studio approves, the listener goes on stage with the (fake) microphone, and its tone is in
    what ffmpeg decodes from listen_url."""
    from playwright.async_api import async_playwright

    wav = tmp_path / "mic.wav"
    write_wav(wav)
    async with httpx.AsyncClient(base_url=srv.url, timeout=20) as api:
        r = await api.post(
            "/api/spaces", json={"title": "Take part"}, headers={"Authorization": f"Bearer {KEY}"}
        )
        space = r.json()
    async with async_playwright() as p:
        browser = await p.chromium.launch(
            executable_path=CHROMIUM, headless=True, args=chromium_args(wav)
        )
        try:
            csp: list[str] = []  # the pages work under their Content-Security-Policy
            host = await (await browser.new_context()).new_page()
            watch_csp(host, csp)
            await host.goto(space["host_url"])
            listener = await (await browser.new_context()).new_page()
            watch_csp(listener, csp)
            await listener.goto(space["page_url"])
            await listener.click("#request-button")
            await listener.fill("#display-name", "Wulan")
            await listener.click("#name-form button[type=submit]")
            await listener.wait_for_function(
                "() => window.RuangTakePart.state === 'pending'", timeout=10_000
            )
            approve = host.locator("#request-list button[data-verdict=approve]")
            await approve.wait_for(timeout=10_000)
            assert "Wulan" in (await host.text_content("#request-list") or "")
            await approve.click()
            go = listener.locator("#take-stage")
            await go.wait_for(state="visible", timeout=10_000)
            await go.click()
            await listener.wait_for_function(
                "() => window.RuangTakePart.state === 'on_stage'", timeout=20_000
            )
            # the host's studio shows them on stage, with the moderators' buttons
            block = host.locator("#stage-list button[data-action=block]")
            await block.wait_for(timeout=10_000)
            assert "Wulan" in (await host.text_content("#stage-list") or "")
            await asyncio.sleep(4.0)  # what ffmpeg starts with (a few parts back) has them
            async with httpx.AsyncClient(base_url=srv.url, timeout=20) as c:
                joined = await ajoin(c, space["id"])
            heard = await ffmpeg_decode(joined["listen_url"], seconds=6)
            levels, rest = tone_levels_db(heard[48_000:], [BROWSER_HZ])
            assert levels[BROWSER_HZ] - rest >= 20, (levels, rest)

            # the host mutes them from the studio: no longer heard, and only they can unmute
            muted_at = datetime.now().astimezone()
            await host.click("#stage-list button[data-action=mute]")
            await host.locator("#stage-list .tag-muted").wait_for(timeout=10_000)
            await asyncio.sleep(3.5)
            async with httpx.AsyncClient(base_url=srv.url, timeout=20) as c:
                listen_url = (await ajoin(c, space["id"]))["listen_url"]
                parts = await parts_with_times(c, listen_url)
                after = [u for t, u in parts if t >= muted_at + timedelta(seconds=1)]
                assert after, parts
                init = (await c.get(listen_url.replace("live.m3u8", "init.mp4"))).content
                body = b"".join([(await c.get(u)).content for u in after[:2]])
            quiet = decode_mp4(init + body)
            assert float(np.sqrt(np.mean(quiet**2))) < 1e-3, "still heard after the mute"
            assert await host.locator("#stage-list button[data-action=mute]").count() == 0
            assert not csp, csp
        finally:
            await browser.close()
