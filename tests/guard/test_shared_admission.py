"""The waiting room shared through Redis decides exactly as the embedded one: same admissions,
positions and queue tokens for the same arrivals, retries and clock — including the pre-start
shuffle, and joins decided many to a batch — and two nodes on one line keep it FIFO."""

from __future__ import annotations

import asyncio
import random

import pytest
import redis
import redis.asyncio

from ruang.guard import shared as shared_module
from ruang.guard.admission import Admission, Admitted, Limits, Waiting
from ruang.guard.network import network_of
from ruang.guard.ratelimit import Budget, RateLimiter, SharedRateLimiter
from ruang.guard.shared import MAX_BATCH, SharedAdmission

KEY = b"k" * 32
LIMITS = Limits(max_listeners=1000, joins_per_s=7, burst=3)


def clients(url: str) -> tuple[redis.Redis, redis.asyncio.Redis]:
    """The two clients a process opens (`ruang.backends`)."""
    return (
        redis.Redis.from_url(url, decode_responses=True),
        redis.asyncio.Redis.from_url(url, decode_responses=True),
    )


def decisions(g: Admission, seed: int) -> list[object]:
    rng = random.Random(seed)
    out: list[object] = []
    tokens: dict[int, str] = {}
    t = 0.0
    g.schedule("s")
    for i in range(12):  # early arrivals get draws
        w = g.join("s", f"net{i}", None, t)
        assert isinstance(w, Waiting)
        tokens[i] = w.token
        out.append(w)
    g.start("s")
    for i in range(12, 40):  # then arrivals in order, mixed with retries in random order
        t += rng.random() * 0.2
        r = g.join("s", f"net{i}", None, t)
        out.append(r)
        if isinstance(r, Waiting):
            tokens[i] = r.token
        for j in rng.sample(sorted(tokens), min(4, len(tokens))):
            r = g.join("s", f"net{j}", tokens[j], t)
            out.append((j, r))
            if isinstance(r, Admitted):
                del tokens[j]
            else:
                tokens[j] = r.token
    return out


def test_same_decisions_as_the_embedded_line(redis_url: str) -> None:
    local = decisions(Admission(LIMITS, KEY, 0.0), 11)
    shared = decisions(SharedAdmission(*clients(redis_url), "node-a", LIMITS, KEY, 0.0), 11)
    assert shared == local
    assert any(isinstance(d, tuple) and isinstance(d[1], Admitted) for d in shared)


def test_two_nodes_one_fifo_line(redis_url: str) -> None:
    nodes = [SharedAdmission(*clients(redis_url), f"node-{n}", LIMITS, KEY, 0.0) for n in "xy"]
    for n in nodes:
        n.start("t")
    tokens: dict[int, str] = {}
    for i in range(30):
        r = nodes[i % 2].join("t", f"n{i}", None, 0.0)
        if isinstance(r, Waiting):
            assert r.position == len(tokens) + 1
            tokens[i] = r.token
    assert len(tokens) == 30 - 2 * LIMITS.burst  # each node let its burst in, then the line
    # FIFO across nodes: once someone is let in, nobody ahead of them is ever refused again.
    admitted_at: dict[int, int] = {}
    refused_at: dict[int, int] = {}
    rng = random.Random(3)
    t, step = 0.0, 0
    while tokens and t < 10:
        t += 0.1
        for i in rng.sample(sorted(tokens), len(tokens)):
            step += 1
            r = rng.choice(nodes).join("t", f"n{i}", tokens[i], t)
            if isinstance(r, Admitted):
                admitted_at[i] = step
                del tokens[i]
            else:
                refused_at[i] = step
                tokens[i] = r.token
    assert not tokens
    for i, at in admitted_at.items():
        assert not [j for j, s in refused_at.items() if j < i and s > at], i
    assert 1.0 < t < 2.5  # 24 people at 7 per second per node: both nodes' pace


def arrivals(seed: int) -> list[tuple[str, float]]:
    """Newcomers from a few sources, some of them far over their join budget."""
    rng = random.Random(seed)
    t, out = 1_700_000_000.0, []
    for _ in range(120):
        t += rng.expovariate(200.0)
        out.append((f"10.0.{rng.randrange(3)}.{rng.randrange(1, 4)}", t))
    return out


