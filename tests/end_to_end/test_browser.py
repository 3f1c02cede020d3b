"""A real browser on stage and in the audience: headless Chromium publishes its (fake) microphone
from the studio page over WHIP, another page plays the listener page, and the tone the browser
sent is in what the ffmpeg binary decodes from listen_url."""

from __future__ import annotations

import asyncio
from pathlib import Path

import httpx
from browser import BROWSER_HZ, CHROMIUM, chromium_args, watch_csp, write_wav
from listening import ffmpeg_decode

from ruang_bench.tools.tones import tone_levels_db
from ruangtest import ajoin


async def test_browser_speaker_reaches_listeners(server, tmp_path: Path) -> None:
    from playwright.async_api import async_playwright

    wav = tmp_path / "mic.wav"
    write_wav(wav)
    async with httpx.AsyncClient(base_url=server.url, timeout=20, follow_redirects=True) as api:
        space = (await api.post("/api/spaces", json={"title": "Browser"})).json()
    host_url = space["host_url"].replace("#", "?autostart=1#")
    async with async_playwright() as p:
        browser = await p.chromium.launch(
            executable_path=CHROMIUM,
            headless=True,
            args=chromium_args(wav),
        )
        try:
            csp: list[str] = []  # the pages work under their Content-Security-Policy
            studio = await browser.new_page()
            watch_csp(studio, csp)
            await studio.goto(host_url)
            await studio.wait_for_function(
                "() => window.ruangStudio"
                " && ['connected', 'failed'].includes(window.ruangStudio.state)",
                timeout=20_000,
            )
            state = await studio.evaluate("window.ruangStudio")
            assert state["state"] == "connected", state

            listener = await browser.new_page()
            watch_csp(listener, csp)
            await listener.goto(space["page_url"] + "?autoplay=1")
            await listener.wait_for_function(
                "() => window.ruangListener && window.ruangListener.state === 'playing'"
                " && window.ruangListener.currentTime > 2",
                timeout=30_000,
            )
            title = await listener.text_content("h1")
            assert title and "Browser" in title

            async with httpx.AsyncClient(base_url=server.url, timeout=20) as c:
                joined = await ajoin(c, space["id"])
            heard = await ffmpeg_decode(joined["listen_url"], seconds=6)
            levels, rest = tone_levels_db(heard, [BROWSER_HZ])
            assert levels[BROWSER_HZ] - rest >= 20, (levels, rest)
            played = await listener.evaluate("window.ruangListener.currentTime")
            await asyncio.sleep(1.0)
            assert await listener.evaluate("window.ruangListener.currentTime") > played
            assert not csp, csp
        finally:
            await browser.close()
