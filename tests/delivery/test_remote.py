"""Fetching another node's space: identical requests in flight become one upstream request,
immutable media and blocking playlist answers are kept, listeners are not counted twice."""

from __future__ import annotations

import asyncio

import httpx

from ruang.delivery.hls import NODE_PARAM
from ruang.delivery.remote import RemoteOrigin


async def test_coalesces_and_keeps_what_does_not_change() -> None:
    seen: list[str] = []

    async def owner(request: httpx.Request) -> httpx.Response:
        seen.append(str(request.url))
        await asyncio.sleep(0.05)  # a blocking request waiting for its part
        if request.url.path.endswith(".m4s"):
            return httpx.Response(200, content=b"part", headers={"content-type": "audio/mp4"})
        return httpx.Response(
            200,
            content=b"#EXTM3U\n",
            headers={"content-type": "application/vnd.apple.mpegurl", "cache-control": "max-age=6"},
        )

    remote = RemoteOrigin(lambda sid: "http://node1", 5.0, httpx.MockTransport(owner))
    query = {"_HLS_msn": "7", "_HLS_part": "2", "junk": "x"}
    answers = await asyncio.gather(
        *[remote.fetch("http://node1", "abcdefghij", f"t{i}", "live.m3u8", query, False)
          for i in range(100)]
    )  # fmt: skip
    assert {a.status for a in answers} == {200} and len(seen) == 1
    assert seen[0].endswith(f"/live.m3u8?_HLS_msn=7&_HLS_part=2&{NODE_PARAM}=1")  # no junk
    again = await remote.fetch("http://node1", "abcdefghij", "t9", "live.m3u8", query, False)
    assert again.body == b"#EXTM3U\n" and len(seen) == 1  # a blocking answer never changes

    for _ in range(3):
        part = await remote.fetch("http://node1", "abcdefghij", "t1", "7.2.m4s", {}, True)
        assert part.status == 200 and part.body == b"part"
    assert len(seen) == 2 and remote.cached("abcdefghij", "7.2.m4s") == b"part"
    assert b"immutable" in part.headers
    await remote.aclose()


async def test_an_unreachable_node_is_a_503() -> None:
    def down(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("refused")

    remote = RemoteOrigin(lambda sid: "http://node1", 1.0, httpx.MockTransport(down))
    r = await remote.fetch("http://node1", "abcdefghij", "t", "live.m3u8", {}, False)
    assert r.status == 503 and b"node_unavailable" in r.body and b"Retry-After" in r.headers
    await remote.aclose()
