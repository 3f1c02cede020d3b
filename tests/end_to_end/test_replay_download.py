"""After the space: with real clients, the replay is whole at any speed, the recording is one
.m4a of the whole space, and the host's deletion takes both away (issue #10, items 1 and 2).

One space serves every assertion (CI time): a host publishes a tone over WHIP for ~20 s on a
server with two delivery workers whose per-ticket pace is lowered to a burst of 4, so that a
replay held to it would be refused after a few segments, as ffmpeg was at segment 61 before.
"""

from __future__ import annotations

import asyncio
import json
import subprocess
import time
from datetime import datetime

import httpx
import m3u8
from listening import ffmpeg_decode
from test_live_space import HOST_HZ, tone

from ruang_bench.tools.tones import tone_levels_db
from ruang_bench.tools.whip_client import WhipPublisher
from ruangtest import ajoin

SPEAK_S = 20.0  # ~10 segments: more than the lowered burst of requests per ticket
BURST = 4  # RUANG_LISTENER_BURST of the server under test
PART_S = 0.512


def _when(stamp: str) -> datetime:
    return datetime.fromisoformat(stamp.replace("Z", "+00:00"))


def _assert_tone(audio, what: str) -> None:
    levels, rest = tone_levels_db(audio[48_000:], [HOST_HZ])
    assert levels[HOST_HZ] - rest >= 20, f"{what}: tone {levels[HOST_HZ] - rest:.1f} dB over rest"


def _ffprobe(url: str) -> dict:
    out = subprocess.run(
        ["ffprobe", "-v", "error", "-show_format", "-of", "json", url],
        capture_output=True,
        check=True,
        timeout=60,
    )
    return json.loads(out.stdout)["format"]


def _gone(r: httpx.Response, what: str) -> None:
    assert r.status_code == 410, f"{what}: {r.status_code} {r.text[:200]}"
    assert r.json()["error"] == "recording_deleted" and r.json()["message"], what


