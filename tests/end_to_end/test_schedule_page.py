"""A scheduled space's page, in headless Chromium: its topics, a live countdown, the .ics
reminder (strict iCalendar, the right start and link), a share button that copies the link;
when the host starts, the same page (not reloaded) joins and plays the host's voice.
Screenshots of the page at desktop and phone sizes are saved in the test's folder."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
from browser import CHROMIUM, chromium_args, write_wav

from icalcheck import parse_events
from ruang_bench.page import EAR_SCRIPT
from ruang_bench.tools.tones import sine
from ruang_bench.tools.whip_client import SignalTrack, WhipPublisher

DESKTOP = {"width": 1280, "height": 900}
PHONE = {"width": 390, "height": 844}


async def test_a_waiting_listener_is_moved_into_the_live_space(server, tmp_path: Path) -> None:
    from playwright.async_api import async_playwright

    starts = (datetime.now(UTC) + timedelta(minutes=3)).replace(microsecond=0)
    async with httpx.AsyncClient(base_url=server.url, timeout=20) as api:
        r = await api.post(
            "/api/spaces",
            json={
                "title": "Kopi & jazz: a morning talk",
                "starts_at": starts.isoformat(),
                "tags": ["jazz", "#Kopi"],
            },
        )
        assert r.status_code == 201, r.text
        space = r.json()
        assert space["tags"] == ["jazz", "Kopi"]

        wav = tmp_path / "mic.wav"
        write_wav(wav, 2.0)
        async with async_playwright() as p:
            browser = await p.chromium.launch(
                executable_path=CHROMIUM, headless=True, args=chromium_args(wav)
            )
            try:
                context = await browser.new_context(viewport=DESKTOP)
                await context.grant_permissions(
                    ["clipboard-read", "clipboard-write"], origin=server.url
                )
                page = await context.new_page()
                await page.add_init_script(EAR_SCRIPT)  # window.ruangEar: what the page sounds
                await page.goto(space["page_url"])
                await page.wait_for_function(
                    "window.ruangSchedule && window.ruangSchedule.shown", timeout=15_000
                )
                await page.evaluate("window.loadedOnce = 'this page, not a reload'")

                # the countdown ticks, in words for a screen reader too
                first = await page.text_content("#countdown")
                assert first and re.fullmatch(r"Starts in [23]:\d\d", first), first
                await page.wait_for_function(
                    f"document.getElementById('countdown').textContent !== {first!r}",
                    timeout=5_000,
                )
                spoken = await page.text_content("#countdown-spoken")
                assert spoken == "Starts in 3 minutes.", spoken
                assert await page.get_attribute("#countdown-spoken", "aria-live") == "polite"
                topics = await page.locator("#space-tags li").all_text_contents()
                assert topics == ["jazz", "Kopi"]

                # the reminder
                href = await page.get_attribute("#calendar-link", "href")
                assert href == f"/api/spaces/{space['id']}/calendar.ics"
                ics = await api.get(href)
                assert ics.status_code == 200, ics.text
                assert ics.headers["content-type"].startswith("text/calendar")
                assert "max-age" in ics.headers["cache-control"]
                [event] = parse_events(ics.content)
                assert event["DTSTART"] == starts.strftime("%Y%m%dT%H%M%SZ")
                assert event["URL"] == space["page_url"]

                # share: headless Chromium on Linux has no Web Share, so the link is copied
                share = page.locator("#share-button")
                assert await share.text_content() == "Copy link to this space"
                assert await page.input_value("#share-link") == space["page_url"]
                await share.click()
                await page.wait_for_function(
                    "document.getElementById('share-status').textContent !== ''"
                )
                status = await page.text_content("#share-status")
                assert status == "Link copied.", status
                copied = await page.evaluate("navigator.clipboard.readText()")
                assert copied == space["page_url"]

                await page.screenshot(path=str(tmp_path / "scheduled-desktop.png"), full_page=True)
                await page.set_viewport_size(PHONE)
                await page.screenshot(path=str(tmp_path / "scheduled-phone.png"), full_page=True)
                wide = await page.evaluate(
                    "document.documentElement.scrollWidth <= window.innerWidth"
                )
                assert wide, "the page scrolls sideways on a phone"

                # the host starts early and speaks; the waiting page plays without a reload
                auth = {"Authorization": f"Bearer {space['host_token']}"}
                started = await api.post(f"/api/spaces/{space['id']}/start", headers=auth)
                assert started.status_code == 200 and started.json()["state"] == "live"
                host = WhipPublisher(
                    space["whip_url"],
                    space["host_token"],
                    SignalTrack(lambda s, n: sine(440, n / 48_000, 0.25, s)),
                )
                await host.start()
                try:
                    await host.wait_connected()
                    await page.wait_for_function(
                        "window.ruangListener.state === 'playing'"
                        " && window.ruangListener.currentTime > 1",
                        timeout=25_000,
                    )
                    assert await page.evaluate("window.loadedOnce") == "this page, not a reload"
                    await page.wait_for_function(  # and what it plays is the host's voice
                        "window.ruangEar.onsets.length > 0", timeout=10_000
                    )
                    assert await page.is_hidden("#schedule")
                    assert await page.text_content("#state-badge") == "Live"
                    await page.screenshot(path=str(tmp_path / "live-phone.png"), full_page=True)
                finally:
                    await host.stop()
            finally:
                await browser.close()
    print(f"screenshots in {tmp_path}")


async def test_past_its_start_the_page_says_it_is_starting_soon(server) -> None:
    from playwright.async_api import async_playwright

    starts = datetime.now(UTC) + timedelta(seconds=3)
    async with httpx.AsyncClient(base_url=server.url, timeout=20) as api:
        r = await api.post("/api/spaces", json={"title": "Soon", "starts_at": starts.isoformat()})
        space = r.json()
    async with async_playwright() as p:
        browser = await p.chromium.launch(executable_path=CHROMIUM, headless=True)
        try:
            page = await browser.new_page()
            await page.goto(space["page_url"])
            await page.wait_for_function(
                "window.ruangSchedule && window.ruangSchedule.countdown === 'Starting soon…'",
                timeout=10_000,
            )
            spoken = await page.text_content("#countdown-spoken")
            assert spoken and spoken.startswith("Starting soon."), spoken
            assert await page.is_visible("#calendar-link")
            assert await page.is_hidden("#space-tags")  # no topics, no empty list
        finally:
            await browser.close()
