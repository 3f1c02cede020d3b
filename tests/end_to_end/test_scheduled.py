"""A scheduled space is on air with silence before it starts (page, metadata and playlist
warm), early listeners wait in line, and the replay begins at the start, not before."""

from __future__ import annotations

import asyncio
from datetime import datetime

import httpx
import m3u8
from listening import ffmpeg_decode

from ruang_bench.tools.tones import sine
from ruang_bench.tools.whip_client import SignalTrack, WhipPublisher
from ruangtest import ajoin


async def test_scheduled_space_warms_up_then_replays_from_its_start(server) -> None:
    async with httpx.AsyncClient(base_url=server.url, timeout=20, follow_redirects=True) as api:
        r = await api.post(
            "/api/spaces", json={"title": "Later", "starts_at": "2030-01-01T10:00:00Z"}
        )
        space = r.json()
        assert space["state"] == "scheduled"
        assert (await api.get(f"/s/{space['id']}")).status_code == 200
        assert (await api.get(f"/api/spaces/{space['id']}")).json()["state"] == "scheduled"
        bare = f"/hls/{space['id']}/live.m3u8"
        r = await api.get(bare)  # held until a whole segment of silence exists
        assert r.status_code == 200 and "#EXT-X-PART:" in r.text, r.text
        first_part = m3u8.loads(r.text).segments[0].parts[0].uri
        r = await api.get(f"/hls/{space['id']}/{first_part}")
        assert r.status_code == 200 and r.content[4:8] == b"moof"

        early = await api.post(f"/api/spaces/{space['id']}/join")
        assert early.status_code == 202 and early.json()["position"] >= 1
        await asyncio.sleep(2.5)  # a few more segments of silence before the start

        auth = {"Authorization": f"Bearer {space['host_token']}"}
        started = (await api.post(f"/api/spaces/{space['id']}/start", headers=auth)).json()
        assert started["state"] == "live"
        joined = await ajoin(api, space["id"])
        assert "/t/" in joined["listen_url"]

        host = WhipPublisher(
            space["whip_url"],
            space["host_token"],
            SignalTrack(lambda s, n: sine(440, n / 48_000, 0.25, s)),
        )
        await host.start()
        await host.wait_connected()
        await asyncio.sleep(3)
        await host.stop()
        ended = (await api.post(f"/api/spaces/{space['id']}/end", headers=auth)).json()

        replay = m3u8.loads((await api.get(space["replay_url"])).text)
        assert replay.is_endlist and replay.media_sequence > 0  # the silence before is not in it
        t0 = datetime.fromisoformat(ended["started_at"].replace("Z", "+00:00"))
        t1 = datetime.fromisoformat(ended["ended_at"].replace("Z", "+00:00"))
        first_pdt = replay.segments[0].program_date_time
        assert abs((first_pdt - t0).total_seconds()) <= 0.6, (first_pdt, t0)
        audio = await ffmpeg_decode(space["replay_url"])
        assert abs(audio.size / 48_000 - (t1 - t0).total_seconds()) <= 2.048