async def test_replay_whole_recording_download_and_deletion(server_factory) -> None:
    srv = server_factory(
        args=("--workers", "2"),
        env={"RUANG_LISTENER_BURST": str(BURST), "RUANG_LISTENER_RATE_PER_S": "1"},
    )
    srv.start(timeout=60.0)
    async with httpx.AsyncClient(base_url=srv.url, timeout=30, follow_redirects=True) as api:
        space = (await api.post("/api/spaces", json={"title": "Kopi pagi"})).json()
        sid, host_auth = space["id"], {"Authorization": f"Bearer {space['host_token']}"}
        r = await api.post(f"/api/spaces/{sid}/speakers", json={"name": "Ana"}, headers=host_auth)
        ana_auth = {"Authorization": f"Bearer {r.json()['token']}"}
        host = WhipPublisher(space["whip_url"], space["host_token"], tone(HOST_HZ))
        await host.start()
        await host.wait_connected()
        began = time.monotonic()

        joined = await ajoin(api, sid)
        # the lowered per-ticket pace is in force on live (ticketed) URLs
        init = joined["listen_url"].replace("live.m3u8", "init.mp4")
        codes = [(await api.get(init)).status_code for _ in range(BURST + 3)]
        assert 429 in codes, codes
        # while live: no recording yet, and none to delete
        r = await api.get(f"/hls/{sid}/recording.m4a")
        assert r.status_code == 409 and r.json()["error"] == "not_ended"
        r = await api.delete(f"/api/spaces/{sid}/recording", headers=host_auth)
        assert r.status_code == 409, r.text
        assert "recording_url" not in (await api.get(f"/api/spaces/{sid}")).json()

        await asyncio.sleep(max(0.0, SPEAK_S - (time.monotonic() - began)))
        await host.stop()
        ended = (await api.post(f"/api/spaces/{sid}/end", headers=host_auth)).json()
        live_s = (_when(ended["ended_at"]) - _when(ended["started_at"])).total_seconds()
        view = (await api.get(f"/api/spaces/{sid}")).json()
        assert "recording_url" in view, view
        replay_url, recording_url = view["replay_url"], view["recording_url"]
        assert recording_url.endswith(f"/hls/{sid}/recording.m4a")

        # 1. the replay: public, immutable, whole for ffmpeg (far more requests than BURST)
        r = await api.get(replay_url)
        assert r.status_code == 200 and r.url.path == f"/hls/{sid}/replay.m3u8"
        assert "immutable" in r.headers["cache-control"]
        replay = m3u8.loads(r.text, uri=replay_url)
        assert replay.is_endlist and len(replay.segments) > BURST + 2
        segment = replay.segments[3].absolute_uri
        assert "/t/" not in segment
        assert "immutable" in (await api.get(segment)).headers["cache-control"]
        stored_s = sum(s.duration for s in replay.segments)
        for url in (replay_url, joined["replay_url"]):  # the ticketed one redirects to it
            audio = await ffmpeg_decode(url)
            assert abs(audio.size / 48_000 - stored_s) < 0.05, (url, audio.size / 48_000)
            assert abs(audio.size / 48_000 - live_s) <= PART_S, (audio.size / 48_000, live_s)
            _assert_tone(audio, f"replay {url}")

        # 2. the recording: one .m4a, the same audio, with its metadata, ranges
        probe = await asyncio.to_thread(_ffprobe, recording_url)
        assert probe["tags"]["title"] == "Kopi pagi"
        assert probe["tags"]["artist"] == "Host, Ana"
        assert probe["tags"]["date"].startswith(ended["started_at"][:10])
        recorded = await ffmpeg_decode(recording_url)
        assert abs(recorded.size / 48_000 - stored_s) < 0.05, recorded.size / 48_000
        _assert_tone(recorded, "recording")
        whole = await api.get(recording_url)
        assert whole.status_code == 200 and whole.headers["content-type"] == "audio/mp4"
        assert (
            whole.headers["accept-ranges"] == "bytes"
            and "max-age" in whole.headers["cache-control"]
        )
        assert int(whole.headers["content-length"]) == len(whole.content)
        part = await api.get(recording_url, headers={"Range": "bytes=100-1099"})
        assert part.status_code == 206 and part.content == whole.content[100:1100]
        assert part.headers["content-range"] == f"bytes 100-1099/{len(whole.content)}"
        r = await api.get(recording_url, headers={"Range": f"bytes={len(whole.content)}-"})
        assert r.status_code == 416 and r.json()["error"] == "range_not_satisfiable"
        head = await api.head(recording_url)
        assert int(head.headers["content-length"]) == len(whole.content) and not head.content

        # 3. deletion: the host only; then everything recorded is gone, on every worker
        assert (await api.delete(f"/api/spaces/{sid}/recording")).status_code == 401
        r = await api.delete(f"/api/spaces/{sid}/recording", headers=ana_auth)
        assert r.status_code == 403, r.text
        r = await api.delete(f"/api/spaces/{sid}/recording", headers=host_auth)
        assert r.status_code == 204, r.text
        assert not (srv.data_dir / "spaces" / sid).exists()
        await asyncio.sleep(0.1)  # the other worker rechecks the store at least every 50 ms
        for _ in range(3):  # new connections: both workers answer
            async with httpx.AsyncClient(base_url=srv.url, timeout=10) as fresh:
                _gone(await fresh.get(replay_url), "replay")
                _gone(await fresh.get(segment), "a segment")
                _gone(await fresh.get(recording_url), "recording")
                _gone(await fresh.get(joined["listen_url"]), "a ticketed live URL")
                _gone(await fresh.post(f"/api/spaces/{sid}/join", json={}), "join")
        view = (await api.get(f"/api/spaces/{sid}")).json()
        assert view["recording_deleted"] is True
        assert "replay_url" not in view and "recording_url" not in view
        r = await api.delete(f"/api/spaces/{sid}/recording", headers=host_auth)
        assert r.status_code == 204  # once deleted, deleting again changes nothing
