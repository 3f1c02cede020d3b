"""Per-second traffic features: computed from one worker's counters, merged across workers.

`summarise` turns the raw counters a `TrafficRecorder` kept for one second and one scope (a
space, or the whole worker) into the JSON dict stored in a record; `merge` combines the dicts
of several workers and nodes for the same second. Everything here is pure.

Merging rules (workers share the port, so each sees a random split of the connections):
counts add up; distinct counts (sources, networks, listeners) add up too, which over-counts
a source that reached two workers in the same second (an upper bound); source entropy is
recomputed exactly from the summed `n` and `clog` (Σ c·log2 c) — exact when workers see
disjoint sources; per-source rate percentiles and the top-1 % share are combined as a
request-weighted mean of the workers' figures (each worker's distribution is a sample of
the node's), maxima as the maximum.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from typing import Any

MEDIA = ("part", "segment", "init")  # classes that carry audio (or its header)
GROUPS = ("join", "playlist", "media")  # per-source rates are also kept for these groups
TICKET_FAILURES = ("ticket_missing", "ticket_forged", "ticket_expired")
FAILURE_KINDS = {  # record field -> outcomes counted in it
    "ticket": TICKET_FAILURES,
    "forged": ("ticket_forged",),
    "pow": ("pow_failed",),
    "pow_required": ("pow_required",),
    "cache_bust": ("cache_bust",),
    "timeout": ("timeout",),
    "shed": ("shed",),
    "rate_limited": ("rate_limited",),
    "bad": ("bad_request", "too_large", "not_found"),
}
# Signals combined across workers by their maximum (levels and node-wide figures); any other
# signal is summed (per-worker amounts such as cpu_cores or admitted).
MAX_SIGNALS = frozenset(
    {"loop_lag_s", "shed_level", "attack_mode", "pow_difficulty", "waiting", "joins_capacity_per_s"}
)
AGE_EDGES_S = (60, 600, 3600, 86400)  # network age buckets: <1 min, <10 min, <1 h, <1 d, older
AGE_BUCKETS = len(AGE_EDGES_S) + 1
PACKED_LISTENERS = 8  # a new network with this many active listeners in one second is packed
GAP_BINS_PER_S = 100  # listeners' gaps between requests are counted in 10 ms bins…
GAP_BINS = 100  # …up to 1 s (the last bin holds every longer gap)
HOT_TICKET = 16  # requests on one ticket in one second past which it is "hot": 2× the paced max
SHARED_FIELDS = (
    "tix", "src", "net", "req", "refused", "playlist", "media",
    "hot_tix", "hot_req", "hot_playlist", "hot_media",
)  # fmt: skip
TOP_KEPT = 3  # heaviest sources and networks quoted per second


def group_of(cls: str) -> str | None:
    """The rate group of a request class (join, playlist, media), or None."""
    if cls in MEDIA:
        return "media"
    if cls == "join" or cls == "playlist":
        return cls
    return None


def age_bucket(age_s: float) -> int:
    """The AGE_EDGES_S bucket of a network first seen `age_s` seconds ago."""
    i = 0
    while i < len(AGE_EDGES_S) and age_s >= AGE_EDGES_S[i]:
        i += 1
    return i


def add_bins(histograms: Iterable[Mapping[Any, int]]) -> dict[str, int]:
    """Sum sparse histograms ({bin: n}; bins as ints or JSON's strings), keys as strings."""
    out: dict[str, int] = {}
    for h in histograms:
        for key, n in h.items():
            k = str(key)
            out[k] = out.get(k, 0) + int(n)
    return dict(sorted(out.items(), key=lambda kv: int(kv[0])))


def add_counts(tables: Iterable[Mapping[str, int]]) -> dict[str, int]:
    """Sum {name: n} tables."""
    out: dict[str, int] = {}
    for table in tables:
        for key, n in table.items():
            out[key] = out.get(key, 0) + int(n)
    return dict(sorted(out.items()))


def regularity(gaps: Mapping[str, int]) -> float | None:
    """Share of listeners' gaps in the two most common 10 ms bins (None under 50 gaps): near 1
    when every flow ticks like the same timer, lower when players' timing varies."""
    counts = sorted(gaps.values(), reverse=True)
    total = sum(counts)
    return round(sum(counts[:2]) / total, 3) if total >= 50 else None


def grid_excess(window: Mapping[str, int], baseline: Mapping[str, int]) -> float | None:
    """The share of the window's gaps on a timing grid the baseline did not have: over the two
    10 ms bins below 0.99 s where the window's share most exceeds the baseline's (a program's
    loop has a gap or two: request to request, and the loop's turn), w and b the window's and
    the baseline's shares there, f = (w − b) / (1 − b) — the window as a mix of f on the grid
    and 1 − f gapped like the baseline (0–1; None under 50 gaps on either side). Players' own
    rhythm is in the baseline, so only a new grid stands out, even inside a real crowd's
    varied gaps. Gaps ≥ 0.99 s are segment players' and idle ones, whose share moves with the
    mix of players: left out."""
    wn, bn = sum(window.values()), sum(baseline.values())
    if wn < 50 or bn < 50:
        return None
    excess = sorted(
        ((n / wn - baseline.get(k, 0) / bn, k) for k, n in window.items() if int(k) < GAP_BINS - 1),
        reverse=True,
    )[:2]
    w = sum(window[k] for _, k in excess) / wn
    b = sum(baseline.get(k, 0) for _, k in excess) / bn
    return round(max(0.0, (w - b) / (1.0 - b)), 3) if b < 1.0 else 0.0


def percentile(ordered: list[int], q: float) -> int:
    """Nearest-rank percentile of an ascending list (0 for an empty list)."""
    if not ordered:
        return 0
    return ordered[min(len(ordered) - 1, max(0, math.ceil(q * len(ordered)) - 1))]


def rate_spread(counts: Iterable[int]) -> dict[str, Any]:
    """Requests per source in one second: p50, p90, p99, max, the share of the requests sent
    by the top 1 % of sources (at least one source), n and Σ c·log2 c (for entropy)."""
    ordered = sorted(counts)
    n = sum(ordered)
    top_k = max(1, math.ceil(len(ordered) / 100))
    top = sum(ordered[-top_k:]) if ordered else 0
    return {
        "p50": percentile(ordered, 0.50),
        "p90": percentile(ordered, 0.90),
        "p99": percentile(ordered, 0.99),
        "max": ordered[-1] if ordered else 0,
        "top1": round(top / n, 4) if n else 0.0,
        "n": n,
        "clog": round(sum(c * math.log2(c) for c in ordered if c > 1), 3),
    }


def entropy(n: float, clog: float, distinct: int) -> tuple[float, float]:
    """Shannon entropy (bits) of a count distribution given n = Σc and clog = Σ c·log2 c, and
    the same normalised by log2(distinct) (1 = perfectly even; 0 = one source or none)."""
    if n <= 0 or distinct <= 1:
        return 0.0, 0.0
    h = max(0.0, math.log2(n) - clog / n)
    return round(h, 4), round(min(1.0, h / math.log2(distinct)), 4)


def top_items(counts: Mapping[str, int], k: int = TOP_KEPT) -> list[list[Any]]:
    """The k heaviest keys with their counts."""
    heaviest = sorted(counts.items(), key=lambda kv: kv[1], reverse=True)[:k]
    return [[key, n] for key, n in heaviest]


def failures(by: Mapping[str, Mapping[str, int]]) -> dict[str, int]:
    """Refusals and failures counted from requests by class and outcome."""
    per_outcome: dict[str, int] = {}
    for outcomes in by.values():
        for outcome, n in outcomes.items():
            per_outcome[outcome] = per_outcome.get(outcome, 0) + n
    return {
        field: sum(per_outcome.get(o, 0) for o in outcomes)
        for field, outcomes in FAILURE_KINDS.items()
    }


# --- merging ---------------------------------------------------------------------------

_SUMMED = (
    "req", "src", "src_over", "net", "net_over", "lis", "lis_paced", "lis_net", "tix", "listen",
    "conv", "parts_ok", "parts_late",
)  # fmt: skip


def _merge_spread(parts: list[Mapping[str, Any]]) -> dict[str, Any]:
    total = sum(int(p.get("n", 0)) for p in parts)
    out: dict[str, Any] = {
        "n": total,
        "clog": round(sum(float(p.get("clog", 0)) for p in parts), 3),
    }
    for key in ("p50", "p90", "p99", "top1"):
        if total:
            mean = sum(float(p.get(key, 0)) * int(p.get("n", 0)) for p in parts) / total
        else:
            mean = 0.0
        out[key] = round(mean, 4)
    out["max"] = max((int(p.get("max", 0)) for p in parts), default=0)
    return out


def _add_nested(into: dict[str, dict[str, int]], by: Mapping[str, Mapping[str, int]]) -> None:
    for cls, outcomes in by.items():
        target = into.setdefault(cls, {})
        for outcome, n in outcomes.items():
            target[outcome] = target.get(outcome, 0) + int(n)


def merge(stats: list[Mapping[str, Any]]) -> dict[str, Any]:
    """Combine several workers' stats dicts for the same second and scope (see module doc)."""
    if len(stats) == 1:
        return dict(stats[0])
    out: dict[str, Any] = {k: sum(int(s.get(k, 0)) for s in stats) for k in _SUMMED}
    by: dict[str, dict[str, int]] = {}
    for s in stats:
        _add_nested(by, s.get("by", {}))
    out["by"] = by
    out["fail"] = failures(by)
    out["rate"] = _merge_spread([s.get("rate", {}) for s in stats])
    groups: dict[str, Any] = {}
    for g in GROUPS:
        parts = [s["groups"][g] for s in stats if g in s.get("groups", {})]
        if parts:
            merged = _merge_spread(parts)
            merged["src"] = sum(int(p.get("src", 0)) for p in parts)
            groups[g] = merged
    out["groups"] = groups
    out["ent"], out["ent_n"] = entropy(out["rate"]["n"], out["rate"]["clog"], out["src"])
    for key in ("top", "topnet"):
        counts: dict[str, int] = {}
        for s in stats:
            for name, n in s.get(key, []):
                counts[name] = counts.get(name, 0) + int(n)
        out[key] = top_items(counts)
    for key in ("net_age", "req_age", "lis_age", "packed_age"):
        out[key] = [
            sum(int(s.get(key, [0] * AGE_BUCKETS)[i]) for s in stats) for i in range(AGE_BUCKETS)
        ]
    out["gaps"] = add_bins(s.get("gaps", {}) for s in stats)
    out["carried"] = add_counts(s.get("carried", {}) for s in stats)
    out["shared"] = {
        k: sum(int(s.get("shared", {}).get(k, 0)) for s in stats) for k in SHARED_FIELDS
    }
    return out


def merge_signals(signals: list[Mapping[str, float]]) -> dict[str, float]:
    """Combine several workers' signals for one second (MAX_SIGNALS by max, others summed)."""
    out: dict[str, float] = {}
    for s in signals:
        for key, value in s.items():
            if key not in out:
                out[key] = float(value)
            elif key in MAX_SIGNALS:
                out[key] = max(out[key], float(value))
            else:
                out[key] = out[key] + float(value)
    return out
