"""The replay page and clips with real clients (issue #10): two speakers take turns (aiortc,
tones that start and stop), listeners react, the host ends; the timeline places each turn
where the replay has it; a person cuts clips (whose sound is the replay's at that moment)
within their budget; in headless Chromium the replay page lists the speakers, jumps to a turn
when it is clicked and to a moment given as #t=…, cuts a clip whose page plays it; and when
the host deletes the recording, the timeline and the clips are gone (410)."""

from __future__ import annotations

import asyncio
import time

import feedparser
import httpx
import numpy as np
from browser import CHROMIUM, chromium_args
from listening import ffmpeg_decode

from ruang_bench.tools.tones import sine
from ruang_bench.tools.whip_client import SignalTrack, WhipPublisher
from ruangtest import ajoin

SPEAK_S = 4.0  # each speaker talks this long, then the other does


def strongest_hz(pcm: np.ndarray, t: float) -> float:
    """The strongest frequency in 0.4 s of 48 kHz audio from t."""
    piece = pcm[int(t * 48_000) : int((t + 0.4) * 48_000)]
    spectrum = np.abs(np.fft.rfft(piece * np.hanning(piece.size)))
    return float(np.fft.rfftfreq(piece.size, 1 / 48_000)[np.argmax(spectrum)])


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
        # a listener clips the live space (its ticket is who they are)
        r = await api.post(
            f"/api/spaces/{sid}/clips",
            json={"start_s": 2, "duration_s": 15},
            headers={"Authorization": f"Bearer {ticket}"},
        )
        assert r.status_code == 201, r.text
        live_clip = r.json()
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

        # -- the podcast feed: the ended space is an episode, its enclosure the recording ---
        deadline = time.monotonic() + 20
        while True:  # the recording is made at the end, in the background
            feed = feedparser.parse((await api.get("/podcast.xml")).content)
            if feed.entries or time.monotonic() > deadline:
                break
            await asyncio.sleep(0.5)
        assert not feed.bozo and feed.version == "rss20", feed.get("bozo_exception")
        assert [e.id for e in feed.entries] == [sid]
        episode = feed.entries[0]
        assert episode.title.startswith("Turns") and episode.link.endswith(f"/s/{sid}/replay")
        enclosure = episode.enclosures[0]
        assert enclosure.type == "audio/mp4" and enclosure.href == view["recording_url"]
        download = await api.get(enclosure.href)
        assert download.status_code == 200 and len(download.content) == int(enclosure.length)
        assert "Bima" in episode.summary
        assert (await api.get("/podcast.xml?tag=nothing")).status_code == 200
        assert not feedparser.parse((await api.get("/podcast.xml?tag=nothing")).content).entries

        # -- clips: a person, within a budget, and the replay's sound at that moment ---------
        clips_url = f"/api/spaces/{sid}/clips"
        r = await api.post(clips_url, json={"start_s": 1, "duration_s": 15})
        assert (r.status_code, r.json()["error"]) == (401, "identity_required")
        r = await api.post("/api/session", json={"name": "Citra"})
        assert r.status_code == 201, r.text
        for bad, code in (
            ({"start_s": 1, "duration_s": 5}, "invalid_field"),
            ({"start_s": "soon", "duration_s": 15}, "invalid_field"),
            ({"start_s": tl["duration_s"] - 3, "duration_s": 15}, "outside_recording"),
        ):
            r = await api.post(clips_url, json=bad)
            assert (r.status_code, r.json()["error"]) == (422, code), (bad, r.text)
        r = await api.post(clips_url, json={"start_s": 2.0, "duration_s": 15, "title": "Ayo"})
        assert r.status_code == 201, r.text
        clip = r.json()
        assert {"id", "page_url", "file_url"} <= set(clip) and clip["title"] == "Ayo"
        got = await ffmpeg_decode(clip["file_url"])
        assert abs(got.size / 48_000 - 15.0) < 0.1
        whole = await ffmpeg_decode(view["recording_url"])
        for t in np.arange(0.5, 14.0, 0.5):  # whoever speaks in the clip speaks in the replay
            here, there = strongest_hz(got, t), strongest_hz(whole, clip["start_s"] + t)
            assert abs(here - there) < 10, (t, here, there)
        r = await api.get(clip["page_url"])
        assert r.status_code == 200 and "clip.js" in r.text
        ranged = await api.get(clip["file_url"], headers={"Range": "bytes=0-99"})
        assert ranged.status_code == 206 and len(ranged.content) == 100
        for _ in range(4):  # five clips per person in ten minutes; the sixth waits
            r = await api.post(clips_url, json={"start_s": 3, "duration_s": 15})
            assert r.status_code == 201, r.text
        r = await api.post(clips_url, json={"start_s": 3, "duration_s": 15})
        assert r.status_code == 429 and int(r.headers["retry-after"]) > 0, r.text

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
            labels = [await b.get_attribute("aria-label") for b in await turn_buttons.all()]
            assert any(x and x.startswith(label) for x in labels), (label, labels, tl["turns"])
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
            # a clip from where the player is, by someone who names themselves once
            await page.set_viewport_size({"width": 1280, "height": 900})
            await page.fill("#clip-title-input", "The best part")
            await page.fill("#clip-length", "20")
            await page.click("#clip-button")
            await page.wait_for_selector("#clip-name-field:not([hidden])")
            await page.fill("#clip-name", "Dewi")
            await page.click("#clip-button")
            await page.wait_for_selector("#clip-result:not([hidden])", timeout=20_000)
            made = await page.evaluate("window.ruangReplay.clip")
            assert made["title"] == "The best part" and 19.9 < made["duration_s"] < 20.1
            async with page.expect_download() as downloading:  # the replay page's download
                await page.click("#download")
            saved = tmp_path / "recording.m4a"
            await (await downloading.value).save_as(saved)
            assert saved.stat().st_size > 10_000
            await page.click("#clip-result-link")
            await page.wait_for_function("window.ruangClip?.state === 'ready'")
            assert await page.text_content("#clip-title") == "The best part"
            await page.wait_for_function(
                "Math.abs(document.getElementById('clip-audio').duration - 20) < 0.2"
            )
            await page.screenshot(path=str(artifacts / "clip-desktop.png"), full_page=True)
            async with page.expect_download() as downloading:  # the clip's own .m4a
                await page.click("#clip-download")
            clip_file = tmp_path / "clip.m4a"
            await (await downloading.value).save_as(clip_file)
            decoded = await ffmpeg_decode(str(clip_file))
            assert abs(decoded.size / 48_000 - 20.0) < 0.1
            await page.set_viewport_size({"width": 375, "height": 740})
            await page.screenshot(path=str(artifacts / "clip-phone.png"), full_page=True)
            assert await page.evaluate("document.scrollingElement.scrollWidth") <= 375
        finally:
            await browser.close()

    # -- the host deletes the recording from the studio: everything recorded goes with it --
    async with async_playwright() as p:
        browser = await p.chromium.launch(
            executable_path=CHROMIUM, headless=True, args=chromium_args(tmp_path / "none.wav")
        )
        try:
            studio = await browser.new_page(viewport={"width": 1280, "height": 900})
            studio.on("dialog", lambda d: asyncio.ensure_future(d.accept()))
            await studio.goto(space["host_url"])
            await studio.wait_for_selector("#after-panel:not([hidden])", timeout=15_000)
            href = await studio.get_attribute("#recording-link", "href")
            assert href == view["recording_url"]
            await studio.screenshot(path=str(artifacts / "studio-ended.png"), full_page=True)
            await studio.click("#delete-recording")
            await studio.wait_for_selector("#after-panel[hidden]", state="attached")
            assert "deleted" in (await studio.text_content("#notice") or "")
        finally:
            await browser.close()
    async with httpx.AsyncClient(base_url=server.url, timeout=20) as api:
        r = await api.delete(f"/api/spaces/{sid}/recording", headers=auth)
        assert r.status_code == 204, r.text  # again: harmless
        urls = (clip["file_url"], made["file_url"], live_clip["file_url"], live_clip["page_url"])
        everything = (view["replay_url"], view["recording_url"], f"/api/spaces/{sid}/captions.vtt")
        for url in (f"/api/spaces/{sid}/timeline", *urls[:3], *everything):
            r = await api.get(url)
            assert (r.status_code, r.json()["error"]) == (410, "recording_deleted"), url
        assert not feedparser.parse((await api.get("/podcast.xml")).content).entries
        r = await api.get(f"/api/spaces/{sid}/clips/{clip['id']}")
        assert r.status_code == 410
