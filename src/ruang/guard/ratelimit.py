"""Per-source limits: GCRA budgets per request class, keyed by address and by network.

Every request class has two budgets, one per source address and one per network (the /24 or
/64 of `network.network_of`), and a request passes only if both allow it. Classes are separate
so that a playlist flood spends the playlist budget and nothing else: joins, pages and
speakers' signalling keep theirs.

GCRA (the generic cell rate algorithm of ATM, the "virtual scheduling" form) keeps one number
per key, the theoretical arrival time `tat`: with emission interval T = 1 / rate and tolerance
τ = burst × T, a request at `now` is allowed if max(tat, now) + T − now ≤ τ, and then moves tat
there. `burst` requests pass at once from rest, then one per T. A refused request changes
nothing, so a flood cannot push its own wait further out — it is simply refused, cheaply.

The defaults cost legitimate listeners nothing (the reasoning, with the figures it rests on,
is in docs/GUARD.md): per address they carry ~500 LL-HLS players behind one NAT at their normal
pace, per network ~2,000, with two seconds of burst for players catching up after a stall;
joins are tighter, since a listener joins once per ticket (renewing every 7.5 minutes).
"""

from __future__ import annotations

import logging
import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import redis
import redis.asyncio

from ruang.guard.cells import Cells, slots_for

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Budget:
    """A sustained rate (requests per second) and how many may come at once from rest."""

    rate_per_s: float
    burst: int

    def __post_init__(self) -> None:
        if not (self.rate_per_s > 0 and math.isfinite(self.rate_per_s)) or self.burst < 1:
            raise ValueError(f"a budget needs a positive rate and a burst ≥ 1: {self}")


CLASSES = ("join", "poll", "playlist", "media", "vod", "page", "api", "whip")
"""join: POST …/join of a newcomer (first join, proof-of-work retry); poll: a join that shows
a place in line or a ticket to renew (waiting-room polls, renewals: paced by Retry-After, and
a whole NAT's line may poll from one address);
playlist: ticketed playlist reloads; media: parts, segments, init; vod: an ended space's
public replay (playlist, segments, init) and its recording, fetched without a ticket as fast
as a client likes (a whole multi-hour replay in one burst), not at a live player's pace;
page: pages, metadata, static files; api: every other API request; whip: WHIP POST/PATCH/DELETE."""

DEFAULT_BUDGETS: Mapping[str, tuple[Budget, Budget]] = {
    #            per address                 per /24 or /64 network
    "join": (Budget(5.0, 30), Budget(50.0, 300)),
    "poll": (Budget(200.0, 400), Budget(2_000.0, 4_000)),
    "playlist": (Budget(1_000.0, 2_000), Budget(4_000.0, 8_000)),
    "media": (Budget(1_000.0, 2_000), Budget(4_000.0, 8_000)),
    # a 4-hour replay is ~7,000 segments: one client downloads it whole in one burst, then a
    # flood from one address is held to 300 requests/s (~40 Mbit/s of 16 KB segments)
    "vod": (Budget(300.0, 8_000), Budget(1_500.0, 40_000)),
    "page": (Budget(100.0, 600), Budget(1_000.0, 6_000)),
    "api": (Budget(10.0, 50), Budget(100.0, 500)),
    "whip": (Budget(10.0, 40), Budget(50.0, 200)),
}
MAX_KEYS = 200_000  # sources in debt a table holds at once: 2^19 cells, 8 MB


@dataclass(frozen=True, slots=True)
class _Rule:
    """One class's budgets in GCRA terms, already scaled by the tightening factor."""

    ip_t: float  # emission interval per address (s)
    ip_tau: float  # tolerance per address (s)
    net_t: float
    net_tau: float


def _rule(ip: Budget, net: Budget, factor: float) -> _Rule:
    def scaled(b: Budget) -> tuple[float, float]:
        t = 1.0 / (b.rate_per_s * factor)
        return t, max(1, round(b.burst * factor)) * t

    ip_t, ip_tau = scaled(ip)
    net_t, net_tau = scaled(net)
    return _Rule(ip_t, ip_tau, net_t, net_tau)


