"""A failure stays small: real `ruang serve` with two media processes and real clients (aiortc
speakers, the ffmpeg binary as a listener); one media process or one delivery worker is
killed with SIGKILL and only its own work is lost."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import sqlite3
import time
from pathlib import Path

import httpx
import m3u8
from browser import BROWSER_HZ, CHROMIUM, chromium_args, write_wav
from listening import ffmpeg_decode

from ruang_bench.tools.tones import sine, tone_levels_db
from ruang_bench.tools.whip_client import SignalTrack, WhipPublisher
from ruangtest import ajoin

A_HZ, B_HZ = 440.0, 660.0
WINDOW_S = 0.5  # B's audio is checked for its tone in every window this long
BACK_ON_AIR_S = 2.0  # the contract: a killed media process's spaces are back this fast


def tone(freq: float) -> SignalTrack:
    return SignalTrack(lambda start, n: sine(freq, n / 48_000, 0.25, start))


def media_of(data_dir: Path, space_id: str) -> int:
    """Which media process the store says runs the space."""
    with sqlite3.connect(data_dir / "ruang.sqlite3") as db:
        return int(db.execute("SELECT media FROM spaces WHERE id=?", (space_id,)).fetchone()[0])


def child_pid(data_dir: Path, kind: str, index: int) -> int:
    """A child's pid, as the supervisor records it."""
    status = json.loads((data_dir / "supervisor.json").read_text())
    return int(status["children"][kind][str(index)])


async def new_run_part(api: httpx.AsyncClient, listen_url: str, deadline: float) -> float | None:
    """When (time.time()) the live playlist first lists a part after a discontinuity (read
    from the text: m3u8 does not show the tags of a segment still growing)."""
    while time.time() < deadline:
        text = (await api.get(listen_url)).text
        cut = text.find("#EXT-X-DISCONTINUITY")
        if cut >= 0 and "#EXT-X-PART:" in text[cut:]:
            return time.time()
        await asyncio.sleep(0.05)
    return None


async def test_killing_one_media_process_stops_only_its_spaces(server_factory) -> None:
    srv = server_factory(args=("--media-processes", "2"))
    srv.start()
    async with httpx.AsyncClient(base_url=srv.url, timeout=20, follow_redirects=True) as api:
        a = (await api.post("/api/spaces", json={"title": "Killed"})).json()
        b = (await api.post("/api/spaces", json={"title": "Untouched"})).json()
        media_a, media_b = media_of(srv.data_dir, a["id"]), media_of(srv.data_dir, b["id"])
        assert media_a != media_b, "two spaces on an idle node go to two media processes"

        speakers = [
            WhipPublisher(a["whip_url"], a["host_token"], tone(A_HZ)),
            WhipPublisher(b["whip_url"], b["host_token"], tone(B_HZ)),
        ]
        for s in speakers:
            await s.start()
            await s.wait_connected()
        b_listen = (await ajoin(api, b["id"]))["listen_url"]
        a_listen = (await ajoin(api, a["id"]))["listen_url"]
        await asyncio.sleep(2.0)  # B's listener starts on a space with the tone in it

        listening = asyncio.create_task(ffmpeg_decode(b_listen, seconds=10.0, timeout=40))
        await asyncio.sleep(3.0)
        killed_at = time.time()
        os.kill(child_pid(srv.data_dir, "media", media_a), signal.SIGKILL)
        back_at = await new_run_part(api, a_listen, killed_at + 10.0)
        audio = await listening

        assert back_at is not None, "the killed process's space never came back"
        assert back_at - killed_at <= BACK_ON_AIR_S, f"back after {back_at - killed_at:.2f} s"

        # B's listener heard B's tone in every half second, through the crash next door
        assert audio.size >= 9.5 * 48_000, f"ffmpeg got only {audio.size / 48_000:.1f} s of B"
        window = int(WINDOW_S * 48_000)
        for i in range(window, audio.size - window, window):  # after the decoder's start
            levels, rest = tone_levels_db(audio[i : i + window], [B_HZ])
            assert levels[B_HZ] - rest >= 20.0, f"B's tone missing at {i / 48_000:.1f} s"
        b_playlist = m3u8.loads((await api.get(b_listen)).text)
        assert not any(seg.discontinuity for seg in b_playlist.segments)

        status = json.loads((srv.data_dir / "supervisor.json").read_text())
        assert status["restarts"]["media"] == 1
        metrics = (await api.get("/metrics")).text
        assert 'ruang_process_restarts_total{kind="media"} 1.0' in metrics
        assert 'ruang_media_up{media="0"} 1.0' in metrics
        assert 'ruang_media_up{media="1"} 1.0' in metrics

        for s in speakers:
            await s.stop()
        # A's replay is whole: the seconds before the crash, a discontinuity, the rest
        auth = {"Authorization": f"Bearer {a['host_token']}"}
        assert (await api.post(f"/api/spaces/{a['id']}/end", headers=auth)).status_code == 200
        replay = m3u8.loads((await api.get(a["replay_url"])).text)
        assert replay.is_endlist and any(seg.discontinuity for seg in replay.segments)
        started = time.mktime(time.strptime(a["started_at"][:19], "%Y-%m-%dT%H:%M:%S"))
        started -= time.timezone  # started_at is UTC
        before_crash = killed_at - started
        kept = sum(seg.duration for seg in replay.segments)
        assert kept >= before_crash - 0.512 - 0.3, (kept, before_crash)


