"""The host's studio page says, in plain words, when an abandoned space will end by itself."""

from __future__ import annotations

import shutil

import httpx
import pytest

CHROMIUM = shutil.which("chromium")
pytestmark = pytest.mark.skipif(CHROMIUM is None, reason="Debian's chromium is not installed")


async def test_the_studio_says_when_an_empty_space_ends(server) -> None:
    from playwright.async_api import async_playwright

    async with httpx.AsyncClient(base_url=server.url, timeout=20) as api:
        space = (await api.post("/api/spaces", json={"title": "Empty stage"})).json()
    async with async_playwright() as p:
        browser = await p.chromium.launch(
            executable_path=CHROMIUM,
            headless=True,
            args=["--no-sandbox", "--disable-gpu", "--disable-background-networking",
                  "--disable-component-update", "--disable-sync", "--no-first-run"],
        )  # fmt: skip
        try:
            studio = await browser.new_page()
            await studio.goto(space["host_url"])
            await studio.wait_for_function("window.ruangStudio && window.ruangStudio.autoEnd")
            text = await studio.text_content("#auto-end")
            assert await studio.is_visible("#auto-end")
            assert text and text.startswith("Nobody is on stage: this space ends by itself at ")
            assert text.endswith(" unless someone goes on stage."), text
        finally:
            await browser.close()
