"""Opened over plain http from a name other than localhost (as from another machine on the
LAN), the studio is not a secure context: the browser hides the microphone, and the studio
says why (and that https is the way) before anyone presses Go on stage."""

from __future__ import annotations

from pathlib import Path

import httpx
from browser import CHROMIUM, chromium_args, write_wav


async def test_the_studio_names_the_missing_secure_context(server, tmp_path: Path) -> None:
    from playwright.async_api import async_playwright

    wav = tmp_path / "mic.wav"
    write_wav(wav, seconds=2)
    async with httpx.AsyncClient(base_url=server.url, timeout=20) as api:
        space = (await api.post("/api/spaces", json={"title": "Not secure"})).json()
    lan = f"http://ruang.test:{server.port}"  # resolves to 127.0.0.1, but is no localhost
    host_url = space["host_url"].replace(server.url, lan)
    async with async_playwright() as p:
        browser = await p.chromium.launch(
            executable_path=CHROMIUM,
            headless=True,
            args=[*chromium_args(wav), "--host-resolver-rules=MAP ruang.test 127.0.0.1"],
        )
        try:
            page = await browser.new_page()
            await page.goto(host_url)
            assert await page.evaluate("window.isSecureContext") is False
            notice = page.get_by_text("Browsers share a microphone only with secure pages")
            await notice.wait_for(timeout=10_000)
            assert lan in (await notice.text_content() or "")
        finally:
            await browser.close()