def test_a_dead_delivery_worker_costs_a_listener_one_retry(server_factory) -> None:
    srv = server_factory(args=("--workers", "2", "--media-processes", "1"))
    srv.start()
    with httpx.Client(base_url=srv.url, timeout=10, follow_redirects=True) as api:
        space = api.post("/api/spaces", json={"title": "Workers"}).json()
        listen = api.post(f"/api/spaces/{space['id']}/join", json={}).json()["listen_url"]
        victim = child_pid(srv.data_dir, "worker", 0)
        failures, retried_ok, answered = 0, 0, 0
        deadline = time.monotonic() + 6.0
        killed = False
        fresh = httpx.Limits(max_keepalive_connections=0)  # a new connection per request
        with httpx.Client(timeout=3, limits=fresh) as player:
            while time.monotonic() < deadline:
                if not killed and answered >= 20:
                    os.kill(victim, signal.SIGKILL)
                    killed = True
                try:
                    assert player.get(listen).status_code == 200
                    answered += 1
                except httpx.HTTPError:
                    failures += 1
                    assert player.get(listen).status_code == 200  # the one retry it makes
                    retried_ok += 1
                time.sleep(0.08)  # within one ticket's budget, which the node's workers share
        assert killed and answered > 40
        assert failures == retried_ok  # every failure was one request, healed by its retry
        for _ in range(50):  # the supervisor restarts the worker
            status = json.loads((srv.data_dir / "supervisor.json").read_text())
            if status["restarts"]["worker"] == 1:
                break
            time.sleep(0.1)
        assert status["restarts"]["worker"] == 1
        assert child_pid(srv.data_dir, "worker", 0) != victim


def test_sigterm_drains_and_the_space_resumes(server_factory) -> None:
    srv = server_factory(args=("--media-processes", "2"))
    srv.start()
    with httpx.Client(base_url=srv.url, timeout=10, follow_redirects=True) as api:
        space = api.post("/api/spaces", json={"title": "Restarted"}).json()
        time.sleep(2.0)
        assert srv.proc is not None
        srv.proc.send_signal(signal.SIGTERM)
        assert srv.proc.wait(timeout=15) == 0
        assert not list(srv.data_dir.glob("media-*.sock")), "sockets left behind"
        # every media process drained (its clocks stopped, its parts flushed) before it exited
        assert srv.log().count("stopped: every space's parts flushed") == 2, srv.log()[-3000:]
        index = srv.data_dir / "spaces" / space["id"] / "index.jsonl"
        flushed = index.read_text().count("\n")
        assert flushed >= 3  # every part made before the stop is on disk
        srv.start()
        assert api.get(f"/api/spaces/{space['id']}").json()["state"] == "live"
        time.sleep(1.5)
        assert index.read_text().count("\n") > flushed  # it goes on after the restart


async def test_the_studio_page_goes_back_on_stage_by_itself(server_factory, tmp_path) -> None:
    """The host's studio in headless Chromium: its media process is killed; the page notices,
    goes on stage again by itself, and its microphone is heard in the space again."""
    from playwright.async_api import async_playwright

    srv = server_factory(args=("--media-processes", "1"))
    srv.start()
    wav = tmp_path / "mic.wav"
    write_wav(wav, seconds=60.0)
    async with httpx.AsyncClient(base_url=srv.url, timeout=20, follow_redirects=True) as api:
        space = (await api.post("/api/spaces", json={"title": "Reconnect"})).json()
        auth = {"Authorization": f"Bearer {space['host_token']}"}
        async with async_playwright() as p:
            browser = await p.chromium.launch(
                executable_path=CHROMIUM, headless=True, args=chromium_args(wav)
            )
            try:
                studio = await browser.new_page()
                await studio.goto(space["host_url"].replace("#", "?autostart=1#"))
                connected = "window.ruangStudio && window.ruangStudio.state === 'connected'"
                await studio.wait_for_function(connected, timeout=20_000)
                listen = (await ajoin(api, space["id"]))["listen_url"]
                heard = await ffmpeg_decode(listen, seconds=6)  # from before it went on stage
                levels, rest = tone_levels_db(heard[-2 * 48_000 :], [BROWSER_HZ])
                assert levels[BROWSER_HZ] - rest >= 20, ("before", levels, rest)
                os.kill(child_pid(srv.data_dir, "media", 0), signal.SIGKILL)
                await studio.wait_for_function(
                    "window.ruangStudio.state !== 'connected'", timeout=20_000
                )
                await studio.wait_for_function(connected, timeout=30_000)
                for _ in range(50):  # the server has the host on stage again
                    view = (await api.get(f"/api/spaces/{space['id']}", headers=auth)).json()
                    if view.get("you", {}).get("on_stage"):
                        break
                    await asyncio.sleep(0.2)
                assert view["you"]["on_stage"], view
                # ffmpeg starts a few segments back, in the silence of the gap: its last
                # seconds are what the page sends now
                heard = await ffmpeg_decode(listen, seconds=9)
                levels, rest = tone_levels_db(heard[-3 * 48_000 :], [BROWSER_HZ])
                assert levels[BROWSER_HZ] - rest >= 20, ("after", levels, rest)
            finally:
                await browser.close()
