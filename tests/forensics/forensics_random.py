"""Randomised labelled scenarios for the incident report (issue #11): crowds and attacks drawn
from seeds, passed through a model of the guard, recorded, judged, scored against the truth.

Each seed draws a regular audience (70 s before the event, so its networks are known), then one
to three *kinds* for the 30 s event: a real crowd (spread one per network or packed behind a
carrier's NAT, partly from networks seen before, LL-HLS or segment players, natural jitter, a
few who join and never play) and attacks at 0.1×–10× of the node's capacity (`CAPACITY_RPS`):
join floods, playlist floods (sources sharing a few real tickets at a player's pace, or
hammering on their own), segment floods on stolen tickets, forged tickets (most of them refused
by the per-ticket budget before their check), cache busting, slowloris, and bot listeners on one
program's timer (spread or packed). The truth: `organic_surge` for crowds alone, `attack` with
its kinds, `mixed` for a crowd with attacks.

The guard model is the guard's order of checks with its default budgets: cache-bust and
slowloris refusals first, then the per-ticket budget (20/s, burst 60; × 0.25 in attack mode),
then the ticket's check; joins on a per-source budget (5/s, burst 30) and, in attack mode, a
proof of work that bots do not solve. Attack mode itself is `ruang.guard.attack.AttackMode`.

Run `python tests/forensics/forensics_random.py [first_seed] [count]` for the matrix.
"""

from __future__ import annotations

import logging
import math
import random
import sys
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ruang.forensics.recorder import TrafficRecorder
from ruang.forensics.report import build_report
from ruang.guard.attack import AttackMode

T0 = 1_800_000_000
SPACE = "sp1"
CALM_S = 70  # the regular audience alone: its networks are over a minute old at the event
EVENT_S = 30
CAPACITY_RPS = 400.0  # the node the attacks are scaled to (0.1×–10×)
PART_S, SEGMENT_S = 0.512, 2.048
TICKET_RATE, TICKET_BURST = 20.0, 60.0  # the guard's per-ticket budget (config defaults)
JOIN_RATE, JOIN_BURST = 5.0, 30.0  # the per-source join budget
ATTACKS = (
    "join_flood", "playlist_flood", "segment_flood", "forged_tickets", "cache_busting",
    "slowloris", "bot_listeners",
)  # fmt: skip

# (t, cls, source, network, ticket id, what the ticket is, special)
Intent = tuple[float, str, str, str, str | None, str | None, str]


@dataclass
class Scenario:
    """One drawn scenario: its truth and the actors that play it."""

    seed: int
    truth: str  # organic_surge, attack or mixed
    kinds: list[str]  # the attack kinds in it
    parts: list[str]  # a line per kind: what was drawn
    actors: list[Any] = field(default_factory=list)


class _Nets:
    """Distinct /24 prefixes handed out in blocks."""

    def __init__(self) -> None:
        self.next = 0

    def take(self, n: int) -> list[str]:
        first, self.next = self.next, self.next + n
        return [f"{10 + (first + i) // 62500}.{(first + i) // 250 % 250}.{(first + i) % 250}"
                for i in range(n)]  # fmt: skip


def _addresses(count: int, nets: list[str], rng: random.Random) -> list[str]:
    return [f"{nets[i % len(nets)]}.{1 + i // len(nets)}" for i in range(count)]


def _net(src: str) -> str:
    return src.rsplit(".", 1)[0]


class Players:
    """Real listeners: each joins once, then plays like its kind of player with its own
    latency and jitter; `dud` share join and never play; `grid`: one program's timer."""

    def __init__(self, sources: list[str], start: int, end: int, ids: str, rng: random.Random,
                 *, ramp_s: int = 10, segment_share: float = 0.0, dud: float = 0.0,
                 grid: bool = False, tickets: list[str] | None = None, ticket_kind: str = "valid",
                 join: bool = True) -> None:  # fmt: skip
        self.start, self.end, self.grid, self.join = start, end, grid, join
        self.kind = ticket_kind
        self.who = []
        for i, src in enumerate(sources):
            lid = tickets[i % len(tickets)] if tickets else f"{ids}{i}"
            self.who.append((
                src, _net(src), lid, start + rng.random() * ramp_s,
                rng.random() < segment_share, rng.random() < dud,
                rng.uniform(0.005, 0.12),  # this client's latency
            ))  # fmt: skip

    def __call__(self, sec: int, rng: random.Random) -> Iterator[Intent]:
        for src, net, lid, arrive, segments, dud, latency in self.who:
            if not (arrive < sec + 1 and sec < self.end):
                continue
            if self.join and arrive >= sec:
                yield (arrive, "join", src, net, None, None, lid)
            if dud:
                continue
            period = SEGMENT_S if segments else PART_S
            k = math.ceil((max(arrive, sec) - self.start) / period)
            while (t0 := self.start + k * period) < sec + 1:
                k += 1
                if self.grid:  # every bot ticks on the same clock, to the millisecond
                    t = t0 + 0.1
                    yield (t, "playlist", src, net, lid, self.kind, "")
                    yield (t + 0.256, "part", src, net, lid, self.kind, "")
                    continue
                t = t0 + latency + rng.expovariate(1 / 0.03)
                cls = "segment" if segments else "part"
                yield (t, "playlist", src, net, lid, self.kind, "")
                t += rng.uniform(0.002, 0.04) + latency / 2
                yield (t, cls, src, net, lid, self.kind, "")


