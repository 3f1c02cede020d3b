"""The delivery worker's guard: who is asking (trusted edges' forwarded address), per-source
limits before any work, proof-of-work on join under pressure, attack mode, and the traffic
recorder that keeps the evidence (docs/GUARD.md, docs/FORENSICS.md).

Every request is described once from its method and path (`describe`), checked against its
source's budget for its class (`limit`), and recorded with its outcome (`record`) when it is
answered. Once a second `tick` closes the recorder's second, judges it for attack mode, sets
the proof-of-work difficulty and the limits' tightness, and hands the worker's signals to the
next record.
"""

from __future__ import annotations

import ipaddress
import logging
import math
from functools import lru_cache
from pathlib import Path
from typing import Any, NamedTuple

from ruang.config import Config
from ruang.delivery.hls import HlsResponse, encode_headers
from ruang.forensics import TrafficRecorder
from ruang.guard.admission import Admission
from ruang.guard.attack import AttackMode
from ruang.guard.board import Board
from ruang.guard.cells import NodeMemory
from ruang.guard.network import network_of
from ruang.guard.pow import LOCK_BYTE as POW_LOCK
from ruang.guard.pow import DifficultyController, ProofOfWork
from ruang.guard.ratelimit import Budget, RateLimiter, SharedRateLimiter
from ruang.guard.shedding import Shedder
from ruang.guard.tickets import TicketSigner

log = logging.getLogger(__name__)

# the recorder's request classes -> the limiter's budgets
_BUDGET = {
    "join": "join",
    "poll": "poll",
    "playlist": "playlist",
    "replay": "playlist",
    "part": "media",
    "segment": "media",
    "init": "media",
    "page": "page",
    "api": "api",
    "whip": "whip",
    "other": "page",
    "recording": "vod",
    "vod": "vod",
}
# error codes the server answers with -> the recorder's outcomes (others: by status)
_OUTCOMES = {
    "proof_of_work_required": "pow_required",
    "proof_of_work_failed": "pow_failed",
    "busy": "shed",
    "rate_limited": "rate_limited",
    "cache_bust": "cache_bust",
    "too_large": "too_large",
    "header_too_large": "too_large",
    "not_found": "not_found",
    "ticket_missing": "ticket_missing",
    "ticket_malformed": "ticket_forged",
    "ticket_forged": "ticket_forged",
    "ticket_expired": "ticket_expired",
}
# client-fault refusals: evidence for attack mode (not shed 503s, not the waiting room's 202s,
# not a 428 asking for proof-of-work, which every honest joiner meets once under pressure)
_REFUSED = frozenset(
    {
        "pow_failed",
        "rate_limited",
        "cache_bust",
        "too_large",
        "not_found",
        "bad_request",
        "ticket_missing",
        "ticket_forged",
        "ticket_expired",
        "timeout",
    }
)
_TICKET_FAILURES = ("ticket_missing", "ticket_forged", "ticket_expired")
# One ticket, one player: an LL-HLS player asks ~4 times a second (a blocking playlist reload
# and a part per 0.512 s), more while it starts or catches up: 5x that, and a start's burst
# (Config.listener_rate_per_s, listener_burst: 20/s, 60).
_UNLIMITED = Budget(1e9, 10**9)  # a ticket has no network: `check_key` checks the one key
MAX_RETRY_S = 3600  # the longest Retry-After a 429 names
CLIENTS_KEPT = 65_536  # forwarded addresses remembered with their network (then forgotten)
_TICKETED = frozenset({"playlist", "replay", "part", "segment", "init"})
# without a ticket, these are an ended space's public replay (or refused: media of a live space
# needs a ticket) and the recording: the per-source "vod" budget, not a player's pace
_VOD = frozenset({"replay", "part", "segment", "init", "recording"})


class Described(NamedTuple):
    """What a request is, from its path alone."""

    cls: str  # the recorder's class: join, playlist, replay, part, segment, init, page, api, …
    space: str | None
    ticket: str | None


def describe(path: str) -> Described:
    """The class, space and ticket of a request path (no work beyond splitting it)."""
    return describe_parts(path.split("/"))


def describe_parts(parts: list[str]) -> Described:
    """`describe` of a path already split at its slashes (the server splits it once)."""
    head = parts[1] if len(parts) > 1 else ""
    if head == "hls" and len(parts) >= 4:
        name = parts[-1]
        ticket = parts[4] if len(parts) == 6 and parts[3] == "t" else None
        if name.endswith(".m4s"):
            cls = "part" if name.count(".") == 2 else "segment"
        elif name == "live.m3u8":
            cls = "playlist"
        elif name == "replay.m3u8":
            cls = "replay"
        elif name == "init.mp4":
            cls = "init"
        elif name == "recording.m4a":
            cls = "recording"
        else:
            cls = "other"
        return Described(cls, parts[2], ticket)
    if head == "api" and len(parts) >= 4 and parts[2] == "spaces":
        return Described("join" if parts[-1] == "join" else "api", parts[3], None)
    if head == "api":
        return Described("api", None, None)
    if head == "whip":
        return Described("whip", parts[2] if len(parts) > 2 else None, None)
    if head == "s" and len(parts) >= 3:
        return Described("page", parts[2], None)
    return Described("page", None, None)


