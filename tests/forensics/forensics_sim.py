"""Synthetic request streams for the recorder: players, crowds and attackers, on a fake clock."""

from __future__ import annotations

import random
import zlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ruang.forensics.recorder import TrafficRecorder

T0 = 1_800_000_000  # a fixed epoch second (2027-01-15)
SPACE = "sp1"
PART_S = 0.512

Request = tuple[float, str | None, str, str, str, str, str | None, bool]
Actor = Callable[[int, random.Random], Iterator[Request]]


def net_of(source: str) -> str:
    return source.rsplit(".", 1)[0] + ".0/24"


def addresses(count: int, networks: list[str], start: int = 1) -> list[str]:
    """`count` addresses spread round-robin over /24 prefixes like "10.1.2"."""
    return [f"{networks[i % len(networks)]}.{start + i // len(networks)}" for i in range(count)]


def prefixes(first: int, count: int, a: int = 10) -> list[str]:
    """`count` distinct /24 prefixes."""
    return [f"{a}.{(first + i) // 250}.{(first + i) % 250}" for i in range(count)]


def players(
    sources: list[str],
    start: int,
    end: int,
    ids: str,
    *,
    join: bool = True,
    ramp_s: int = 1,
    late: float = 0.0,
    regular: bool = False,
) -> Actor:
    """LL-HLS players: join once (arriving over `ramp_s`), then per 0.512 s part a blocking
    playlist request and the part, woken by the part's publication (+ network jitter).
    `regular`: timer-driven bots, one request every 0.256 s on the dot."""
    arrival = {i: start + (i * ramp_s) // max(1, len(sources)) for i in range(len(sources))}

    def act(sec: int, rng: random.Random) -> Iterator[Request]:
        for i, src in enumerate(sources):
            first = arrival[i]
            if not first <= sec < end:
                continue
            lid, net = f"{ids}{i}", net_of(src)
            if sec == first and join:
                yield (sec + 0.01 + 0.001 * (i % 50), SPACE, "join", "ok", src, net, lid, False)
            base = sec + (0.05 if sec == first else 0.0)
            for k in range(2):
                if regular:
                    t = base + k * PART_S + 0.1 + (i % 97) * 1e-3
                    yield (t, SPACE, "playlist", "ok", src, net, lid, False)
                    yield (t + 0.256, SPACE, "part", "ok", src, net, lid, False)
                    continue
                t = base + k * PART_S + rng.uniform(0.003, 0.08)
                if t >= sec + 1:
                    continue
                yield (t, SPACE, "playlist", "ok", src, net, lid, False)
                is_late = rng.random() < late
                yield (t + rng.uniform(0.002, 0.03), SPACE, "part", "ok", src, net, lid, is_late)

    return act


def hammer(
    sources: list[str],
    start: int,
    end: int,
    per_s: int,
    cls: str,
    outcomes: tuple[str, ...],
    listener: str | None = None,
    space: str | None = SPACE,
) -> Actor:
    """Each source sends `per_s` requests of one class per second, cycling through outcomes."""

    def act(sec: int, rng: random.Random) -> Iterator[Request]:
        if not start <= sec < end:
            return
        for i, src in enumerate(sources):
            for k in range(per_s):
                outcome = outcomes[(i + k) % len(outcomes)]
                t = sec + (k + rng.random()) / per_s * 0.999
                yield (t, space, cls, outcome, src, net_of(src), listener, False)

    return act


@dataclass
class Run:
    """Drives recorders second by second (requests sorted by time, split over workers)."""

    directory: Path
    workers: int = 1
    seed: int = 7
    records: list[dict[str, Any]] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.recorders = [TrafficRecorder(self.directory, "n1", w) for w in range(self.workers)]
        self.rng = random.Random(self.seed)

    def play(
        self,
        first: int,
        last: int,
        actors: list[Actor],
        signals: Callable[[int], dict[str, float]] | None = None,
    ) -> None:
        for sec in range(first, last):
            batch = sorted(r for a in actors for r in a(sec, self.rng))
            for t, space, cls, outcome, src, net, lid, late in batch:
                rec = self.recorders[zlib.crc32(src.encode()) % self.workers]
                rec.request(t, space, cls, outcome, src, net, lid, late)
            for rec in self.recorders:
                values = {"loop_lag_s": 0.002, "cpu_cores": 0.2, "shed_level": 0.0}
                values.update(signals(sec) if signals else {})
                rec.signals(sec + 0.99, **values)
                self.records += rec.flush(sec + 1.001)

    def close(self) -> None:
        for rec in self.recorders:
            rec.close()
