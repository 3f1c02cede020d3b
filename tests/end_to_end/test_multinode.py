"""More than one node: two `ruang serve` processes sharing one Redis (and the ticket key) share
spaces, control, tickets and the waiting room; a space whose speakers are on node 1 is heard,
ended and replayed through node 2."""

from __future__ import annotations

import asyncio
import random
import secrets
import time
from pathlib import Path

import httpx
import m3u8
from listening import ffmpeg_decode
from test_live_space import HOST_HZ, SPEAKER_HZ, assert_tones, tone

from ruang_bench.tools.whip_client import WhipPublisher
from ruangtest import RuangServer, ajoin, from_address, join, post_join


def two_nodes(
    server_factory, tmp_path: Path, redis_url: str, args: tuple[str, ...] = ()
) -> tuple[RuangServer, RuangServer]:
    env = {"REDIS_URL": redis_url, "RUANG_TICKET_KEY": secrets.token_hex(32)}
    nodes = (
        server_factory(data_dir=tmp_path / "node1", args=args, env=env),
        server_factory(data_dir=tmp_path / "node2", args=args, env=env),
    )
    for node in nodes:
        node.start()
    return nodes


async def test_speakers_on_node_1_heard_ended_and_replayed_through_node_2(
    server_factory, tmp_path: Path, redis_url: str
) -> None:
    one, two = two_nodes(server_factory, tmp_path, redis_url)
    async with (
        httpx.AsyncClient(base_url=one.url, timeout=20, follow_redirects=True) as api1,
        httpx.AsyncClient(base_url=two.url, timeout=20, follow_redirects=True) as api2,
    ):
        r = await api1.post("/api/spaces", json={"title": "Two nodes"})
        assert r.status_code == 201, r.text
        space = r.json()
        sid = space["id"]
        auth = {"Authorization": f"Bearer {space['host_token']}"}
        assert space["whip_url"].startswith(one.url)

        seen = await api2.get(f"/api/spaces/{sid}")
        assert seen.status_code == 200 and seen.json()["title"] == "Two nodes"

        # The host invites a speaker through node 2: forwarded to node 1, which runs the space.
        r = await api2.post(f"/api/spaces/{sid}/speakers", json={"name": "Ana"}, headers=auth)
        assert r.status_code == 201, r.text
        guest = r.json()
        assert guest["whip_url"].startswith(one.url)

        host = WhipPublisher(space["whip_url"], space["host_token"], tone(HOST_HZ))
        # The speaker's offer goes to node 2; the answer (and the media) is node 1's.
        speaker = WhipPublisher(f"{two.url}/whip/{sid}", guest["token"], tone(SPEAKER_HZ))
        await host.start()
        answer = await speaker.start()
        assert answer.status_code == 201 and "a=sendrecv" in answer.text
        assert speaker.location is not None and speaker.location.startswith(two.url)
        await asyncio.gather(host.wait_connected(), speaker.wait_connected())

        view = (await api2.get(f"/api/spaces/{sid}", headers=auth)).json()
        assert {m["name"] for m in view["stage"]} == {"Host", "Ana"}
        assert "listeners" in view  # the host's view comes from the node running the space

        listen_url = (await ajoin(api2, sid))["listen_url"]
        assert listen_url.startswith(f"{two.url}/hls/{sid}/t/")
        heard = await ffmpeg_decode(listen_url, seconds=8)
        assert heard.size >= 6 * 48_000, f"ffmpeg decoded only {heard.size / 48_000:.1f} s"
        assert_tones(heard[48_000:], [HOST_HZ, SPEAKER_HZ], [], "listener on node 2 (ffmpeg)")

        # The host sees the listener of node 2, once (node 2's requests to node 1 for its
        # listeners are not counted again).
        deadline = time.monotonic() + 10
        while True:
            view = (await api2.get(f"/api/spaces/{sid}", headers=auth)).json()
            figures = view["listeners"]
            if figures["current"] == 1 and figures["unique"] == 1:
                break
            assert time.monotonic() < deadline, figures
            await asyncio.sleep(0.5)

        # Blocking reload works through node 2 as well.
        text = (await api2.get(listen_url)).text
        hint = m3u8.loads(text).preload_hint
        assert hint is not None
        msn, part = (int(x) for x in hint.uri.removesuffix(".m4s").split("."))
        r = await api2.get(listen_url, params={"_HLS_msn": msn, "_HLS_part": part})
        assert r.status_code == 200 and f'URI="{msn}.{part}.m4s"' in r.text

        assert await speaker.stop() == 200  # WHIP DELETE through node 2
        await host.stop()
        r = await api2.post(f"/api/spaces/{sid}/end", headers=auth)
        assert r.status_code == 200 and r.json()["state"] == "ended", r.text
        assert (await api1.get(f"/api/spaces/{sid}")).json()["state"] == "ended"

        replay_url = f"{two.url}/hls/{sid}/replay.m3u8"
        replay = m3u8.loads((await api2.get(replay_url)).text)
        assert replay.is_endlist and replay.playlist_type == "vod"
    whole = await ffmpeg_decode(replay_url)
    assert whole.size >= 8 * 48_000, f"replay only {whole.size / 48_000:.1f} s"
    assert_tones(whole[48_000:], [HOST_HZ, SPEAKER_HZ], [], "replay through node 2")

    # The recording is node 1's file, downloaded (ranges too) through node 2; the host deletes
    # it through node 2 (forwarded to node 1, whose disk holds it), and neither node serves
    # anything recorded any more, node 2's memory of node 1's segments included.
    async with httpx.AsyncClient(timeout=20) as api:
        recording_url = (await api.get(f"{two.url}/api/spaces/{sid}")).json()["recording_url"]
        assert recording_url.startswith(two.url)
        file = await api.get(recording_url)
        assert file.status_code == 200 and file.headers["content-type"] == "audio/mp4"
        part = await api.get(recording_url, headers={"Range": "bytes=0-99"})
        assert part.status_code == 206 and part.content == file.content[:100]
        segment = f"{two.url}/hls/{sid}/{replay.segments[0].uri}"
        assert (await api.get(segment)).status_code == 200  # now in node 2's memory
        r = await api.delete(f"{two.url}/api/spaces/{sid}/recording", headers=auth)
        assert r.status_code == 204, r.text
        assert not (one.data_dir / "spaces" / sid).exists()
        for node in (one, two):
            for url in (f"{node.url}/hls/{sid}/replay.m3u8", segment, recording_url):
                r = await api.get(url.replace(two.url, node.url))
                assert r.status_code == 410 and r.json()["error"] == "recording_deleted", url
            view = (await api.get(f"{node.url}/api/spaces/{sid}")).json()
            assert view["recording_deleted"] and "replay_url" not in view


