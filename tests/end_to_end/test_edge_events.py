"""The event stream through the shipped nginx edge: N subscribers cost the origin about one
request per batch, and every subscriber sees the same events."""

from __future__ import annotations

import asyncio
import time

import httpx
import pytest
from test_edge import KEY, Edge, edge  # noqa: F401 - the fixture

from ruang.guard.tickets import TicketSigner
from sse_client import Subscriber

SECONDS = 6.0


async def audience(nginx: Edge, space_id: str, n: int) -> tuple[Subscriber, list[Subscriber]]:
    """The first subscriber, then n more, each reconnecting with its last id, while
    listeners react."""
    signer = TicketSigner(KEY.encode())
    limits = httpx.Limits(max_connections=n + 4, max_keepalive_connections=n + 4)
    async with (
        httpx.AsyncClient(base_url=nginx.url, timeout=30, limits=limits) as c,
        httpx.AsyncClient(base_url=nginx.url, timeout=30) as poster,
    ):
        first = Subscriber(c, space_id)
        while not first.of_type("state"):
            await first.poll()
        subs = [Subscriber(c, space_id, last_id=first.last_id) for _ in range(n)]
        stop = time.monotonic() + SECONDS

        async def follow(sub: Subscriber) -> None:
            while time.monotonic() < stop:
                await sub.poll()

        async def react() -> None:
            tickets = [signer.issue(space_id, time.time()) for _ in range(8)]
            i = 0
            while time.monotonic() < stop - 1.5:
                r = await poster.post(
                    f"/api/spaces/{space_id}/reactions",
                    json={"kind": "👏"},
                    headers={"Authorization": f"Bearer {tickets[i % len(tickets)]}"},
                )
                assert r.status_code == 202, r.text
                i += 1
                await asyncio.sleep(0.2)

        await asyncio.gather(react(), *(follow(s) for s in subs))
    return first, subs


@pytest.mark.parametrize("n", [300])
def test_subscribers_coalesce_at_the_edge(edge, n: int) -> None:  # noqa: F811
    nginx, _ = edge
    with httpx.Client(base_url=nginx.url, timeout=20) as api:
        space = api.post("/api/spaces", json={"title": "Edge events"}).json()
    first, subs = asyncio.run(audience(nginx, space["id"], n))
    longest = max(subs, key=lambda s: len(s.events)).events
    assert len([e for e in longest if e["type"] == "reaction"]) >= 2, longest  # several batches
    for s in subs:  # the same story for everyone, without a gap or a duplicate
        assert s.events == longest[: len(s.events)]
    # one per batch the crowd went through, and those the first subscriber asked alone
    positions = set().union(first.asked, *(s.asked for s in subs))
    answers = sum(s.answers for s in subs)
    seen, origin = nginx.requests(f"/api/spaces/{space['id']}/events")
    # per batch, one request held at the origin until it is written; at most 2
    assert seen >= answers >= n, (seen, answers)
    assert 1 <= origin <= 2 * len(positions), (origin, positions)
