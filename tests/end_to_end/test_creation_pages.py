"""The pages around creation, in headless Chromium: the create form asks for the server's
create key when it has one, and the host's studio says in plain words when an abandoned space
will end by itself."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from browser import CHROMIUM

KEY = "the-newsroom-create-key"


@pytest.fixture
async def browser() -> AsyncIterator[Any]:
    from playwright.async_api import async_playwright

    async with async_playwright() as p:
        b = await p.chromium.launch(
            executable_path=CHROMIUM,
            headless=True,
            args=["--no-sandbox", "--disable-gpu", "--disable-background-networking",
                  "--disable-component-update", "--disable-sync", "--no-first-run"],
        )  # fmt: skip
        try:
            yield b
        finally:
            await b.close()


async def test_the_studio_says_when_an_empty_space_ends(server, browser) -> None:
    async with httpx.AsyncClient(base_url=server.url, timeout=20) as api:
        space = (await api.post("/api/spaces", json={"title": "Empty stage"})).json()
    studio = await browser.new_page()
    await studio.goto(space["host_url"])
    await studio.wait_for_function("window.ruangStudio && window.ruangStudio.autoEnd")
    text = await studio.text_content("#auto-end")
    assert await studio.is_visible("#auto-end")
    assert text and text.startswith("Nobody is on stage: this space ends by itself at ")
    assert text.endswith(" unless someone goes on stage."), text


async def test_the_create_form_asks_for_the_key(server_factory, browser) -> None:
    srv = server_factory(env={"RUANG_CREATE_KEY": KEY})
    srv.start()
    page = await browser.new_page()
    await page.goto(srv.url + "/")
    assert not await page.is_visible("#create-key")
    await page.fill("#title", "Newsroom briefing")
    await page.click("#create-button")
    await page.wait_for_selector("#create-key", state="visible")
    assert "create key" in (await page.text_content("#create-error") or "")
    await page.fill("#create-key", "a guess")
    await page.click("#create-button")
    await page.wait_for_function(
        "document.getElementById('create-error').textContent.includes('not the server')"
    )
    assert await page.is_hidden("#result")
    await page.fill("#create-key", KEY)
    await page.click("#create-button")
    await page.wait_for_selector("#result", state="visible")
    assert await page.text_content("#result-title") == "Newsroom briefing"
