"""Live captions with real parts: espeak-ng speech published over WHIP (aiortc) into a live
space, `caption` events read from its event stream, the WebVTT read at captions_url after the
end; and a captioning process that stalls or is killed does not slow the mix."""

from __future__ import annotations

import asyncio
import os
import signal
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import numpy as np
import pytest
from browser import CHROMIUM, chromium_args

from ruang.captions.webvtt import parse
from ruang_bench.tools.whip_client import SignalTrack, WhipPublisher
from ruangtest import RuangServer, free_port
from speech import found, speak
from sse_client import Subscriber

LEAD_S = 1.0  # silence before the sentence
RATE = 48_000


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RuangServer]:
    """A server with the defaults of `ruang serve`: captions on (the test suite's are off)."""
    s = RuangServer(
        tmp_path_factory.mktemp("ruang") / "data", free_port(), env={"RUANG_CAPTIONS": "on"}
    )
    s.start()
    yield s
    s.stop()


async def end(api: httpx.AsyncClient, space: dict) -> None:
    auth = {"Authorization": f"Bearer {space['host_token']}"}
    assert (await api.post(f"/api/spaces/{space['id']}/end", headers=auth)).status_code == 200


def speech_track(pcm: np.ndarray, repeat: bool = False, gap_s: float = 2.0) -> SignalTrack:
    """The sentence after LEAD_S of silence (once, or again and again after gap_s)."""
    audio = pcm.astype(np.float32) / 32768 * 0.9
    lead = int(LEAD_S * RATE)
    period = lead + len(audio) + int(gap_s * RATE)

    def signal_(start: int, n: int) -> np.ndarray:
        out = np.zeros(n, dtype=np.float32)
        for k in range(n):  # 960 samples a frame: cheap enough for a test
            i = (start + k) % period if repeat else start + k
            if lead <= i < lead + len(audio):
                out[k] = audio[i - lead]
        return out

    return SignalTrack(signal_)


