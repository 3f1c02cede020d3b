"""Incident windows and the features of a stretch of seconds (pure).

`find_windows` flags the seconds whose traffic or distress departs from the baseline before
them and merges nearby flags into windows; `summarise` turns a stretch of per-second dicts
(merged records of one scope, `t` and `signals` added) into the means and shares the verdict
rules read.
"""

from __future__ import annotations

import statistics
from collections.abc import Mapping, Sequence
from typing import Any

from ruang.forensics.features import AGE_EDGES_S, SHARED_FIELDS, add_bins, regularity
from ruang.guard.attack import Second as GuardSecond
from ruang.guard.attack import evidence

BASELINE_S = 60  # seconds before a window that describe "normal"
SURGE_FACTOR = 2.0  # a second is unusual at this multiple of the baseline median…
MIN_RPS = 20.0  # …and at least this many requests per second (small sites stay quiet)
CLASS_MIN = 20  # …or one class (or the listeners) grew by this much and 2× its median
LISTENER_GROWTH = 1.25  # active listeners: CLASS_MIN more and this multiple of their median
MIN_REFUSED = 10  # or when this many more requests than usual were refused as abusive
LAG_DISTRESS_S = 0.150  # mean event-loop lag from which the shedder refuses (level 2)
LATE_DISTRESS = 0.01  # share of parts answered late
MERGE_GAP_S = 10  # flagged seconds this close belong to one window
MIN_WINDOW_S = 3  # shorter windows are dropped unless the server was in distress
LEVEL_S = 60  # a level flagged for its volume alone this long becomes the new normal
MIN_HOSTILE = 2  # refusals a second for what no player does (HOSTILE) flag it on their own
HOSTILE = ("forged", "cache_bust", "timeout")
ABUSIVE = ("ticket", "pow", "cache_bust", "timeout", "rate_limited", "bad")

Second = Mapping[str, Any]


def distress(s: Second) -> bool:
    """The server was struggling in this second (lag, shedding, late parts)."""
    sig = s.get("signals", {})
    parts = int(s.get("parts_ok", 0))
    return (
        float(sig.get("loop_lag_s", 0.0)) >= LAG_DISTRESS_S
        or float(sig.get("shed_level", 0.0)) >= 2
        or int(s.get("fail", {}).get("shed", 0)) > 0
        or (parts >= 10 and int(s.get("parts_late", 0)) / parts >= LATE_DISTRESS)
    )


def _hostile(s: Second) -> int:
    """Refusals for what no player does: forged tickets, cache-busting names, slow headers."""
    fail = s.get("fail", {})
    return sum(int(fail.get(k, 0)) for k in HOSTILE) + int(s.get("carried", {}).get("forged", 0))


def _refused(s: Second) -> int:
    fail = s.get("fail", {})
    return sum(int(fail.get(k, 0)) for k in ABUSIVE)


def _volumes(s: Second) -> tuple[float, float, float]:
    """Joins, playlist + media requests, and active listeners of a second."""
    by = s.get("by", {})
    joins = float(sum(by.get("join", {}).values()))
    hls = float(sum(sum(by.get(c, {}).values()) for c in ("playlist", "part", "segment")))
    return joins, hls, float(s.get("lis", 0))


def find_windows(seconds: Sequence[Second]) -> list[tuple[int, int]]:
    """Incident windows as (first, last) second, over a contiguous per-second series."""
    flagged: list[int] = []
    calm: list[tuple[float, ...]] = []  # (requests, refused, classes…) of unflagged seconds
    level: list[tuple[float, ...]] = []  # consecutive seconds flagged for their volume alone
    for s in seconds:
        req, refused = float(s.get("req", 0)), float(_refused(s))
        row = (req, refused, *_volumes(s))
        recent = calm[-BASELINE_S:]
        medians = [statistics.median(r[i] for r in recent) if recent else 0.0 for i in range(5)]
        base, base_refused = medians[0], medians[1]
        # one class (joins, playlists, media) or the listeners growing: a flood that hides
        # in the total, or bots beside a regular audience, should not feed the baseline
        factors = (SURGE_FACTOR, SURGE_FACTOR, LISTENER_GROWTH)
        grown = any(
            v >= CLASS_MIN + f * m for v, m, f in zip(row[2:], medians[2:], factors, strict=True)
        )
        busy = (req >= MIN_RPS and req >= SURGE_FACTOR * base) or grown
        abusive = refused >= SURGE_FACTOR * base_refused + MIN_REFUSED or _hostile(s) >= MIN_HOSTILE
        strained = distress(s)
        if busy or abusive or strained:
            flagged.append(int(s["t"]))
            # An audience that arrives and stays (a space's start) is flagged while it comes;
            # after LEVEL_S at the new level, without refusals or distress, that level is the
            # baseline, or every later second would be compared with the quiet before it.
            if busy and not (abusive or strained):
                level.append(row)
            else:
                level = []
            if len(level) >= LEVEL_S:
                calm += level
                level = []
        else:
            calm.append(row)
            level = []
    windows: list[list[int]] = []
    for t in flagged:
        if windows and t - windows[-1][1] <= MERGE_GAP_S:
            windows[-1][1] = t
        else:
            windows.append([t, t])
    by_t = {int(s["t"]): s for s in seconds}
    kept = []
    for a, b in windows:
        if b - a + 1 >= MIN_WINDOW_S or any(
            distress(by_t[t]) for t in range(a, b + 1) if t in by_t
        ):
            kept.append((a, b))
    return kept


