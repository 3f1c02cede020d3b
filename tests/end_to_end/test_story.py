"""The whole story of issue #9, "the audience takes part, live", in headless Chromium: several
pages at once in one space, each driven through its own UI.

1. The host creates a scheduled space on the create page (this server wants its create key)
   and opens the studio; listeners A and B wait on the space's page (the countdown); the host
   starts from the studio and both pages move into the live space without a reload.
2. A asks to speak (a display name), the host approves, A goes on stage with a fake
   microphone (660 Hz; the host's is 880 Hz) and ffmpeg hears A's tone in listen_url.
3. The host mutes A: a later ffmpeg decode no longer has A's tone, still the host's.
4. A reaction from B shows on the host's studio and A's page; every page shows ≥ 2 listening.
5. A co-host (invited from the studio, made co-host by the host) blocks A from their own
   studio: A's page says so, and A's session is refused a new ask and a new join (403 blocked).
6. The create page (and any other page with the header's language switcher) switches to
   Bahasa Indonesia: <html lang="id">, and some of its headings, buttons or labels change.

Screenshots of every page at each stage, desktop and phone, are left in the test's artifacts
folder (tests/conftest.py), named <stage>-<page>-<desktop|phone>.png."""

from __future__ import annotations

import asyncio
import re
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import httpx
import pytest
from browser import BROWSER_HZ, CHROMIUM, chromium_args, write_wav
from listening import ffmpeg_decode

from ruang_bench.tools.tones import tone_levels_db
from ruangtest import ajoin

KEY = "a-create-key-for-the-story"
HOST_HZ = BROWSER_HZ  # the host's fake microphone
A_HZ = 660.0  # listener A's, in a browser of its own (the fake-audio file is per launch)
# the visible headings, buttons and labels of a page
WORDS = """() => [...document.querySelectorAll("h1, h2, button, label")]
  .filter((e) => e.offsetParent !== null).map((e) => e.textContent.trim())"""
DESKTOP = {"width": 1280, "height": 800}
PHONE = {"width": 375, "height": 740}
HEARD_DB = 20.0  # a tone this far above the rest of the spectrum is heard
GONE_DB = 8.0  # and one no further above it than this is not


@pytest.fixture
def srv(server_factory):
    s = server_factory(env={"RUANG_CREATE_KEY": KEY})
    s.start()
    return s


async def poll(what: str, check: Callable[[], Awaitable[tuple[bool, Any]]], timeout: float) -> Any:
    """check() -> (done, detail) until done, at most `timeout` seconds; the last detail."""
    deadline = time.monotonic() + timeout
    while True:
        done, detail = await check()
        if done:
            return detail
        assert time.monotonic() < deadline, f"{what}: not within {timeout} s (last: {detail})"
        await asyncio.sleep(0.2)


async def tones_heard(listen_url: str) -> dict[float, float]:
    """What ffmpeg decodes from listen_url now: each tone's level above the rest, dB."""
    heard = await ffmpeg_decode(listen_url, seconds=3, timeout=30)
    levels, rest = tone_levels_db(heard[12_000:], [HOST_HZ, A_HZ])
    return {f: round(db - rest, 1) for f, db in levels.items()}