def outcome_of(status: int, code: str = "") -> str:
    """The recorder's outcome for an answer: its error code's, else its status class's."""
    if code:
        known = _OUTCOMES.get(code)
        if known is not None:
            return known
    if status < 400:
        return "wait" if status == 202 else "ok"
    if status == 503:
        return "shed"
    if status == 404:
        return "not_found"
    if status in (413, 431):
        return "too_large"
    if status == 429:
        return "rate_limited"
    return "bad_request" if status < 500 else "error"


def _rate_limited(wait_s: float) -> HlsResponse:
    return _too_many(min(MAX_RETRY_S, max(1, math.ceil(wait_s))))


@lru_cache(maxsize=MAX_RETRY_S)
def _too_many(seconds: int) -> HlsResponse:
    """A 429 telling the client to come back in `seconds` (built once per value: a flood of
    refusals costs no encoding)."""
    body = (
        b'{"error": "rate_limited", "message": "Too many requests from your network: try again '
        b'in %d s."}' % seconds
    )
    headers = [
        ("Content-Type", "application/json"),
        ("Cache-Control", "no-store"),
        ("Retry-After", str(seconds)),
        ("Access-Control-Allow-Origin", "*"),
        ("Access-Control-Expose-Headers", "Retry-After"),
    ]
    return HlsResponse(429, body, encode_headers(headers), "rate_limited")


def _trusted(cidrs: tuple[str, ...]) -> tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...]:
    return tuple(ipaddress.ip_network(c, strict=False) for c in cidrs)


def ticketed(cls: str) -> bool:
    """True for the request classes a listener's ticket rides on."""
    return cls in _TICKETED


def budget_class(d: Described) -> str:
    """The limiter class a request without a ticket is charged to: "vod" for the public
    replay and the recording, else its own class's."""
    return "vod" if d.ticket is None and d.cls in _VOD else d.cls