def test_waiting_room_is_fifo_across_nodes(server_factory, tmp_path: Path, redis_url: str) -> None:
    one, two = two_nodes(server_factory, tmp_path, redis_url, ("--joins-per-s", "5"))
    with (
        httpx.Client(base_url=one.url, timeout=10) as api1,
        httpx.Client(base_url=two.url, timeout=10) as api2,
    ):
        space = api1.post("/api/spaces", json={"title": "Surge on two nodes"}).json()
        join = f"/api/spaces/{space['id']}/join"
        nodes = (api1, api2)
        waiting: dict[int, str] = {}
        admitted_now = 0
        people = [from_address(str(nodes[i % 2].base_url), f"127.0.{i + 1}.1") for i in range(30)]
        for i in range(30):
            r = post_join(people[i], join)
            if r.status_code == 200:
                admitted_now += 1
                continue
            assert r.status_code == 202, r.text
            assert r.json()["position"] <= len(waiting) + 1
            waiting[i] = r.json()["queue"]
        for person in people:
            person.close()
        assert admitted_now >= 1 and len(waiting) >= 10, (admitted_now, len(waiting))
        # FIFO, observed without races: once someone is admitted, nobody who arrived before
        # them is ever sent back to wait again (whichever node they ask, in whatever order).
        admitted_at: dict[int, float] = {}  # when the admission answer came back
        refused_at: dict[int, float] = {}  # when the last 202 was asked for
        rng = random.Random(5)
        deadline = time.monotonic() + 40
        while waiting and time.monotonic() < deadline:
            for i in rng.sample(sorted(waiting), len(waiting)):
                asked = time.monotonic()
                r = rng.choice(nodes).post(join, json={"queue": waiting[i]})
                if r.status_code == 200:
                    assert "/t/" in r.json()["listen_url"]
                    admitted_at[i] = time.monotonic()
                    del waiting[i]
                else:
                    assert r.status_code == 202, r.text
                    refused_at[i] = asked
                    waiting[i] = r.json()["queue"]
            time.sleep(0.1)
        assert not waiting, f"{len(waiting)} still waiting after 40 s"
        for i, t in admitted_at.items():
            overtaken = [j for j, asked in refused_at.items() if j < i and asked > t]
            assert not overtaken, f"{i} was let in before {overtaken}, who arrived earlier"
        assert len(admitted_at) >= 10 and refused_at, (admitted_at, refused_at)


