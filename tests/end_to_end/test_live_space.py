"""The whole path with real clients: two aiortc WHIP speakers, the ffmpeg binary as a listener,
mute enforced by the server, and the replay after the end."""

from __future__ import annotations

import asyncio
import time
from datetime import datetime, timedelta

import httpx
import m3u8
import pytest
from listening import decode_mp4, ffmpeg_decode, parts_with_times

from ruang_bench.tools.tones import sine, tone_levels_db
from ruang_bench.tools.whip_client import SignalTrack, WhipPublisher
from ruangtest import ajoin

HOST_HZ, SPEAKER_HZ = 440.0, 660.0
CLEAR_DB = 20.0  # a tone counts as present when this far above the rest of the spectrum


def tone(freq: float) -> SignalTrack:
    return SignalTrack(lambda start, n: sine(freq, n / 48_000, 0.25, start))


def assert_tones(audio, present: list[float], absent: list[float], what: str) -> None:
    levels, rest = tone_levels_db(audio, [HOST_HZ, SPEAKER_HZ])
    for f in present:
        assert levels[f] - rest >= CLEAR_DB, (
            f"{what}: {f} Hz only {levels[f] - rest:.1f} dB "
            f"above the rest ({levels}, rest {rest:.1f})"
        )
    for f in absent:
        loudest = max(levels[p] for p in present) if present else rest + CLEAR_DB
        assert loudest - levels[f] >= CLEAR_DB, f"{what}: {f} Hz still audible ({levels})"


async def test_two_speakers_mix_mute_and_replay(server) -> None:
    async with httpx.AsyncClient(base_url=server.url, timeout=20, follow_redirects=True) as api:
        r = await api.post("/api/spaces", json={"title": "Tones"})
        assert r.status_code == 201, r.text
        space = r.json()
        for key in ("id", "host_token", "whip_url", "page_url", "replay_url"):
            assert space[key], key
        auth = {"Authorization": f"Bearer {space['host_token']}"}
        r = await api.post(
            f"/api/spaces/{space['id']}/speakers", json={"name": "Ana"}, headers=auth
        )
        assert r.status_code == 201, r.text
        guest = r.json()

        host = WhipPublisher(space["whip_url"], space["host_token"], tone(HOST_HZ))
        speaker = WhipPublisher(guest["whip_url"], guest["token"], tone(SPEAKER_HZ))
        answer = await host.start()
        assert answer.headers["content-type"].startswith("application/sdp")
        assert "a=sendrecv" in answer.text
        await speaker.start()
        await asyncio.gather(host.wait_connected(), speaker.wait_connected())

        listen_url = (await ajoin(api, space["id"]))["listen_url"]
        view = (await api.get(f"/api/spaces/{space['id']}")).json()
        assert {m["name"] for m in view["stage"]} == {"Host", "Ana"}

        # A broken offer in the middle of the space must not disturb the others (not even
        # one that asks to take the host's place: without that it is a 409, the host on stage).
        bad = await api.post(
            space["whip_url"] + "?take_over=1",
            content="v=0\r\nnonsense",
            headers={**auth, "Content-Type": "application/sdp"},
        )
        assert bad.status_code == 400 and bad.json()["error"]

        heard = await ffmpeg_decode(listen_url, seconds=12)
        assert heard.size >= 10 * 48_000, f"ffmpeg decoded only {heard.size / 48_000:.1f} s"
        assert_tones(heard[48_000:], [HOST_HZ, SPEAKER_HZ], [], "listener (ffmpeg)")

        now = time.time()
        assert_tones(host.heard(now - 4, now), [SPEAKER_HZ], [HOST_HZ], "host's return audio")
        assert_tones(speaker.heard(now - 4, now), [HOST_HZ], [SPEAKER_HZ], "speaker's return audio")

        muted_at = datetime.now().astimezone()
        r = await api.post(
            f"/api/spaces/{space['id']}/speakers/{guest['id']}/mute",
            json={"muted": True},
            headers=auth,
        )
        assert r.status_code == 200 and r.json()["muted"] is True
        await asyncio.sleep(3.5)
        parts = await parts_with_times(api, listen_url)
        init = (await api.get(listen_url.replace("live.m3u8", "init.mp4"))).content
        before = [u for t, u in parts if t + timedelta(seconds=0.6) < muted_at]
        after = [u for t, u in parts if t >= muted_at + timedelta(seconds=1)]
        assert before and after, f"parts around the mute: {parts}"
        audio_before = decode_mp4(init + (await api.get(before[-1])).content)
        audio_after = decode_mp4(init + b"".join([(await api.get(u)).content for u in after[:2]]))
        assert_tones(audio_before, [HOST_HZ, SPEAKER_HZ], [], "program before the mute")
        assert_tones(audio_after, [HOST_HZ], [SPEAKER_HZ], "program 1 s after the mute")

        assert await speaker.stop() == 200
        await host.stop()
        r = await api.post(f"/api/spaces/{space['id']}/end", headers=auth)
        assert r.status_code == 200 and r.json()["state"] == "ended"
        ended = r.json()
        started = datetime.fromisoformat(ended["started_at"].replace("Z", "+00:00"))
        finished = datetime.fromisoformat(ended["ended_at"].replace("Z", "+00:00"))

        replay_text = (await api.get(space["replay_url"])).text
        replay = m3u8.loads(replay_text)
        assert replay.is_endlist and replay.playlist_type == "vod"
        assert replay.media_sequence == 0
        first_pdt = replay.segments[0].program_date_time
        assert abs((first_pdt - started).total_seconds()) < 0.25, (first_pdt, started)
        whole = await ffmpeg_decode(space["replay_url"])
        live_s = (finished - started).total_seconds()
        assert abs(whole.size / 48_000 - live_s) <= 2.048, (whole.size / 48_000, live_s)