class Guard:
    """One delivery worker's defences and its evidence. With the node's shared memory, the
    budgets, attack mode and difficulty are the node's, whatever its worker count."""

    def __init__(
        self,
        config: Config,
        key: bytes,
        admission: Admission,
        shedder: Shedder,
        worker: int,
        shared: SharedRateLimiter | None = None,
        memory: NodeMemory | None = None,
        signer: TicketSigner | None = None,
    ) -> None:
        """`shared`: the budgets several nodes share (Redis), None on one node; `memory`: what
        the node's workers share (None: this worker's own, as a node of one worker); `signer`:
        the gate's, to tell what a rate-limited request's ticket was (`carried`)."""
        self.config = config
        self.signer = signer
        self.admission = admission
        self.shedder = shedder
        per_ticket = Budget(config.listener_rate_per_s, config.listener_burst)
        memory = memory if memory is not None else NodeMemory()
        self.per_listener = RateLimiter(
            {"ticket": (per_ticket, _UNLIMITED)}, cells=memory.tickets()
        )
        self.shared = shared
        self.limiter = shared.local if shared is not None else RateLimiter(cells=memory.limits())
        self.board = Board(memory.board(), worker)
        self.pow = ProofOfWork(key, used=memory.solutions(), lock=memory.lock(POW_LOCK))
        self.difficulty = DifficultyController()
        self.attack = AttackMode()
        self.recorder = TrafficRecorder(Path(config.data_dir) / "forensics", config.node, worker)
        self._trusted = _trusted(config.trusted_proxies)
        self.trusts_edges = bool(self._trusted)
        self._trusted_hosts: dict[str, bool] = {}
        self._clients: dict[bytes, tuple[str, str]] = {}  # X-Forwarded-For -> (client, network)
        self._asks: dict[str, float] = {"pow_difficulty": 0, "limit_factor": 1.0}
        self.joins_passed = 0  # joins that got past proof-of-work (all, while it sleeps)
        self._joins_mark = 0

    # -- per request ---------------------------------------------------------------------------
    def trusted(self, peer: str) -> bool:
        """True for an address of the operator's own infrastructure (`--trusted-proxy`): its
        X-Forwarded-For names the client, and without one it is not a client at all (another
        node fetching media for its listeners, the edge's own checks)."""
        if not self._trusted:
            return False
        known = self._trusted_hosts.get(peer)
        if known is None:
            try:
                ip = ipaddress.ip_address(peer)
                known = any(ip in net for net in self._trusted)
            except ValueError:
                known = False
            if len(self._trusted_hosts) < 4096:
                self._trusted_hosts[peer] = known
        return known

    def source(self, peer: str, forwarded: bytes | None) -> str:
        """The client's address: the peer's, or the one a trusted edge forwarded."""
        if forwarded is None or not self.trusted(peer):
            return peer
        return forwarded.decode("latin-1").rsplit(",", 1)[-1].strip() or peer

    def client(self, peer: str, forwarded: bytes) -> tuple[str, str]:
        """The client a trusted edge (`peer`) forwarded, and its network: remembered, as an
        edge forwards the same clients over and over (the peer's own when the header names
        nobody)."""
        known = self._clients.get(forwarded)
        if known is None:
            ip = forwarded.decode("latin-1").rsplit(",", 1)[-1].strip()
            if not ip:
                return peer, network_of(peer)
            if len(self._clients) >= CLIENTS_KEPT:
                self._clients.clear()
            known = self._clients[forwarded] = (ip, network_of(ip))
        return known

    def limit_listener(self, ticket: str, now: float) -> HlsResponse | None:
        """A 429 when one ticket asks for far more than one player does (a ticket shared by a
        crowd of bots); the ticket's listener id is the key (a forged one is refused anyway)."""
        return self.limit_listener_id(ticket.split(".", 1)[0], now)

    def limit_listener_id(self, listener: str, now: float) -> HlsResponse | None:
        """`limit_listener` with the ticket's listener id already split off."""
        wait = self.per_listener.check_key("ticket", listener, now)
        return None if wait <= 0.0 else _rate_limited(wait)

    def limit(self, cls: str, ip: str, network: str, now: float) -> HlsResponse | None:
        """A 429 when this source has spent its budget for this class, else None."""
        wait = self.limiter.check(_BUDGET[cls], ip, network, now)
        return None if wait <= 0.0 else _rate_limited(wait)

    def shares(self, cls: str) -> bool:
        """True if this class's budgets live in Redis (check with `limit_async`)."""
        return self.shared is not None and _BUDGET[cls] in self.shared.shared_classes

    async def limit_async(self, cls: str, ip: str, network: str, now: float) -> HlsResponse | None:
        """`limit`, with the budget shared by every node when the class is shared."""
        if self.shared is None:
            return self.limit(cls, ip, network, now)
        wait = await self.shared.check_async(_BUDGET[cls], ip, network, now)
        return None if wait <= 0.0 else _rate_limited(wait)

    def shared_request(
        self, cls: str, ip: str, network: str, now: float
    ) -> tuple[list[str], list[str]]:
        """The Redis script's keys and arguments for a shared class's check, for a caller that
        runs it in a larger script (`shared_result` then counts it); needs `shares(cls)`."""
        assert self.shared is not None
        return self.shared.request(_BUDGET[cls], ip, network, now)

    def shared_result(self, cls: str, wait: float) -> HlsResponse | None:
        """Count a `shared_request` check's outcome; a 429 when it was over budget."""
        assert self.shared is not None
        self.shared.counted(_BUDGET[cls], wait)
        return None if wait <= 0.0 else _rate_limited(wait)

    def record(
        self,
        now: float,
        d: Described,
        outcome: str,
        ip: str,
        network: str,
        listener: str | None = None,
        late: bool = False,
        ticket: str | None = None,
        carried: str | None = None,
    ) -> None:
        """One answered request, for the evidence (`late`: media the player waited too long
        for; `ticket`: the listener id its ticket names; `carried`: what a request refused by
        a rate limit carried — its ticket "valid", "expired" or "forged")."""
        self.recorder.request(
            now, d.space, d.cls, outcome, ip, network, listener, late, ticket, carried
        )

    def carried(self, ticket: str, space: str, now: float) -> str | None:
        """What a request refused before its ticket was checked carried: "valid", "expired"
        or "forged" (None without a signer). A good ticket's check is cached."""
        return None if self.signer is None else self.signer.classify(ticket, space, now)

    # -- once a second ---------------------------------------------------------------------------
    def tick(self, now: float) -> None:
        """Close the recorder's finished seconds; judge them; set difficulty and limits."""
        joins = self.joins_passed - self._joins_mark
        self._joins_mark = self.joins_passed
        capacity = self.admission.limits.joins_per_s
        try:
            records = self.recorder.flush(now)
        except OSError as exc:  # the evidence is worth a warning, not the worker
            log.warning("traffic recorder could not write: %s", exc)
            records = []
        mine: dict[str, float] = {"joins": joins}
        for record in records[-1:]:  # the latest finished second
            total = record.get("total", {})
            by: dict[str, dict[str, int]] = total.get("by", {})
            outcomes: dict[str, int] = {}
            for per in by.values():
                for outcome, n in per.items():
                    outcomes[outcome] = outcomes.get(outcome, 0) + n
            ages = total.get("net_age") or []
            mine.update(
                requests=int(total.get("req", 0)),
                refused=sum(n for o, n in outcomes.items() if o in _REFUSED),
                ticket_failures=sum(outcomes.get(o, 0) for o in _TICKET_FAILURES),
                rate_limited=outcomes.get("rate_limited", 0),
                pow_failures=outcomes.get("pow_failed", 0),
                cache_busts=outcomes.get("cache_bust", 0),
                new_networks=ages[0] if ages else 0,
                networks=sum(ages),
            )
        # the node's second: every worker's latest, so attack mode and the difficulty judge
        # the node's traffic whatever its worker count (guard.board)
        second = float(math.floor(now) - 1)
        self.board.post(second, {**mine, **self._asks})
        node = self.board.totals(now)
        if records:
            self.attack.update(
                now,
                requests=int(node["requests"]),
                refused=int(node["refused"]),
                ticket_failures=int(node["ticket_failures"]),
                rate_limited=int(node["rate_limited"]),
                pow_failures=int(node["pow_failures"]),
                cache_busts=int(node["cache_busts"]),
                joins=int(node["joins"]),
                join_capacity_per_s=capacity,
                shed_level=self.shedder.level,
                new_network_share=(
                    node["new_networks"] / node["networks"] if node["networks"] else None
                ),
            )
        wanted = self.difficulty.update(
            now,
            joins_per_s=node["joins"],
            join_capacity_per_s=capacity,
            waiting=self.admission.waiting(),
            shed_level=self.shedder.level,
            attack=self.attack.active,
        )
        self._asks = {
            "pow_difficulty": min(max(wanted, self.attack.pow_floor), self.config.pow_max_bits),
            "limit_factor": self.attack.limit_factor,
        }
        self.board.post(second, {**mine, **self._asks})
        # the strictest any worker asks for: one difficulty and one tightness for the node
        # (the same evidence gives the same answer; this settles the rest)
        bits, factor = self.board.strictest(now)
        self.pow.difficulty = min(bits, self.config.pow_max_bits)
        (self.shared or self.limiter).tighten(factor)
        self.per_listener.tighten(factor)
        self.recorder.signals(
            now,
            loop_lag_s=self.shedder.lag_s,
            cpu_cores=self.shedder.cpu_share,
            shed_level=self.shedder.level,
            attack_mode=float(self.attack.active),
            pow_difficulty=self.pow.difficulty,
            admitted=self.admission.admitted,
            waiting=self.admission.waiting(),
            joins_capacity_per_s=capacity,
        )

    def statistics(self) -> dict[str, Any]:
        """What this worker reports to the media process (for /metrics and the dashboard)."""
        rec = self.recorder.statistics()
        return {
            "attack": self.attack.statistics(),
            "attack_changes": list(self.attack.changes)[-20:],
            "pow": {"difficulty": self.pow.difficulty, **self.pow.statistics()},
            "limits": self._limits(),
            "recorder": {k: v for k, v in rec.items() if isinstance(v, int | float)},
            "chain_head": rec.get("chain_head"),
        }

    def _limits(self) -> dict[str, Any]:
        local = self.limiter.statistics()
        per_listener = self.per_listener.statistics().get("refused", {})
        local["refused"] = {**local.get("refused", {}), **per_listener}
        if self.shared is None:
            return local
        shared = self.shared.statistics()
        refused = dict(local.get("refused", {}))
        for cls, n in shared.get("refused", {}).items():
            refused[cls] = refused.get(cls, 0) + n
        return {**local, "refused": refused, "redis_errors": shared.get("redis_errors", 0)}

    def close(self) -> None:
        """Write what is left of the evidence."""
        self.recorder.close()


def summarize(reports: list[dict[str, Any]]) -> dict[str, Any]:
    """Every worker's guard report (from `Guard.statistics`) as one node-wide view, for the
    host's dashboard: attack mode on if any worker is in it, the highest difficulty, refusals
    added up, and the latest changes."""
    guards = [r for r in reports if isinstance(r, dict)]
    active = [g["attack"] for g in guards if g.get("attack", {}).get("active")]
    changes = sorted(
        (c for g in guards for c in g.get("attack_changes", [])), key=lambda c: c.get("time", 0)
    )
    return {
        "attack_mode": bool(active),
        "since": max((a.get("since") or 0 for a in active), default=None),
        "reason": active[0].get("reason") if active else "No sign of an attack.",
        "pow_difficulty": max((g.get("pow", {}).get("difficulty", 0) for g in guards), default=0),
        "rate_limited": sum(sum(g.get("limits", {}).get("refused", {}).values()) for g in guards),
        "changes": changes[-10:],
    }