class _Budgets:
    """The budgets of every class, the tightening factor, and counts (shared by both limiters)."""

    def __init__(self, budgets: Mapping[str, tuple[Budget, Budget]] | None) -> None:
        self.budgets: dict[str, tuple[Budget, Budget]] = dict(
            DEFAULT_BUDGETS if budgets is None else budgets
        )
        if not self.budgets:
            raise ValueError("at least one request class needs a budget")
        self.factor = 1.0
        self._rules = {c: _rule(ip, net, 1.0) for c, (ip, net) in self.budgets.items()}
        self.allowed = dict.fromkeys(self.budgets, 0)
        self.refused = dict.fromkeys(self.budgets, 0)

    def tighten(self, factor: float) -> None:
        """Scale every rate and burst by `factor` (0 < factor ≤ 1; attack mode uses 0.25,
        1.0 restores the configured budgets). Sources keep their state."""
        if not 0.0 < factor <= 1.0:
            raise ValueError(f"tightening factor must be in (0, 1], got {factor}")
        self.factor = factor
        self._rules = {c: _rule(ip, net, factor) for c, (ip, net) in self.budgets.items()}

    def _counts(self) -> dict[str, Any]:
        return {
            "factor": self.factor,
            "allowed": dict(self.allowed),
            "refused": dict(self.refused),
        }


class RateLimiter(_Budgets):
    """GCRA limits in a table of cells (`guard.cells`); `check` costs about a microsecond.

    With `cells` mapped from the node's shared memory, every delivery worker of the node
    spends the same budgets (one guard per node); without, the table is this process's own.
    Memory is fixed by the table's size; a source that has recovered takes no room, and when
    a key's cells are all held by sources in debt the one nearest to recovering is forgotten
    (`evicted`), which can only make a limit more lenient for it, never refuse anyone.
    """

    def __init__(
        self,
        budgets: Mapping[str, tuple[Budget, Budget]] | None = None,
        max_keys: int = MAX_KEYS,
        cells: Cells | None = None,
    ) -> None:
        super().__init__(budgets)
        if max_keys < 2:
            raise ValueError(f"max_keys must be at least 2, got {max_keys}")
        self.cells = cells if cells is not None else Cells(slots_for(max_keys))
        # one salt per class, so one source's classes are separate keys (hash() is seeded
        # the same in every worker of a node, see guard.cells)
        self._salts = {c: hash(("ruang-rl", c)) for c in self.budgets}
        self._now = 0.0

    def check(self, cls: str, ip: str, network: str, now: float) -> float:
        """0.0 if a request of class `cls` from `ip` (in `network`) may pass now, and it is
        counted; otherwise the seconds until it would pass (a Retry-After), and nothing is
        counted. `now` is any monotonic clock in seconds, the same in every process sharing
        the cells (the guard uses time.time()). KeyError for an unknown class."""
        rule = self._rules[cls]
        salt = self._salts[cls]
        cells = self.cells
        hashes, tats, mask = cells.hashes, cells.tats, cells.mask
        h_ip = (hash(ip) ^ salt) or 1
        i = h_ip & mask
        if hashes[i] == h_ip:  # the common case: the key in its first cell
            tat, fresh_ip = tats[i], False
        else:
            i = cells.find(h_ip, now)
            fresh_ip = hashes[i] != h_ip
            tat = now if fresh_ip else tats[i]
        new_ip = (tat if tat > now else now) + rule.ip_t
        h_net = (hash(network) ^ salt) or 1
        j = h_net & mask
        if hashes[j] == h_net:
            tat, fresh_net = tats[j], False
        else:
            j = cells.find(h_net, now)
            fresh_net = hashes[j] != h_net
            tat = now if fresh_net else tats[j]
        new_net = (tat if tat > now else now) + rule.net_t
        wait = new_ip - now - rule.ip_tau
        wait_net = new_net - now - rule.net_tau
        if wait_net > wait:
            wait = wait_net
        if wait > 1e-9:
            self.refused[cls] += 1
            return wait
        self.allowed[cls] += 1
        tats[i] = new_ip  # the tat first: a reader of a new hash never sees another's tat
        if fresh_ip:
            hashes[i] = h_ip
        tats[j] = new_net
        if fresh_net:
            hashes[j] = h_net
        self._now = now
        return 0.0

    def check_key(self, cls: str, key: str, now: float) -> float:
        """`check` for a budget with one key and no network (a ticket's listener)."""
        rule = self._rules[cls]
        cells = self.cells
        hashes, tats = cells.hashes, cells.tats
        h = (hash(key) ^ self._salts[cls]) or 1
        i = h & cells.mask
        if hashes[i] == h:
            tat, fresh = tats[i], False
        else:
            i = cells.find(h, now)
            fresh = hashes[i] != h
            tat = now if fresh else tats[i]
        new = (tat if tat > now else now) + rule.ip_t
        wait = new - now - rule.ip_tau
        if wait > 1e-9:
            self.refused[cls] += 1
            return wait
        self.allowed[cls] += 1
        tats[i] = new
        if fresh:
            hashes[i] = h
        self._now = now
        return 0.0

    def __len__(self) -> int:
        """Sources (and networks) still in debt at the latest allowed request."""
        return self.cells.in_debt(self._now)

    @property
    def evicted(self) -> int:
        """Sources this process forgot while they were in debt (the table was crowded)."""
        return self.cells.evicted

    def statistics(self) -> dict[str, Any]:
        """A snapshot: tightening factor, allowed and refused per class (this worker's),
        whether the cells are the node's, evictions."""
        return {**self._counts(), "node_wide": self.cells.shared, "evicted": self.evicted}


