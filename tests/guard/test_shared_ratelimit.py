"""Rate limits shared through Redis decide exactly as the in-memory ones, one budget across
nodes, with keys that expire once a source has recovered, and fall back to the local limiter
when Redis is gone."""

from __future__ import annotations

import contextlib
import random
import subprocess

import redis
import redis.asyncio

from ruang.guard.ratelimit import Budget, RateLimiter, SharedRateLimiter

BUDGETS = {
    "join": (Budget(3.0, 5), Budget(7.0, 12)),
    "media": (Budget(50.0, 100), Budget(200.0, 400)),
}


def arrivals(seed: int) -> list[tuple[float, str, str]]:
    rng = random.Random(seed)
    t, out = 1_700_000_000.0, []
    for _ in range(400):
        t += rng.expovariate(20.0)
        host = rng.randrange(1, 6)
        net = rng.choice(["10.0.0", "10.0.1"])
        out.append((t, f"{net}.{host}", f"{net}.0/24"))
    return out


async def test_same_decisions_as_the_local_limiter(redis_url: str) -> None:
    client = redis.asyncio.Redis.from_url(redis_url)
    try:
        shared = SharedRateLimiter(client, BUDGETS)
        local = RateLimiter(BUDGETS)
        got, want = [], []
        for t, ip, net in arrivals(7):
            got.append(round(await shared.check_async("join", ip, net, t), 4))
            want.append(round(local.check("join", ip, net, t), 4))
        assert got == want
        assert 0 < sum(w == 0.0 for w in got) < len(got)  # some passed, some were refused
        assert shared.statistics()["refused"]["join"] == sum(w > 0.0 for w in got)
        # "media" is not shared by default: decided in this process's memory
        assert await shared.check_async("media", "10.0.0.1", "10.0.0.0/24", 0.0) == 0.0
        assert shared.statistics()["local"]["allowed"]["media"] == 1
        assert not await client.exists("ruang:rl:media:10.0.0.1")
    finally:
        await client.aclose()


async def test_two_nodes_share_one_budget_and_keys_expire(redis_url: str) -> None:
    clients = [redis.asyncio.Redis.from_url(redis_url) for _ in range(2)]
    try:
        nodes = [SharedRateLimiter(c, BUDGETS) for c in clients]
        t = 1_700_000_000.0
        passed = [
            await nodes[i % 2].check_async("join", "10.0.0.1", "10.0.0.0/24", t) == 0.0
            for i in range(20)
        ]
        assert sum(passed) == 5  # one address's burst, whichever node it asks
        ttl_ms = await clients[0].pttl("ruang:rl:join:10.0.0.1")
        assert 0 < ttl_ms <= 5 / 3.0 * 1000 + 2  # gone once the debt of 5 joins is paid
        nodes[0].tighten(0.5)
        assert (
            await nodes[0].check_async("join", "10.0.0.9", "10.0.0.0/24", t + 100) == 0.0
        )  # tightening applies to new decisions; state is kept
        assert nodes[0].statistics()["factor"] == 0.5
    finally:
        for c in clients:
            await c.aclose()


async def test_redis_gone_falls_back_to_local_limits(
    redis_server: tuple[str, subprocess.Popen[bytes]],
) -> None:
    url, proc = redis_server
    client = redis.asyncio.Redis.from_url(url, socket_connect_timeout=0.5)
    try:
        shared = SharedRateLimiter(client, BUDGETS)
        assert await shared.check_async("join", "10.0.0.1", "10.0.0.0/24", 0.0) == 0.0
        proc.terminate()
        proc.wait(timeout=10)
        waits = [await shared.check_async("join", "10.0.0.1", "10.0.0.0/24", 0.0) for _ in range(8)]
        assert waits[:5] == [0.0] * 5 and all(w > 0 for w in waits[5:])  # the local budget
        assert shared.statistics()["redis_errors"] == 8
    finally:
        with contextlib.suppress(redis.RedisError):
            await client.aclose()