async def test_the_audience_takes_part_live(srv, tmp_path: Path, artifacts: Path) -> None:
    from playwright.async_api import Page, async_playwright, expect

    host_wav, a_wav = tmp_path / "host.wav", tmp_path / "a.wav"
    write_wav(host_wav, 30.0, HOST_HZ)
    write_wav(a_wav, 30.0, A_HZ)
    pages: dict[str, Page] = {}
    sideways: list[str] = []

    began = time.monotonic()

    async def snap(stage: str) -> None:
        """Every page's screenshots, desktop and phone (the pages side by side), and a note of
        any that scrolls sideways."""
        shot = time.monotonic()

        async def one(name: str, page: Page) -> None:
            for size, viewport in (("desktop", DESKTOP), ("phone", PHONE)):
                await page.set_viewport_size(viewport)
                path = artifacts / f"{stage}-{name}-{size}.png"
                await page.screenshot(path=str(path), full_page=True)
                fits = await page.evaluate(
                    "document.documentElement.scrollWidth <= window.innerWidth"
                )
                if not fits:
                    sideways.append(f"{stage}-{name}-{size}")
            await page.set_viewport_size(DESKTOP)

        await asyncio.gather(*(one(name, page) for name, page in pages.items()))
        now = time.monotonic()
        print(f"{stage}: at {now - began:.1f} s, screenshots {now - shot:.1f} s")

    async def accept(dialog: Any) -> None:
        await dialog.accept()

    async with async_playwright() as p:
        browser = await p.chromium.launch(
            executable_path=CHROMIUM, headless=True, args=chromium_args(host_wav)
        )
        a_browser = await p.chromium.launch(
            executable_path=CHROMIUM, headless=True, args=chromium_args(a_wav)
        )
        try:
            host_ctx = await browser.new_context(viewport=DESKTOP)
            b_ctx = await browser.new_context(viewport=DESKTOP)
            a_ctx = await a_browser.new_context(viewport=DESKTOP)

            # -- 1. the host creates a scheduled space; two listeners wait; the host starts --
            create = pages["create"] = await host_ctx.new_page()
            await create.goto(srv.url + "/")
            await create.fill("#title", "Warung kopi: live")
            starts = await create.evaluate(
                """() => { const d = new Date(Date.now() + 10 * 60 * 1000);
                  const two = (n) => String(n).padStart(2, "0");
                  return d.getFullYear() + "-" + two(d.getMonth() + 1) + "-" + two(d.getDate())
                    + "T" + two(d.getHours()) + ":" + two(d.getMinutes()); }"""
            )
            await create.fill("#starts-at", starts)
            await create.click("#create-button")
            # this server wants its create key: the page asks for it, then creates
            await expect(create.locator("#key-field")).to_be_visible(timeout=10_000)
            await expect(create.locator("#create-error")).to_be_visible()
            await create.fill("#create-key", KEY)
            await create.click("#create-button")
            await expect(create.locator("#result")).to_be_visible(timeout=10_000)
            assert "Scheduled for" in (await create.text_content("#result-when") or "")
            studio_url = await create.get_attribute("#studio-link", "href")
            page_url = await create.input_value("#page-url")
            assert studio_url and "#token=" in studio_url, studio_url
            match = re.search(r"/s/([^/#?]+)$", page_url)
            assert match, page_url
            space_id = match.group(1)
            base = f"/api/spaces/{space_id}"

            host = pages["host-studio"] = await host_ctx.new_page()
            await host.goto(studio_url)
            start = host.locator("#start-button")
            await expect(start).to_be_visible(timeout=10_000)
            await expect(host.locator("#state-badge")).to_have_text("Scheduled")

            a = pages["listener-a"] = await a_ctx.new_page()
            b = pages["listener-b"] = await b_ctx.new_page()
            for page in (a, b):
                await page.goto(page_url)
                await page.wait_for_function(
                    "window.ruangSchedule && window.ruangSchedule.shown", timeout=15_000
                )
                await page.evaluate("window.storyMarker = 'the page first loaded'")
                countdown = await page.text_content("#countdown")
                assert countdown and re.fullmatch(r"Starts in (9|10):\d\d", countdown), countdown
                await expect(page.locator("#state-badge")).to_have_text("Scheduled")
            await snap("1-scheduled")

            await start.click()
            await expect(host.locator("#state-badge")).to_have_text("Live", timeout=10_000)
            for page in (a, b):
                await page.wait_for_function(
                    "window.ruangListener.state === 'playing'"
                    " && window.ruangListener.currentTime > 0.5",
                    timeout=30_000,
                )
                assert await page.evaluate("window.storyMarker") == "the page first loaded"
                assert await page.is_hidden("#schedule")
                await expect(page.locator("#state-badge")).to_have_text("Live")
            # the host goes on stage too, with the 880 Hz microphone
            await host.click("#go-button")
            await host.wait_for_function("window.ruangStudio.state === 'connected'", timeout=20_000)
            await snap("2-live")

            # -- 2. A asks to speak, the host approves, A goes on stage and is heard --------
            await a.click("#request-button")
            await a.fill("#display-name", "Ayu")
            await a.click("#name-form button[type=submit]")
            await a.wait_for_function("window.RuangTakePart.state === 'pending'", timeout=10_000)
            request = host.locator("#request-list li", has_text="Ayu")
            await request.locator("button[data-verdict=approve]").click(timeout=15_000)
            go = a.locator("#take-stage")
            await expect(go).to_be_visible(timeout=10_000)
            await go.click()
            await a.wait_for_function("window.RuangTakePart.state === 'on_stage'", timeout=20_000)
            ayu = host.locator("#stage-list li", has_text="Ayu")
            await expect(ayu.locator("button[data-action=mute]")).to_be_visible(timeout=10_000)
            await expect(a.locator("#stage-list li", has_text="Ayu")).to_be_visible(timeout=15_000)

            async with httpx.AsyncClient(base_url=srv.url, timeout=20) as api:
                listen_url = (await ajoin(api, space_id))["listen_url"]

            async def both_heard() -> tuple[bool, dict[float, float]]:
                t = await tones_heard(listen_url)
                return t[A_HZ] >= HEARD_DB and t[HOST_HZ] >= HEARD_DB, t

            on_stage = await poll("A's and the host's tones in ffmpeg's decode", both_heard, 40)
            await snap("3-a-on-stage")

            # -- 3. the host mutes A: only the host is heard --------------------------------
            await ayu.locator("button[data-action=mute]").click()
            await expect(ayu.locator(".tag-muted")).to_be_visible(timeout=10_000)
            await expect(ayu.locator("button[data-action=mute]")).to_have_count(0)
            await expect(
                a.locator("#stage-list li", has_text="Ayu").locator(".tag-muted")
            ).to_be_visible(timeout=15_000)

            async def only_host() -> tuple[bool, dict[float, float]]:
                t = await tones_heard(listen_url)
                return t[A_HZ] <= GONE_DB and t[HOST_HZ] >= HEARD_DB, t

            muted = await poll("the host's tone without A's after the mute", only_host, 40)
            print(f"dB above the rest, A on stage: {on_stage}; A muted: {muted}")
            await snap("4-a-muted")

            # -- 4. a reaction from B reaches the host and A; everyone sees the count ------
            clap = b.locator('#reaction-buttons button[data-kind="👏"]')
            await expect(clap).to_be_enabled(timeout=10_000)
            await clap.click()
            for page in (host, a):
                await expect(page.locator('#reaction-strip [data-kind="👏"]')).to_be_visible(
                    timeout=15_000
                )
                assert await page.evaluate("window.RuangReactions.seen['👏']") >= 1
            assert await a.evaluate("window.RuangReactions.seen['🔥'] || 0") == 0

            # the studio's count and the listener pages' "N listening", from the events
            await expect(host.locator("#listeners-box")).to_be_visible()
            await host.wait_for_function(
                "Number(document.getElementById('listeners-current').textContent) >= 2",
                timeout=20_000,
            )
            for page in (a, b):
                await page.wait_for_function(
                    "(/^(\\d+) listening$/.exec(document.getElementById('listener-count')"
                    ".textContent) || [0, 0])[1] >= 2",
                    timeout=20_000,
                )
                await expect(page.locator("#listener-count")).to_be_visible()
            await snap("5-reaction")

            # -- 5. a co-host blocks A; A cannot come back ----------------------------------
            await host.fill("#invite-name", "Budi")
            await host.click("#invite-button")
            await expect(host.locator("#invite-result")).to_be_visible(timeout=10_000)
            invite_url = await host.input_value("#invite-url")
            cohost_ctx = await browser.new_context(viewport=DESKTOP)
            cohost = pages["cohost-studio"] = await cohost_ctx.new_page()
            cohost.on("dialog", accept)
            host.on("dialog", accept)
            await cohost.goto(invite_url)
            budi = host.locator("#stage-list li", has_text="Budi")
            await budi.locator("button[data-action=cohost]").click(timeout=15_000)
            await expect(budi.locator(".tag", has_text="co-host")).to_be_visible(timeout=10_000)
            block = cohost.locator("#stage-list li", has_text="Ayu").locator(
                "button[data-action=block]"
            )
            # the co-host (any stage member) sees the count too, not only the host
            await cohost.wait_for_function(
                "Number(document.getElementById('listeners-current').textContent) >= 2",
                timeout=20_000,
            )
            await expect(cohost.locator("#listeners-box")).to_be_visible()
            await block.click(timeout=15_000)  # after the co-host's studio sees its new role
            await a.wait_for_function("window.RuangTakePart.state === 'blocked'", timeout=15_000)
            assert "blocked" in (await a.text_content("#take-part-status") or "")
            assert await a.is_hidden("#request-button") and await a.is_hidden("#take-stage")
            for page in (host, cohost, a):
                await expect(page.locator("#stage-list li", has_text="Ayu")).to_have_count(
                    0, timeout=15_000
                )
            again = """async (path) => {
                const r = await fetch(path, { method: "POST", credentials: "same-origin",
                  headers: { "Content-Type": "application/json" }, body: "{}" });
                return [r.status, await r.json()];
            }"""
            for path in (f"{base}/requests", f"{base}/join"):
                status, body = await a.evaluate(again, path)
                assert (status, body["error"]) == (403, "blocked"), (path, status, body)
            # B, never blocked, is still let in
            status, body = await b.evaluate(again, f"{base}/join")
            assert status == 200 and "listen_url" in body, (status, body)
            await snap("6-a-blocked")

            # -- 6. Bahasa Indonesia, on every page ---------------------------------------------
            switched = 0
            for name, page in pages.items():
                if not await page.locator("#lang-select").count():
                    continue
                assert await page.get_attribute("html", "lang") == "en", name
                before = await page.evaluate(WORDS)
                await page.select_option("#lang-select", "id")
                await expect(page.locator("html")).to_have_attribute("lang", "id")
                after = await page.evaluate(WORDS)
                assert before != after, (name, before)  # some of its words changed
                switched += 1
            assert switched == len(pages)  # every page has the switcher
            await snap("7-bahasa")
        finally:
            await a_browser.close()
            await browser.close()
    assert not sideways, f"pages that scroll sideways: {sideways}"
    print(f"screenshots in {artifacts}")
