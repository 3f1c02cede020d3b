"""Who talks when on a benchmark stage: talk spurts, as (start, end) seconds within a period
that repeats.

Two patterns:
- `conversation`: turns, one main talker at a time (1.5–6 s, a short pause between turns),
  sometimes a second person cutting in for under 1.5 s (a laugh, "yes", a question). Never more
  than two at once, everyone else silent — a real stage, where most of the 13 listen.
- `all`: everyone talks all the time — the worst case for a mix-minus server, since every
  active talker hears a mix of their own, which must be encoded for them alone.
"""

from __future__ import annotations

import random
from bisect import bisect_right

Spurts = list[tuple[float, float]]  # (start_s, end_s) within the period, sorted, disjoint

PATTERNS = ("conversation", "all")
TURN_S = (1.5, 6.0)  # a main talker's turn
PAUSE_S = (0.2, 1.2)  # silence between two turns
CUT_IN_P = 0.35  # chance that someone else cuts in during a turn
CUT_IN_S = (0.4, 1.5)  # how long they talk over the main talker


def conversation(people: int, period_s: float, seed: int = 0) -> list[Spurts]:
    """Each person's talk spurts over one `period_s`: turns of one main talker, sometimes
    with a second person cutting in inside the turn, so at most two talk at once."""
    rng = random.Random(seed)
    spurts: list[Spurts] = [[] for _ in range(people)]
    if people == 0:
        return spurts
    t = rng.uniform(*PAUSE_S)
    previous = -1
    while True:
        length = rng.uniform(*TURN_S)
        if t + length > period_s:
            break
        main = rng.choice([i for i in range(people) if i != previous] or [0])
        spurts[main].append((t, t + length))
        others = [i for i in range(people) if i != main]
        if others and rng.random() < CUT_IN_P:
            cut = min(rng.uniform(*CUT_IN_S), length)
            start = rng.uniform(t, t + length - cut)
            spurts[rng.choice(others)].append((start, start + cut))
        previous = main
        t += length + rng.uniform(*PAUSE_S)
    for s in spurts:
        s.sort()
    return spurts


def all_talking(people: int, period_s: float) -> list[Spurts]:
    """Everyone talks throughout."""
    return [[(0.0, period_s)] for _ in range(people)]


def pattern(name: str, people: int, period_s: float, seed: int = 0) -> list[Spurts]:
    """The spurts of a pattern named in PATTERNS."""
    if name == "conversation":
        return conversation(people, period_s, seed)
    if name == "all":
        return all_talking(people, period_s)
    raise ValueError(f"unknown talk pattern {name!r}; choose one of {', '.join(PATTERNS)}")


def is_talking(spurts: Spurts, period_s: float, t_s: float) -> bool:
    """Whether someone with these spurts talks at `t_s` seconds (any value: the period repeats)."""
    phase = t_s % period_s
    i = bisect_right(spurts, (phase, float("inf"))) - 1
    return i >= 0 and spurts[i][0] <= phase < spurts[i][1]


def talkers_at_once(
    everyone: list[Spurts], period_s: float, step_s: float = 0.02
) -> dict[str, float]:
    """How many talk at once, sampled every `step_s` over one period: the most, the mean, and
    the share of time nobody talks."""
    steps = max(1, round(period_s / step_s))
    counts = [sum(is_talking(s, period_s, k * step_s) for s in everyone) for k in range(steps)]
    return {
        "max": max(counts),
        "mean": round(sum(counts) / steps, 2),
        "nobody_share": round(sum(1 for c in counts if c == 0) / steps, 3),
    }