async def test_scheduled_space_warms_up_and_starts_through_the_other_node(
    server_factory, tmp_path: Path, redis_url: str
) -> None:
    one, two = two_nodes(server_factory, tmp_path, redis_url)
    async with (
        httpx.AsyncClient(base_url=one.url, timeout=20, follow_redirects=True) as api1,
        httpx.AsyncClient(base_url=two.url, timeout=20, follow_redirects=True) as api2,
    ):
        r = await api1.post(
            "/api/spaces", json={"title": "Later", "starts_at": "2030-01-01T10:00:00Z"}
        )
        space = r.json()
        sid = space["id"]
        # Before the start, node 2 serves node 1's silence without a ticket.
        r = await api2.get(f"/hls/{sid}/live.m3u8")
        assert r.status_code == 200 and "#EXT-X-PART:" in r.text, r.text
        first_part = m3u8.loads(r.text).segments[0].parts[0].uri
        r = await api2.get(f"/hls/{sid}/{first_part}")
        assert r.status_code == 200 and r.content[4:8] == b"moof"
        # Early listeners on either node wait with a place each node honours.
        early = [await api.post(f"/api/spaces/{sid}/join") for api in (api1, api2)]
        assert all(e.status_code == 202 for e in early), [e.text for e in early]

        auth = {"Authorization": f"Bearer {space['host_token']}"}
        r = await api2.post(f"/api/spaces/{sid}/start", headers=auth)
        assert r.status_code == 200 and r.json()["state"] == "live", r.text
        assert (await api1.get(f"/api/spaces/{sid}")).json()["state"] == "live"
        for api, e in zip((api2, api1), early, strict=True):  # each comes back on the other node
            body = {"queue": e.json()["queue"]}
            deadline = time.monotonic() + 10
            while (r := await api.post(f"/api/spaces/{sid}/join", json=body)).status_code != 200:
                assert r.status_code == 202 and time.monotonic() < deadline, r.text
                await asyncio.sleep(0.2)
            assert "/t/" in r.json()["listen_url"]
        r = await api2.post(f"/api/spaces/{sid}/end", headers=auth)
        assert r.status_code == 200 and r.json()["state"] == "ended"
        # The end reaches node 2's workers by pub/sub, well before their 5 s cache would expire.
        deadline = time.monotonic() + 2
        while (joined := await ajoin(api2, sid))["state"] != "ended":
            assert time.monotonic() < deadline, joined
            await asyncio.sleep(0.1)
        assert joined["listen_url"].endswith("/replay.m3u8")