def captioner_pids(data_dir: Path) -> list[int]:
    """The captioning processes of this server (their command line names its data folder)."""
    pids = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            cmd = Path(f"/proc/{entry}/cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        if b"ruang.captions.worker" in cmd and any(str(data_dir).encode() in c for c in cmd):
            pids.append(int(entry))
    return pids


async def wait_captions(sub: Subscriber, n: int, timeout: float) -> list[dict]:
    deadline = time.monotonic() + timeout
    while len(sub.of_type("caption")) < n and time.monotonic() < deadline:
        await sub.poll()
    return sub.of_type("caption")


async def test_speech_becomes_caption_events_and_webvtt(
    server: RuangServer, tmp_path, artifacts
) -> None:
    from playwright.async_api import async_playwright

    pcm = speak(tmp_path / "speech.wav", rate=RATE)
    spoken_s = len(pcm) / RATE
    async with httpx.AsyncClient(base_url=server.url, timeout=20) as api:
        space = (await api.post("/api/spaces", json={"title": "Captions"})).json()
        sid = space["id"]
        sub = Subscriber(api, sid)
        await sub.poll()
        track = speech_track(pcm)
        host = WhipPublisher(space["whip_url"], space["host_token"], track, "sendonly")
        await host.start()
        await host.wait_connected()
        captions = await wait_captions(sub, 1, timeout=LEAD_S + spoken_s + 30)
        assert captions, f"no caption event: {sub.events}"
        await asyncio.sleep(3)  # a second utterance, if the gates closed in the sentence
        await sub.poll()
        captions = sub.of_type("caption")
        text = " ".join(c["text"] for c in captions)
        hits = found(text)
        assert len(hits) >= 3, f"key words heard: {hits} in {text!r}"
        print(f"live captions: {len(hits)} of 9 key words: {text!r}")
        # on the space's timeline: the sentence began LEAD_S after the track started
        view = (await api.get(f"/api/spaces/{sid}")).json()
        assert view["captions_url"].endswith(f"/api/spaces/{sid}/captions.vtt")
        began = track.started_at - _unix(view["started_at"]) + LEAD_S
        assert abs(captions[0]["start"] - began) < 2.5, (captions[0], began)
        for c in captions:
            assert c["start"] < c["end"] <= began + spoken_s + 1.5

        await host.stop()
        await end(api, space)  # frees its place under the node's cap on captioned spaces
        deadline = time.monotonic() + 10
        while not (ended := (await api.get(f"/api/spaces/{sid}")).json()).get("ended_at"):
            assert time.monotonic() < deadline, ended  # the metadata is cached for 2 s
            await asyncio.sleep(0.3)
        length = _unix(ended["ended_at"]) - _unix(ended["started_at"])
        deadline = time.monotonic() + 20
        while True:  # the last cue and the end note land just after the end
            r = await api.get(ended["captions_url"])
            assert r.status_code == 200
            if "max-age=86400" in r.headers["cache-control"] or time.monotonic() > deadline:
                break
            await asyncio.sleep(0.5)
        assert r.headers["content-type"].startswith("text/vtt")
        assert r.headers["cache-control"] == "public, max-age=86400"
        assert r.text.startswith("WEBVTT\n")
        cues = parse(r.text)
        assert cues
        ends = [0.0]
        for cue in cues:
            assert ends[-1] <= cue.start < cue.end <= length + 0.5, (cue, length)
            ends.append(cue.end)
        assert len(found(" ".join(c.text for c in cues))) >= 3

    # the replay page: the captions are searchable, and a hit plays from there
    word = found(" ".join(c.text for c in cues))[-1]
    hit = next(c for c in cues if word in c.text.lower().split())
    async with async_playwright() as p:
        browser = await p.chromium.launch(
            executable_path=CHROMIUM, headless=True, args=chromium_args(tmp_path / "none.wav")
        )
        try:
            page = await browser.new_page(viewport={"width": 1280, "height": 900})
            await page.goto(f"{server.url}/s/{sid}/replay")
            await page.wait_for_function("window.ruangReplay?.state === 'ready'")
            await page.wait_for_selector("#captions-card:not([hidden])", timeout=15_000)
            await page.fill("#caption-search", word.upper())  # case does not matter
            hits = page.locator("#caption-list .cue")
            assert 1 <= await hits.count() < len(cues) or len(cues) == 1
            assert all(word in t.lower() for t in await hits.all_text_contents())
            await page.wait_for_function("document.getElementById('player').duration > 1")
            await hits.first.locator("button").click()
            await page.wait_for_function(
                f"Math.abs(document.getElementById('player').currentTime - {hit.start}) < 0.8"
            )
            await page.screenshot(path=str(artifacts / "replay-captions.png"), full_page=True)
        finally:
            await browser.close()


async def test_a_stalled_or_killed_captioner_does_not_slow_the_mix(
    server: RuangServer, tmp_path
) -> None:
    pcm = speak(tmp_path / "speech.wav", rate=RATE)
    async with httpx.AsyncClient(base_url=server.url, timeout=20) as api:
        space = (await api.post("/api/spaces", json={"title": "Stall"})).json()
        sid = space["id"]
        index = server.data_dir / "spaces" / sid / "index.jsonl"
        track = speech_track(pcm, repeat=True, gap_s=0.3)  # the gates never close for long
        host = WhipPublisher(space["whip_url"], space["host_token"], track, "sendonly")
        await host.start()
        await host.wait_connected()
        sub = Subscriber(api, sid)
        assert await wait_captions(sub, 1, timeout=40), "no caption before the stall"
        # one captioning process per media process: stall (then kill) every one of them
        pids = captioner_pids(server.data_dir)
        assert pids and index.exists()

        def parts() -> int:
            return len(index.read_text().splitlines())

        async def parts_in(seconds: float) -> int:
            before = parts()
            await asyncio.sleep(seconds)
            return parts() - before

        for pid in pids:
            os.kill(pid, signal.SIGSTOP)  # stalled: the pipe fills, then the queue drops
        try:
            made = await parts_in(6.0)
            assert made >= 10, f"{made} parts of 0.512 s in 6 s with the captioner stalled"
            # the speech waits in the bounded queue (beyond QUEUE_S, the oldest is dropped:
            # tests/captions/test_feed.py)
            assert await _metric(api, "ruang_captions_backlog_seconds") > 1.0
        finally:
            for pid in pids:
                os.kill(pid, signal.SIGKILL)
        made = await parts_in(6.0)  # dead: the writer drops until it starts another
        assert made >= 10, f"{made} parts in 6 s after the captioner was killed"
        deadline = time.monotonic() + 15
        while not set(captioner_pids(server.data_dir)) - set(pids):
            assert time.monotonic() < deadline, "no new captioning process"
            await asyncio.sleep(0.2)
        seen = len(sub.of_type("caption"))
        assert len(await wait_captions(sub, seen + 1, timeout=40)) > seen, "no caption after"
        await host.stop()
        await end(api, space)


def _unix(iso: str) -> float:
    from datetime import datetime

    return datetime.fromisoformat(iso.replace("Z", "+00:00")).timestamp()


async def _metric(api: httpx.AsyncClient, name: str) -> float:
    text = (await api.get("/metrics")).text
    values = [float(line.split()[-1]) for line in text.splitlines() if line.startswith(name)]
    assert values, f"{name} not in /metrics"
    return sum(values)


async def test_the_listener_page_shows_live_captions(server: RuangServer, tmp_path) -> None:
    from browser import CHROMIUM, chromium_args, write_wav
    from playwright.async_api import async_playwright

    pcm = speak(tmp_path / "speech.wav", rate=RATE)
    wav = tmp_path / "mic.wav"
    write_wav(wav, 1.0)
    async with httpx.AsyncClient(base_url=server.url, timeout=20) as api:
        space = (await api.post("/api/spaces", json={"title": "Page captions"})).json()
        host = WhipPublisher(
            space["whip_url"], space["host_token"], speech_track(pcm, repeat=True), "sendonly"
        )
        async with async_playwright() as p:
            browser = await p.chromium.launch(
                executable_path=CHROMIUM, headless=True, args=chromium_args(wav)
            )
            try:
                page = await browser.new_page(locale="id-ID")
                await page.goto(space["page_url"])
                await host.start()
                await host.wait_connected()
                line = page.locator("#captions-text .caption-line").first
                await line.wait_for(timeout=45_000)
                assert (await line.text_content() or "").strip()
                region = page.locator("#captions-text")
                assert await region.get_attribute("aria-live") == "polite"
                assert await region.get_attribute("aria-label") == "Teks langsung"
                toggle = page.locator("#captions-toggle")
                assert (await toggle.text_content() or "").strip() == "Teks"
                assert await toggle.get_attribute("aria-pressed") == "true"
                await toggle.click()
                assert await toggle.get_attribute("aria-pressed") == "false"
                assert await region.is_hidden()
                await page.reload()  # the choice is kept
                await page.locator("#captions-box").wait_for(timeout=45_000)
                assert await page.locator("#captions-toggle").get_attribute("aria-pressed") == (
                    "false"
                )
            finally:
                await browser.close()
                await host.stop()
                await end(api, space)