def _wmean(seconds: Sequence[Second], path: tuple[str, ...], weight: str = "req") -> float:
    num = den = 0.0
    for s in seconds:
        value: Any = s
        for key in path:
            value = value.get(key, {}) if isinstance(value, Mapping) else {}
        w = float(s.get(weight, 0))
        if isinstance(value, int | float) and w > 0:
            num += float(value) * w
            den += w
    return num / den if den else 0.0


def known_from(t: int, since: int | None) -> int:
    """The first network-age bucket counted as known at second `t`: networks first seen before
    `since` (a window's start), and at least AGE_EDGES_S[0] ago."""
    floor = AGE_EDGES_S[0] if since is None else max(AGE_EDGES_S[0], t - since + 1)
    lows = (0, *AGE_EDGES_S)
    return next((i for i, lo in enumerate(lows) if lo >= floor), len(lows))


def known(s: Second, key: str, since: int | None) -> int:
    """Of an age-bucketed count (net_age, req_age, lis_age, packed_age), the known part."""
    return sum(s.get(key, ())[known_from(int(s["t"]), since) :])


_ALARM_WORDS = (  # a word of each of the guard's phrases -> the sign's name
    ("were refused", "refused"),
    ("tickets", "bad_tickets"),
    ("budget", "rate_limited"),
    ("proof of work", "pow_failed"),
    ("cache", "cache_busting"),
)


def alarm_reasons(s: Second) -> list[str]:
    """Attack mode's own tests (`ruang.guard.attack.evidence`) applied to a recorded second:
    why the guard was alarmed, in its words (the record keeps the counts, not the phrases)."""
    fail, by = s.get("fail", {}), s.get("by", {})
    joins = sum(int(v) for o, v in by.get("join", {}).items() if o == "ok")
    second = GuardSecond(
        requests=int(s.get("req", 0)),
        refused=sum(int(fail.get(k, 0)) for k in ABUSIVE if k != "timeout"),
        ticket_failures=int(fail.get("ticket", 0)),
        rate_limited=int(fail.get("rate_limited", 0)),
        pow_failures=int(fail.get("pow", 0)),
        cache_busts=int(fail.get("cache_bust", 0)),
        joins=joins,
        join_capacity_per_s=0.0,
        shed_level=0,
        new_network_share=None,
    )
    active = float(s.get("signals", {}).get("attack_mode", 0)) > 0
    found = " | ".join(evidence(second, active))
    return [name for word, name in _ALARM_WORDS if word in found]


def _alarm(seconds: Sequence[Second]) -> dict[str, int]:
    """How often each of the guard's signs held in the seconds attack mode was on."""
    counts: dict[str, int] = {}
    for s in seconds:
        if float(s.get("signals", {}).get("attack_mode", 0)) > 0:
            for phrase in alarm_reasons(s):
                counts[phrase] = counts.get(phrase, 0) + 1
    return dict(sorted(counts.items(), key=lambda kv: -kv[1]))