def test_admitted_listeners_keep_listening_when_redis_goes_away(
    server_factory, tmp_path: Path, redis_server
) -> None:
    url, redis_proc = redis_server
    one, two = two_nodes(server_factory, tmp_path, url)
    with httpx.Client(base_url=two.url, timeout=20) as http:
        sid = http.post(f"{one.url}/api/spaces", json={"title": "No Redis"}).json()["id"]
        listen_url = join(http, sid)["listen_url"]
        time.sleep(2.5)  # a whole segment, and node 2 knows who runs the space
        assert http.get(listen_url).status_code == 200
        redis_proc.terminate()
        redis_proc.wait(timeout=10)
        time.sleep(2.5)  # past what node 2's workers remember about the space
        for node in (one, two):  # what needs shared state says so, with a retry hint
            r = http.post(f"{node.url}/api/spaces/{sid}/join")
            assert r.status_code == 503 and r.json()["error"] == "store_unavailable", r.text
            assert r.headers["retry-after"]
        pl = m3u8.loads(http.get(listen_url).text, uri=listen_url)  # the listener still plays
        part = http.get(pl.segments[0].absolute_uri)
        assert part.status_code == 200 and part.headers["cache-control"].endswith("immutable")


def test_a_source_has_one_join_budget_across_nodes(
    server_factory, tmp_path: Path, redis_url: str
) -> None:
    args = ("--joins-per-s", "100000", "--pow-max-bits", "0")
    one, two = two_nodes(server_factory, tmp_path, redis_url, args)
    with from_address(one.url, "127.0.44.1") as a, from_address(two.url, "127.0.44.1") as b:
        sid = a.post("/api/spaces", json={"title": "Shared budget"}).json()["id"]
        path = f"/api/spaces/{sid}/join"
        statuses = [(a if i % 2 else b).post(path).status_code for i in range(70)]
        # one address, both nodes: a burst of 30 (+ the pace while it lasts) in all, not 30 each
        assert 30 <= statuses.count(200) < 45, statuses
        assert statuses[-1] == 429
        with from_address(two.url, "127.0.45.1") as other:  # another network is untouched
            assert other.post(path).status_code == 200


def test_a_new_space_goes_to_the_least_loaded_node(
    server_factory, tmp_path: Path, redis_url: str
) -> None:
    one, two = two_nodes(server_factory, tmp_path, redis_url)
    with httpx.Client(base_url=one.url, timeout=20) as api:
        made = [api.post("/api/spaces", json={"title": f"Placed {i}"}) for i in range(4)]
        assert all(r.status_code == 201 for r in made), [r.text for r in made]
        hosts = [r.json()["whip_url"].split("/whip/")[0] for r in made]
    # every request went to node one; the spaces alternate, each to the node carrying less
    assert hosts == [one.url, two.url, one.url, two.url], hosts
    with httpx.Client(base_url=two.url, timeout=20) as api2:
        space = made[1].json()
        auth = {"Authorization": f"Bearer {space['host_token']}"}
        assert api2.post(f"/api/spaces/{space['id']}/end", headers=auth).status_code == 200


async def test_every_node_serves_the_event_stream_and_takes_reactions(
    server_factory, tmp_path: Path, redis_url: str
) -> None:
    from sse_client import Subscriber

    one, two = two_nodes(server_factory, tmp_path, redis_url)
    async with (
        httpx.AsyncClient(base_url=one.url, timeout=20, follow_redirects=True) as api1,
        httpx.AsyncClient(base_url=two.url, timeout=20, follow_redirects=True) as api2,
    ):
        space = (await api1.post("/api/spaces", json={"title": "Events, two nodes"})).json()
        sid = space["id"]
        owner, other = (api1, api2) if space["whip_url"].startswith(one.url) else (api2, api1)
        here, there = Subscriber(owner, sid), Subscriber(other, sid)
        ticket = (await ajoin(other, sid))["listen_url"].split("/t/", 1)[1].split("/", 1)[0]
        r = await other.post(
            f"/api/spaces/{sid}/reactions",
            json={"kind": "🔥"},
            headers={"Authorization": f"Bearer {ticket}"},
        )
        assert r.status_code == 202, r.text
        deadline = time.monotonic() + 20
        for sub in (there, here):
            while not sub.of_type("reaction"):
                assert time.monotonic() < deadline, sub.events
                await sub.poll()
        assert here.of_type("reaction")[0]["counts"] == {"🔥": 1}
        assert [e["id"] for e in there.events] == [e["id"] for e in here.events]