async def test_a_batch_decides_as_the_embedded_line_one_join_after_another(
    redis_url: str,
) -> None:
    """Joins read in one event-loop turn go to Redis together, and each is decided as if it
    came alone, in the order read: the same admissions, positions and tokens."""
    local = Admission(LIMITS, KEY, 0.0)
    shared = SharedAdmission(*clients(redis_url), "node-b", LIMITS, KEY, 0.0)
    want = [local.join("b", f"net{i}", None, i * 0.01) for i in range(40)]
    got = await asyncio.gather(
        *(shared.join_async("b", f"net{i}", None, i * 0.01) for i in range(40))
    )
    assert list(got) == want
    assert shared.batch.statistics()["batches"] == 1
    # and places in line brought back later, all in one batch again
    tokens = [w.token for w in want if isinstance(w, Waiting)]
    want = [local.join("b", "n", t, 3.0) for t in tokens]
    got = await asyncio.gather(*(shared.join_async("b", "n", t, 3.0) for t in tokens))
    assert list(got) == want and Admitted() in got and any(isinstance(g, Waiting) for g in got)
    assert shared.batch.statistics()["batches"] == 2


async def test_a_newcomers_budget_is_checked_in_its_entry(redis_url: str) -> None:
    """A batch of newcomers with their shared join budgets: the budget decides as the local
    limiter does, and a join over budget does not touch the line (nobody's place moves)."""
    budgets = {"join": (Budget(3.0, 5), Budget(7.0, 12))}
    client, aclient = clients(redis_url)
    shared = SharedAdmission(client, aclient, "node-c", LIMITS, KEY, 0.0)
    shared.start("c")
    limiter = SharedRateLimiter(aclient, budgets)
    local_limits, local_line = RateLimiter(budgets), Admission(LIMITS, KEY, 0.0)
    futures, want = [], []
    for ip, t in arrivals(5):
        network = network_of(ip)
        limit = limiter.request("join", ip, network, t)
        futures.append(shared.submit("c", network, None, t, limit=limit))
        wait = local_limits.check("join", ip, network, t)
        want.append(
            pytest.approx(wait, abs=1e-5) if wait > 0 else local_line.join("c", network, None, t)
        )
    lines = await asyncio.gather(*futures)
    got = [shared.decide("c", line, t) for line, (_, t) in zip(lines, arrivals(5), strict=True)]
    assert got == want
    assert 0 < sum(isinstance(g, float) for g in got) < len(got)  # some over budget
    # the embedded line never saw the joins over budget, so neither did the shared one


async def test_a_crowd_beyond_one_batch_keeps_its_order(redis_url: str) -> None:
    """More joins in one turn than a batch holds: they go in several batches,
    one after another, and the line numbers them in the order they came."""
    crowd = 2 * MAX_BATCH + 50
    shared = SharedAdmission(*clients(redis_url), "node-d", LIMITS, KEY, 0.0)
    got = await asyncio.gather(*(shared.join_async("d", f"n{i}", None, 0.0) for i in range(crowd)))
    waiting = [g for g in got if isinstance(g, Waiting)]
    assert len(waiting) == crowd - LIMITS.burst
    assert [w.position for w in waiting] == list(range(1, len(waiting) + 1))
    assert shared.batch.statistics()["batches"] == 3


async def test_a_batch_redis_never_answers_fails_and_the_next_goes(
    redis_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Bounded: a batch stuck on its way fails with a Redis timeout (its joins answer 503),
    and the joins after it are sent."""
    monkeypatch.setattr(shared_module, "BATCH_TIMEOUT_S", 0.2)
    shared = SharedAdmission(*clients(redis_url), "node-e", LIMITS, KEY, 0.0)
    real = shared.batch._script

    async def stuck(**kwargs: object) -> str:
        shared.batch._script = real  # only this batch is stuck
        await asyncio.sleep(60)
        return ""

    shared.batch._script = stuck
    first = asyncio.ensure_future(shared.join_async("e", "n1", None, 0.0))
    await asyncio.sleep(0.05)  # its batch is on its way, and stuck
    second = asyncio.ensure_future(shared.join_async("e", "n2", None, 0.0))
    with pytest.raises(redis.TimeoutError):
        await first
    assert await second == Admitted()