# KEYS: the address's and the network's state; ARGV: now, then T and τ for each (the five
# values of `SharedRateLimiter.request`).
# Returns "0" (allowed, both counted) or the wait in seconds, as strings (Lua numbers would be
# truncated to integers on the way out). A key expires when its tat has passed: an expired key
# is exactly a fresh one, so Redis memory holds only sources that are still "in debt".
_GCRA = """
local now = tonumber(ARGV[1])
local ip_t, ip_tau = tonumber(ARGV[2]), tonumber(ARGV[3])
local net_t, net_tau = tonumber(ARGV[4]), tonumber(ARGV[5])
local a = tonumber(redis.call('GET', KEYS[1])) or now
local b = tonumber(redis.call('GET', KEYS[2])) or now
a = math.max(a, now) + ip_t
b = math.max(b, now) + net_t
local wait = math.max(a - now - ip_tau, b - now - net_tau)
if wait > 1e-9 then return string.format('%.6f', wait) end
redis.call('SET', KEYS[1], string.format('%.17g', a), 'PX', math.ceil((a - now) * 1000) + 1)
redis.call('SET', KEYS[2], string.format('%.17g', b), 'PX', math.ceil((b - now) * 1000) + 1)
return '0'
"""
GCRA_LUA = _GCRA

SHARED_CLASSES = ("join", "whip", "api")  # classes whose budgets are shared through Redis


class SharedRateLimiter(_Budgets):
    """The same GCRA limits with their state in Redis, so a source's budget is one across every
    worker and node: both keys are checked and moved in one Lua script call (one EVALSHA, one
    round trip). `now` must then be wall-clock time (time.time()), the same on every node.

    Only `shared_classes` go to Redis — by default the rare, valuable ones (join, whip, api);
    the classes with several requests per listener per second (playlist, media, page) stay in
    the worker's memory, where a check costs a microsecond instead of a round trip. If Redis
    fails, the local limiter decides (fail open to the local budget, never to no limit).
    """

    def __init__(
        self,
        client: redis.asyncio.Redis,
        budgets: Mapping[str, tuple[Budget, Budget]] | None = None,
        *,
        shared_classes: Iterable[str] = SHARED_CLASSES,
        max_keys: int = MAX_KEYS,
        prefix: str = "ruang:rl:",
        cells: Cells | None = None,
    ) -> None:
        super().__init__(budgets)
        self.local = RateLimiter(self.budgets, max_keys, cells)
        self.shared_classes = frozenset(shared_classes) & set(self.budgets)
        self._script: Any = client.register_script(_GCRA)
        self._prefix = prefix
        self.redis_errors = 0

    def tighten(self, factor: float) -> None:
        """As `RateLimiter.tighten`, for the shared and the local classes."""
        super().tighten(factor)
        self.local.tighten(factor)

    def request(self, cls: str, ip: str, network: str, now: float) -> tuple[list[str], list[str]]:
        """The keys and arguments of `GCRA_LUA` for one check of a shared class (for a caller
        that runs it inside a larger script, in the same round trip: see `counted`)."""
        rule = self._rules[cls]
        keys = [f"{self._prefix}{cls}:{ip}", f"{self._prefix}{cls}:{network}"]
        args = [repr(now), repr(rule.ip_t), repr(rule.ip_tau), repr(rule.net_t), repr(rule.net_tau)]
        return keys, args

    def counted(self, cls: str, wait: float) -> float:
        """Count the outcome of a check run elsewhere (`request`); returns `wait`."""
        if wait > 0.0:
            self.refused[cls] += 1
        else:
            self.allowed[cls] += 1
        return wait

    async def check_async(self, cls: str, ip: str, network: str, now: float) -> float:
        """As `RateLimiter.check`, consulting Redis for the shared classes."""
        if cls not in self.shared_classes:
            return self.local.check(cls, ip, network, now)
        keys, args = self.request(cls, ip, network, now)
        try:
            wait = float(await self._script(keys=keys, args=args))
        except redis.RedisError as exc:
            self.redis_errors += 1
            if self.redis_errors == 1 or self.redis_errors % 1000 == 0:
                log.warning("rate limits: Redis failed (%s), deciding locally", exc)
            return self.local.check(cls, ip, network, now)
        return self.counted(cls, wait)

    def statistics(self) -> dict[str, Any]:
        """Shared-class counts, the local limiter's snapshot, and Redis failures."""
        return {
            **self._counts(),
            "local": self.local.statistics(),
            "redis_errors": self.redis_errors,
        }