class Hammer:
    """Sources each sending `per_s` requests of one class a second, jittered uniformly."""

    def __init__(self, sources: list[str], start: int, end: int, per_s: float, cls: str,
                 tickets: list[str] | None = None, kind: str | None = None,
                 special: str = "") -> None:  # fmt: skip
        self.sources, self.start, self.end, self.per_s = sources, start, end, per_s
        self.cls, self.tickets, self.kind, self.special = cls, tickets, kind, special

    def __call__(self, sec: int, rng: random.Random) -> Iterator[Intent]:
        if not self.start <= sec < self.end:
            return
        for i, src in enumerate(self.sources):
            n = int(self.per_s) + (rng.random() < self.per_s % 1)
            tid = self.tickets[i % len(self.tickets)] if self.tickets else None
            for _ in range(n):
                yield (sec + rng.random(), self.cls, src, _net(src), tid, self.kind, self.special)


def _log_uniform(rng: random.Random, lo: float, hi: float) -> float:
    return math.exp(rng.uniform(math.log(lo), math.log(hi)))


def draw(seed: int) -> Scenario:
    """The scenario of a seed."""
    rng = random.Random(seed)
    nets = _Nets()
    start, end = T0 + CALM_S, T0 + CALM_S + EVENT_S
    n_audience = rng.randint(20, 60)
    audience_nets = nets.take(n_audience)
    actors: list[Any] = [
        # listening since before the records begin (a minute and more before the event)
        Players(
            _addresses(n_audience, audience_nets, rng),
            T0 - 20,
            end,
            "a",
            rng,
            ramp_s=20,
            segment_share=rng.uniform(0, 0.3),
        )  # fmt: skip
    ]
    shape = rng.random()
    crowd = shape < 0.55
    n_attacks = (1 if rng.random() < 0.75 else 2) if shape >= 0.2 else 0
    if not crowd and n_attacks == 0:
        n_attacks = 1
    kinds = rng.sample(ATTACKS, n_attacks)
    parts = [f"audience {n_audience}"]
    if crowd:
        count = rng.randint(100, 500)
        per_net = 1 if rng.random() < 0.5 else rng.choice([2, 5, 40, 150])
        known = rng.uniform(0, 0.7) if per_net == 1 else 0.0
        n_known = int(count * known)
        fresh = nets.take(max(1, (count - n_known) // per_net))
        sources = _addresses(n_known, audience_nets, rng) + _addresses(count - n_known, fresh, rng)
        # addresses from the audience's networks must not be the audience's own
        sources = [s if i >= n_known else f"{_net(s)}.{100 + i // n_audience}"
                   for i, s in enumerate(sources)]  # fmt: skip
        seg = rng.uniform(0, 0.5)
        actors.append(Players(sources, start, end, "c", rng, ramp_s=rng.randint(3, 15),
                              segment_share=seg, dud=rng.uniform(0, 0.15)))  # fmt: skip
        parts.append(f"crowd {count}, {per_net}/network, {known:.0%} known, {seg:.0%} segments")
    for kind in kinds:
        factor = _log_uniform(rng, 0.1, 10.0)
        rps = factor * CAPACITY_RPS
        actor, what = _attack(kind, rps, rng, nets, start, end)
        actors.append(actor)
        parts.append(f"{kind} {factor:.2f}× capacity ({rps:.0f}/s): {what}")
    truth = "mixed" if crowd and kinds else "attack" if kinds else "organic_surge"
    return Scenario(seed, truth, kinds, parts, actors)


def _attack(kind: str, rps: float, rng: random.Random, nets: _Nets, start: int,
            end: int) -> tuple[Any, str]:  # fmt: skip
    spread = rng.choice([1, 1, 4, 25, 100])  # sources per network

    def sources(n: int) -> list[str]:
        return _addresses(n, nets.take(max(1, n // spread)), rng)

    if kind == "join_flood":
        per_s = rng.uniform(3, 20)
        n = max(5, int(rps / per_s))
        return Hammer(sources(n), start, end, per_s, "join"), f"{n} sources × {per_s:.0f}/s"
    if kind == "playlist_flood":
        if rng.random() < 0.5:  # hundreds of sources at a player's pace on a few real tickets
            n, k = max(20, int(rps / 4)), rng.randint(1, 5)
            tickets = [f"shared{i}" for i in range(k)]
            return (Players(sources(n), start, end, "p", rng, ramp_s=5, tickets=tickets,
                            join=False), f"{n} sources on {k} shared tickets")  # fmt: skip
        per_s = rng.uniform(25, 80)
        n = max(3, int(rps / per_s))
        own = [f"own{i}" for i in range(n)]
        return (Hammer(sources(n), start, end, per_s, "playlist", own, "valid"),
                f"{n} sources × {per_s:.0f}/s on their own tickets")  # fmt: skip
    if kind == "segment_flood":
        per_s, k = rng.uniform(25, 80), rng.randint(1, 3)
        n = max(3, int(rps / per_s))
        stolen = [f"stolen{i}" for i in range(k)]
        return (Hammer(sources(n), start, end, per_s, "part", stolen, "valid"),
                f"{n} sources × {per_s:.0f}/s on {k} stolen tickets")  # fmt: skip
    if kind == "forged_tickets":
        n = max(20, int(rps / 4))
        k = rng.choice([n, max(1, n // 20), max(1, n // 200)])
        forged = [f"forged{i}" for i in range(k)]
        return (Players(sources(n), start, end, "f", rng, ramp_s=5, tickets=forged,
                        ticket_kind="forged", join=False),
                f"{n} sources at a player's pace on {k} forged tickets")  # fmt: skip
    if kind == "cache_busting":
        per_s = rng.uniform(2, 20)
        n = max(3, int(rps / per_s))
        return (Hammer(sources(n), start, end, per_s, "playlist", special="cache_bust"),
                f"{n} sources × {per_s:.0f}/s")  # fmt: skip
    if kind == "slowloris":
        per_s = rng.uniform(0.5, 3)
        n = max(3, int(rps / 20 / per_s))  # connections held open, not requests
        return (Hammer(sources(n), start, end, per_s, "other", special="timeout"),
                f"{n} sources × {per_s:.1f} timeouts/s")  # fmt: skip
    n = max(40, int(rps / 4))  # bot listeners: real tickets, one program's timer
    return (
        Players(sources(n), start, end, "b", rng, ramp_s=5, grid=True),
        f"{n} bots, {spread}/network, on a timer grid",
    )


class GuardModel:
    """The guard's checks in its order, with its default budgets, and its attack mode."""

    def __init__(self) -> None:
        self.buckets: dict[tuple[str, str], list[float]] = {}
        self.attack = AttackMode()
        self.second: dict[str, int] = {}

    def _take(self, key: tuple[str, str], rate: float, burst: float, t: float) -> bool:
        factor = self.attack.limit_factor
        rate, burst = rate * factor, max(1.0, burst * factor)
        b = self.buckets.get(key)
        if b is None:
            b = self.buckets[key] = [burst, t]
        b[0] = min(burst, b[0] + (t - b[1]) * rate)
        b[1] = t
        if b[0] >= 1.0:
            b[0] -= 1.0
            return True
        return False

    def answer(self, intent: Intent) -> tuple[str, str | None, str | None]:
        """(outcome, listener, carried) of one request."""
        t, cls, src, _, tid, kind, special = intent
        if special in ("cache_bust", "timeout"):
            return special, None, None
        if cls == "join":
            if not special:  # a bot: no listener id to give, never solves a proof
                if not self._take(("join", src), JOIN_RATE, JOIN_BURST, t):
                    return "rate_limited", None, None
                return ("pow_required" if self.attack.active else "ok"), None, None
            return "ok", special, None
        if tid is not None:
            if not self._take(("ticket", tid), TICKET_RATE, TICKET_BURST, t):
                return "rate_limited", None, kind
            if kind == "forged":
                return "ticket_forged", None, None
            return "ok", tid, None
        return "ticket_missing", None, None

    def tick(self, now: float, total: dict[str, Any]) -> None:
        out: dict[str, int] = {}
        for per in total.get("by", {}).values():
            for o, n in per.items():
                out[o] = out.get(o, 0) + n
        refused = sum(n for o, n in out.items() if o not in ("ok", "wait", "shed", "pow_required"))
        ages = total.get("net_age") or []
        self.attack.update(
            now, requests=int(total.get("req", 0)), refused=refused,
            ticket_failures=sum(out.get(o, 0) for o in ("ticket_missing", "ticket_forged",
                                                          "ticket_expired")),
            rate_limited=out.get("rate_limited", 0), pow_failures=out.get("pow_failed", 0),
            cache_busts=out.get("cache_bust", 0), joins=out.get("ok", 0),
            join_capacity_per_s=CAPACITY_RPS / 10, shed_level=0,
            new_network_share=(ages[0] / sum(ages)) if ages and sum(ages) else None,
        )  # fmt: skip


def play(scenario: Scenario, directory: Path) -> list[dict[str, Any]]:
    """Run a scenario through the guard model into a recorder; its records."""
    rng = random.Random(scenario.seed * 7919 + 1)
    rec = TrafficRecorder(directory, "n1", 0)
    guard = GuardModel()
    records: list[dict[str, Any]] = []
    for sec in range(T0, T0 + CALM_S + EVENT_S):
        batch = sorted(i for a in scenario.actors for i in a(sec, rng))
        for intent in batch:
            t, cls, src, net, tid, _, special = intent
            outcome, listener, carried = guard.answer(intent)
            space = None if special == "timeout" else SPACE
            if cls == "join" and outcome == "ok":
                tid = None
            rec.request(t, space, cls, outcome, src, net, listener, False, tid, carried)
        rec.signals(sec + 0.99, loop_lag_s=0.002, shed_level=0.0,
                    attack_mode=float(guard.attack.active))  # fmt: skip
        new = rec.flush(sec + 1.001)
        for r in new:
            guard.tick(sec + 1.0, r["total"])
        records += new
    rec.close()
    return records


def judge(scenario: Scenario, records: list[dict[str, Any]]) -> dict[str, Any]:
    """The report's verdict on the event (the incident overlapping it most), and whether it
    is right: the verdict is the truth and, for attacks, a true kind is named."""
    start, end = T0 + CALM_S, T0 + CALM_S + EVENT_S
    incs = build_report(records)["incidents"]
    best = max(incs, key=lambda i: min(end, i["end"] + 1) - max(start, i["start"]), default=None)
    grid = None
    if best is None or best["end"] < start:
        got, kinds, named = "none", [], []
    else:
        got, kinds, grid = best["verdict"], list(best["kinds"]), best["grid"]
        named = [k for k in kinds if k in scenario.kinds]
    right = got == scenario.truth and (not scenario.kinds or bool(named))
    return {"seed": scenario.seed, "truth": scenario.truth, "kinds": scenario.kinds,
            "verdict": got, "named": kinds, "right": right, "grid": grid,
            "false_attack": scenario.truth == "organic_surge" and got in ("attack", "mixed"),
            "parts": scenario.parts}  # fmt: skip


def matrix(seeds: range, directory: Path | None = None) -> list[dict[str, Any]]:
    """Every seed's judged scenario."""
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for seed in seeds:
            d = (directory or Path(tmp)) / f"s{seed}"
            scenario = draw(seed)
            rows.append(judge(scenario, play(scenario, d)))
    return rows


def table(rows: list[dict[str, Any]]) -> str:
    """The confusion matrix (truth × verdict) and the misses, as text."""
    verdicts = ["organic_surge", "attack", "mixed", "capacity_failure", "inconclusive", "none"]
    truths = sorted({r["truth"] for r in rows})
    lines = ["truth \\ verdict | " + " | ".join(verdicts) + " | right"]
    for t in truths:
        mine = [r for r in rows if r["truth"] == t]
        cells = [str(sum(1 for r in mine if r["verdict"] == v)) for v in verdicts]
        right = sum(r["right"] for r in mine)
        lines.append(f"{t} | " + " | ".join(cells) + f" | {right}/{len(mine)}")
    right = sum(r["right"] for r in rows)
    lines.append(f"accuracy {right}/{len(rows)}; real audiences called an attack: "
                 f"{sum(r['false_attack'] for r in rows)}")  # fmt: skip
    for r in rows:
        if not r["right"]:
            lines.append(f"  miss seed {r['seed']}: {r['truth']} {r['kinds']} → {r['verdict']} "
                         f"{r['named']} ({'; '.join(r['parts'])})")  # fmt: skip
    return "\n".join(lines)


if __name__ == "__main__":
    logging.disable(logging.WARNING)  # attack mode's own log lines
    first = int(sys.argv[1]) if len(sys.argv) > 1 else 1
    count = int(sys.argv[2]) if len(sys.argv) > 2 else 40
    print(table(matrix(range(first, first + count))))