async def test_blocking_reload_waits_for_the_part(server) -> None:
    async with httpx.AsyncClient(base_url=server.url, timeout=20, follow_redirects=True) as api:
        space = (await api.post("/api/spaces", json={"title": "Blocking"})).json()
        live = (await ajoin(api, space["id"]))["listen_url"]
        await asyncio.sleep(1.2)
        text = (await api.get(live)).text
        hint = m3u8.loads(text).preload_hint
        assert hint is not None
        msn, part = (int(x) for x in hint.uri.removesuffix(".m4s").split("."))
        wanted = (msn, part + 1) if part < 3 else (msn + 1, 0)
        assert f'URI="{wanted[0]}.{wanted[1]}.m4s"' not in text
        r = await api.get(live, params={"_HLS_msn": wanted[0], "_HLS_part": wanted[1]})
        assert r.status_code == 200
        assert f'URI="{wanted[0]}.{wanted[1]}.m4s"' in r.text
        assert "max-age" in r.headers["cache-control"]
        part_r = await api.get(live.replace("live.m3u8", f"{wanted[0]}.{wanted[1]}.m4s"))
        assert part_r.status_code == 200 and "immutable" in part_r.headers["cache-control"]
        # The preload-hinted part itself is held until it exists.
        hinted = m3u8.loads(r.text).preload_hint.uri
        r = await api.get(live.replace("live.m3u8", hinted))
        assert r.status_code == 200 and r.content[4:8] == b"moof"
        r = await api.get(live, params={"_HLS_msn": wanted[0] + 10})
        assert r.status_code == 400 and r.json()["error"] == "too_far_ahead"


@pytest.mark.parametrize("seconds", [6.0])
def test_replay_survives_kill_9(server_factory, seconds: float) -> None:
    srv = server_factory()
    srv.start()
    with httpx.Client(base_url=srv.url, timeout=20, follow_redirects=True) as api:
        space = api.post("/api/spaces", json={"title": "Crash"}).json()
        auth = {"Authorization": f"Bearer {space['host_token']}"}

        async def speak(duration: float) -> None:
            host = WhipPublisher(space["whip_url"], space["host_token"], tone(HOST_HZ))
            await host.start()
            await host.wait_connected()
            await asyncio.sleep(duration)
            await host.stop()

        asyncio.run(speak(seconds))
        crashed_at = time.time()
        srv.kill9()
        started = datetime.fromisoformat(space["started_at"].replace("Z", "+00:00"))
        survived_s = crashed_at - started.timestamp()

        srv.start()  # same data folder, same port
        replay = api.get(space["replay_url"])
        assert replay.status_code == 200
        pl = m3u8.loads(replay.text)
        assert pl.playlist_type == "event" and not pl.is_endlist
        kept = sum(s.duration for s in pl.segments)
        assert kept >= survived_s - 0.512 - 0.3, (kept, survived_s)  # at most one part lost

        asyncio.run(speak(3.0))  # and the space goes on live after the restart
        r = api.post(f"/api/spaces/{space['id']}/end", headers=auth)
        assert r.status_code == 200
        final = m3u8.loads(api.get(space["replay_url"]).text)
        assert final.is_endlist
        assert any(s.discontinuity for s in final.segments)
        total = sum(s.duration for s in final.segments)
        assert total > kept + 3.0
    audio = asyncio.run(ffmpeg_decode(space["replay_url"]))
    assert abs(audio.size / 48_000 - total) < 0.6
    assert_tones(audio[48_000 : 48_000 * 4], [HOST_HZ], [], "replay before the crash")


async def test_obs_style_offer_with_video_publishes_audio_only(server) -> None:
    from aiortc.mediastreams import VideoStreamTrack

    async with httpx.AsyncClient(base_url=server.url, timeout=20, follow_redirects=True) as api:
        space = (await api.post("/api/spaces", json={"title": "OBS"})).json()
        pub = WhipPublisher(space["whip_url"], space["host_token"], tone(HOST_HZ), "sendonly")
        pub._pc.addTransceiver(VideoStreamTrack(), direction="sendonly")
        answer = await pub.start()
        video = answer.text[answer.text.index("m=video") :]
        assert "a=inactive" in video
        await pub.wait_connected()
        heard = await ffmpeg_decode((await ajoin(api, space["id"]))["listen_url"], seconds=4)
        assert_tones(heard[24_000:], [HOST_HZ], [SPEAKER_HZ], "sendonly publisher with video")
        await pub.stop()
