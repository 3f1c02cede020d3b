"""The waiting room shared through Redis decides exactly as the embedded one: same admissions,
positions and queue tokens for the same arrivals, retries and clock — including the pre-start
shuffle — and two nodes on one line keep it FIFO."""

from __future__ import annotations

import random

import redis
import redis.asyncio

from ruang.guard.admission import Admission, Admitted, Limits, Waiting
from ruang.guard.shared import SharedAdmission

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