def summarise(seconds: Sequence[Second], since: int | None = None) -> dict[str, Any]:
    """Means per second and shares over a stretch of seconds (empty stretch: all zeros).
    Networks count as known when first seen before `since`, or a minute ago if None."""
    n = max(1, len(seconds))

    def total_known(key: str) -> float:
        return float(sum(known(s, key, since) for s in seconds))

    def total(key: str) -> float:
        if key == "packed":
            return float(sum(sum(s.get("packed_age", ())) for s in seconds))
        return float(sum(float(s.get(key, 0)) for s in seconds))

    def fail(key: str) -> float:
        return float(sum(float(s.get("fail", {}).get(key, 0)) for s in seconds))

    by_cls: dict[str, float] = {}
    for s in seconds:
        for cls, outcomes in s.get("by", {}).items():
            by_cls[cls] = by_cls.get(cls, 0.0) + sum(outcomes.values())
    joins_ok = sum(s.get("by", {}).get("join", {}).get("ok", 0) for s in seconds)
    req, src, net = total("req"), total("src"), total("net")
    lis, lis_known = total("lis"), total_known("lis_age")
    packed_new = total("packed") - total_known("packed_age")
    tix, listen = total("tix"), total("listen")
    parts_ok, parts_late = total("parts_ok"), total("parts_late")
    groups: dict[str, dict[str, float]] = {}
    for g in ("join", "playlist", "media"):
        gs = [s for s in seconds if g in s.get("groups", {})]
        groups[g] = {
            "p90": round(_wmean(gs, ("groups", g, "p90"), "req"), 2),
            "p99": round(_wmean(gs, ("groups", g, "p99"), "req"), 2),
            "max": float(max((s["groups"][g].get("max", 0) for s in gs), default=0)),
            "top1": round(_wmean(gs, ("groups", g, "top1"), "req"), 3),
            "src_ps": round(sum(float(s["groups"][g].get("src", 0)) for s in gs) / n, 2),
        }
    signals = [s.get("signals", {}) for s in seconds]
    gaps = add_bins(s.get("gaps", {}) for s in seconds)
    carried: dict[str, float] = {}
    for s in seconds:
        for k, v in s.get("carried", {}).items():
            carried[k] = carried.get(k, 0.0) + float(v)
    shared = {k: sum(float(s.get("shared", {}).get(k, 0)) for s in seconds) for k in SHARED_FIELDS}
    return {
        "seconds": len(seconds),
        "rps": round(req / n, 2),
        "peak_rps": float(max((float(s.get("req", 0)) for s in seconds), default=0)),
        "cls_ps": {c: round(v / n, 2) for c, v in sorted(by_cls.items())},
        "join_ps": round(by_cls.get("join", 0.0) / n, 2),
        "playlist_ps": round(by_cls.get("playlist", 0.0) / n, 2),
        "media_ps": round(sum(by_cls.get(c, 0.0) for c in ("part", "segment", "init")) / n, 2),
        "joins_ok_ps": round(joins_ok / n, 2),
        "src_ps": round(src / n, 2),
        "net_ps": round(net / n, 2),
        "req_per_src": round(req / src, 2) if src else 0.0,
        "src_per_net": round(src / net, 2) if net else 0.0,
        "new_net_share": round(1 - total_known("net_age") / net, 3) if net else 0.0,
        "known_req_ps": round(total_known("req_age") / n, 2),
        "ent_n": round(_wmean(seconds, ("ent_n",)), 3),
        "rate_p90": round(_wmean(seconds, ("rate", "p90")), 2),
        "rate_p99": round(_wmean(seconds, ("rate", "p99")), 2),
        "rate_max": float(max((s.get("rate", {}).get("max", 0) for s in seconds), default=0)),
        "top1": round(_wmean(seconds, ("rate", "top1")), 3),
        "groups": groups,
        "lis_ps": round(lis / n, 2),
        "lis_known_ps": round(lis_known / n, 2),
        "lis_new_ps": round((lis - lis_known) / n, 2),
        "paced_share": round(total("lis_paced") / lis, 3) if lis else 0.0,
        "lis_packed_ps": round(packed_new / n, 2),
        "tix": int(tix),
        "conversion": round(min(1.0, listen / tix), 3) if tix >= 10 else None,
        "regularity": regularity(gaps),
        "gap_hist": gaps,
        "late_share": round(parts_late / parts_ok, 4) if parts_ok else 0.0,
        "parts_ok": int(parts_ok),
        "fail_ps": {
            k: round(fail(k) / n, 2)
            for k in (
                "ticket",
                "forged",
                "pow",
                "cache_bust",
                "timeout",
                "shed",
                "rate_limited",
                "bad",
            )
        },
        "lag_max_s": round(max((float(g.get("loop_lag_s", 0)) for g in signals), default=0), 3),
        "shed_level_max": max((float(g.get("shed_level", 0)) for g in signals), default=0.0),
        # what requests carried, whichever check refused them (a rate limit may come first)
        "forged_any_ps": round((fail("forged") + carried.get("forged", 0.0)) / n, 2),
        "expired_any_ps": round(
            (fail("ticket") - fail("forged") + carried.get("expired", 0.0)) / n, 2
        ),
        "carried_valid_ps": round(carried.get("valid", 0.0) / n, 2),
        "shared_ps": {k: round(v / n, 2) for k, v in shared.items()},
        "alarm": _alarm(seconds),
        "rate_limited_by": {
            c: sum(int(s.get("by", {}).get(c, {}).get("rate_limited", 0)) for s in seconds)
            for c in by_cls
        },
        "attack_mode_s": sum(1 for g in signals if float(g.get("attack_mode", 0)) > 0),
        "distress_s": sum(1 for s in seconds if distress(s)),
        "learned": total_known("net_age") > 0,
    }
