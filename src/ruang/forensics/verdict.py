"""Graded verdicts for an incident window: organic surge, attack (which kind), mixed, capacity
failure or inconclusive — with a confidence and the reasons in plain sentences (pure).

Each rule reads the window's features (`window.summarise`) against the baseline's and, when
it fires, adds a piece of evidence: a weight in 0–1 and a sentence quoting the numbers. The
weights of one hypothesis combine like independent clues (noisy-OR: 1 − Π(1 − w)). The rules,
their thresholds and the published work behind them are in docs/FORENSICS.md.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from ruang.forensics.features import HOT_TICKET, PACKED_LISTENERS, grid_excess

ATTACK_KINDS = (
    "join_flood", "playlist_flood", "segment_flood", "cache_busting", "forged_tickets",
    "slowloris", "bot_listeners",
)  # fmt: skip
PRESENT = 0.5  # a hypothesis with at least this score is taken as present
ORGANIC_PRESENT = 0.6
# What one LL-HLS player sends per second (a playlist and a part per 0.512 s part) is ≈ 2
# playlists and ≈ 2 media files; twice that is where "player-like" ends. A listener joins
# once; one waiting in line asks again after Retry-After (≥ 1 s).
PER_SOURCE_MAX = {"join": 2.0, "playlist": 5.0, "media": 5.0}
GROWTH = 3.0  # a class "grew" at this multiple of its baseline rate…
CLASS_FLOOR = {"join": 10.0, "playlist": 50.0, "media": 50.0}  # …and at least this rate
ABUSE_FLOOR_PS = 5.0  # forged tickets, cache busting: per second, and…
ABUSE_SHARE = 0.02  # …this share of all requests (docs/FORENSICS.md: from the random matrix)
SPREAD = 3.0  # sources per network at or below which new sources are spread like an audience
REGULAR = 0.6  # share of listeners' gaps in the two commonest 10 ms bins that is too regular…
REGULAR_RISE = 0.25  # …when it is also this much above the baseline's
LISTENER_FLOOR = 20.0  # listeners more per second than the baseline to speak of growth
SHARED_FLOOR_PS = 20.0  # requests per second on shared tickets, above the baseline's…
SHARED_PER_TICKET = 5.0  # …with this many sources per shared ticket on average
SLOW_FLOOR_PS = 1.0  # header timeouts per second (over the window) that are slowloris
GRID = 0.12  # share of gaps in two adjacent 10 ms bins above the baseline's: a timing grid
DENSITY_ONLY = 0.3  # density clues (new, packed networks, entropy) without a behaviour clue
ALARM_SHARE = 0.3  # the guard's attack mode on for this share of a window is its alarm


@dataclass
class Hypothesis:
    """Evidence gathered for one explanation."""

    name: str
    clues: list[tuple[float, str]] = field(default_factory=list)

    def add(self, weight: float, sentence: str) -> None:
        """Add a clue (weight 0–1) with the sentence that states it."""
        self.clues.append((max(0.0, min(1.0, weight)), sentence))

    @property
    def score(self) -> float:
        """Noisy-OR of the clues' weights."""
        miss = 1.0
        for w, _ in self.clues:
            miss *= 1.0 - w
        return round(1.0 - miss, 3)


def _pct(x: float) -> str:
    return f"{100 * x:.1f} %"


def _grew(w: float, b: float, floor: float, factor: float = GROWTH) -> bool:
    return w >= floor and w >= factor * b


def _floods(w: dict[str, Any], b: dict[str, Any], hyp: dict[str, Hypothesis]) -> None:
    """Join, playlist and segment floods: a class grew and its per-source rate is abnormal."""
    names = {"join": "join_flood", "playlist": "playlist_flood", "media": "segment_flood"}
    for g, kind in names.items():
        rate_w, rate_b = w[f"{g}_ps"], b[f"{g}_ps"]
        if not _grew(rate_w, rate_b, CLASS_FLOOR[g]):
            continue
        h, gs, limit = hyp[kind], w["groups"][g], PER_SOURCE_MAX[g]
        label = {"join": "joins", "playlist": "playlist requests", "media": "media requests"}[g]
        growth = f"{label} rose to {rate_w:.0f}/s (baseline {rate_b:.0f}/s)"
        if gs["p90"] > limit:
            h.add(0.75, f"{growth}, and the sources sending them sent {gs['p90']:.1f}/s each "
                  f"at the 90th percentile — a player sends at most {limit:.0f}/s "
                  "(Jung et al.: in a flash crowd the per-client rate stays normal).")  # fmt: skip
        elif gs["p99"] > 2 * limit or (gs["max"] > 4 * limit and gs["top1"] >= 0.2):
            h.add(0.65, f"{growth}; most sources stayed player-like but the heaviest 1 % sent "
                  f"{gs['p99']:.1f}/s each (max {gs['max']:.0f}/s, {_pct(gs['top1'])} of the "
                  f"requests) — a player sends at most {limit:.0f}/s.")  # fmt: skip
        if g == "join":
            conv = w["conversion"]
            if conv is not None and conv < 0.3:
                h.add(0.6, f"only {_pct(conv)} of the {w['tix']} tickets issued were followed "
                      "by a media request: joins that never listen.")  # fmt: skip
            if w["fail_ps"]["pow"] >= ABUSE_FLOOR_PS:
                h.add(0.5, f"{w['fail_ps']['pow']:.0f} failed proof-of-work answers per second.")
        if g == "media" and w["lis_ps"] > 0 and rate_w / w["lis_ps"] > 3 * PER_SOURCE_MAX[g]:
            h.add(0.4, f"{rate_w / w['lis_ps']:.0f} media requests per active listener per "
                  "second, where a player needs about 2.")  # fmt: skip


def _shared(w: dict[str, Any], b: dict[str, Any], hyp: dict[str, Hypothesis]) -> None:
    """Tickets used by many sources at once: one ticket is one player, so a ticket fetched
    from dozens of addresses is a flood borrowing a real listener's identity."""
    sh, base = w["shared_ps"], b["shared_ps"]
    hot = sh["hot_req"] - base["hot_req"]
    if hot >= ABUSE_FLOOR_PS and hot >= ABUSE_SHARE * max(w["rps"], 1e-9):
        kind = "playlist_flood" if sh["hot_playlist"] >= sh["hot_media"] else "segment_flood"
        per = sh["hot_req"] / max(sh["hot_tix"], 1e-9)
        hyp[kind].add(0.7, f"{sh['hot_tix']:.1f} tickets per second were each presented "
                      f"{per:.0f} times in a second ({sh['hot_req']:.0f} requests/s, baseline "
                      f"{base['hot_req']:.0f}/s): a player presents its ticket at most "
                      f"{HOT_TICKET} times a second, whatever address it comes from.")  # fmt: skip
    req, added = sh["req"], sh["req"] - base["req"]
    if sh["tix"] <= 0 or added < SHARED_FLOOR_PS or req < ABUSE_SHARE * max(w["rps"], 1e-9):
        return
    per_ticket = sh["src"] / sh["tix"]
    if per_ticket < SHARED_PER_TICKET:
        return
    kind = "playlist_flood" if sh["playlist"] >= sh["media"] else "segment_flood"
    refused = sh["refused"] / req if req else 0.0
    hyp[kind].add(0.8, f"{req:.0f} requests per second came on {sh['tix']:.1f} tickets, each "
                  f"used by {per_ticket:.0f} sources from {sh['net'] / sh['tix']:.0f} networks at "
                  f"once ({_pct(refused)} of them refused by the per-ticket budget): a ticket is "
                  "one player's.")  # fmt: skip


def _refusals(w: dict[str, Any], b: dict[str, Any], hyp: dict[str, Hypothesis]) -> None:
    """Forged tickets, cache busting and slowloris leave their own outcome behind."""
    rules = (
        ("forged_any", "forged_tickets", "requests carried a forged ticket",
         "a ticket is an HMAC only the server can sign, so no player sends a forged one"),
        ("cache_bust", "cache_busting", "requests carried unknown query parameters or names",
         "players ask for the names the playlist gives them"),
    )  # fmt: skip
    rps = max(w["rps"], 1e-9)
    for key, kind, what, why in rules:
        if key == "forged_any":  # whichever check refused them first
            rate_w, rate_b = w["forged_any_ps"], b["forged_any_ps"]
        else:
            rate_w, rate_b = w["fail_ps"][key], b["fail_ps"][key]
        share = rate_w / rps
        if _grew(rate_w, rate_b, ABUSE_FLOOR_PS, 5.0) and share >= ABUSE_SHARE:
            hyp[kind].add(0.6 + 0.35 * min(1.0, share / 0.3),
                          f"{rate_w:.0f}/s {what} ({_pct(share)} of all requests; baseline "
                          f"{rate_b:.1f}/s): {why}.")  # fmt: skip
    to_w, to_b = w["fail_ps"]["timeout"], b["fail_ps"]["timeout"]
    if _grew(to_w, to_b, SLOW_FLOOR_PS, 5.0):
        hyp["slowloris"].add(0.6 + 0.35 * min(1.0, to_w / 20),
                             f"{to_w:.1f} connections per second were closed for sending their "
                             f"headers too slowly (baseline {to_b:.1f}/s).")  # fmt: skip
    exp_w = w["expired_any_ps"]
    if exp_w >= ABUSE_FLOOR_PS and exp_w / rps >= 0.2:
        hyp["forged_tickets"].add(0.3, f"{exp_w:.0f}/s requests came with a missing or expired "
                                  "ticket.")  # fmt: skip


def _bots(w: dict[str, Any], b: dict[str, Any], hyp: dict[str, Hypothesis]) -> None:
    """Listeners that act like one program: timing on a grid, or ticking alike. Where they come
    from (new networks, packed ones, fewer sources) supports that but is no evidence alone —
    carrier-grade NAT packs a real audience into a few networks. (Shared and hot tickets are
    named as the floods they carry.)"""
    added = w["lis_ps"] - b["lis_ps"]
    if added < LISTENER_FLOOR or w["paced_share"] < 0.5:
        return
    h = hyp["bot_listeners"]
    behaved = False
    reg_w, reg_b = w["regularity"], b["regularity"]
    if reg_w is not None and reg_w >= REGULAR and (reg_b is None or reg_w >= reg_b + REGULAR_RISE):
        behaved = True
        h.add(0.5, f"{_pct(reg_w)} of the listeners' gaps between requests fell in the same two "
              f"10 ms bins (baseline {_pct(reg_b) if reg_b is not None else 'n/a'}): flows "
              "ticking alike, like one program's timers (Yu et al.: bot flows resemble each "
              "other more than a crowd's do).")  # fmt: skip
    grid = w["grid"]
    if not behaved and grid is not None and grid >= GRID:  # the same evidence, diluted
        behaved = True
        h.add(0.5, f"{_pct(grid)} more of the listeners' gaps between requests than in the "
              "baseline fell in the same two 10 ms bins: a timing grid beside the players' own "
              "rhythm, like one program's timers (Yu et al.).")  # fmt: skip
    scale = 1.0 if behaved else DENSITY_ONLY
    tail = "" if behaved else " (where they came from only: no bot behaviour was seen)"
    added_new = w["lis_new_ps"] - b["lis_new_ps"]
    if b["learned"] and added_new >= 0.7 * added:
        h.add(0.45 * scale, f"{added_new:.0f} of the {added:.0f} listeners added per second came "
              "from networks never seen before (Jung et al.: a flash crowd comes mostly from "
              f"networks that visited before){tail}.")  # fmt: skip
    packed_added = w["lis_packed_ps"] - b["lis_packed_ps"]
    if packed_added >= LISTENER_FLOOR:
        h.add(
            0.55 * scale,
            f"{packed_added:.0f} more listeners per second sat in new networks "
            f"(/24 or /64) holding {PACKED_LISTENERS} or more active listeners each{tail}.",
        )
    if b["ent_n"] and w["ent_n"] < b["ent_n"] - 0.15:
        h.add(0.3 * scale, f"source entropy fell from {b['ent_n']:.2f} to {w['ent_n']:.2f} "
              f"(normalised): a few sources carry the traffic{tail}.")  # fmt: skip


def _players(w: dict[str, Any], b: dict[str, Any]) -> tuple[str, bool] | None:
    """Listeners that behave like players — each on its own ticket (`lis` counts ticket ids),
    a player's pace, natural timing jitter — a sentence saying so and whether they were told
    apart from listeners on a timing grid beside them; else None. Conversion is left out: a
    join flood beside a crowd dilutes it, and is named by it (join_flood)."""
    added = w["lis_ps"] - b["lis_ps"]
    reg = w["regularity"]
    grid = w["grid"]
    beside = ""
    if grid is not None and grid >= GRID:
        # a timing grid holds about `grid` of the gaps, so about that share of the listeners:
        # the others, beyond the baseline's, are judged on their own
        added = w["lis_ps"] * (1 - grid) - b["lis_ps"]
        grid, beside = None, f" beside the {w['lis_ps'] * w['grid']:.0f} on the timing grid"
    if (
        added >= LISTENER_FLOOR
        and w["paced_share"] >= 0.8
        and (grid is None or grid < GRID)
        and (beside or reg is None or reg < REGULAR)
    ):
        jitter = _pct(reg) if reg is not None else "n/a"
        sentence = (f"{added:.0f} more listeners per second{beside} behaved like players, "
                    f"whatever their networks ({w['src_per_net']:.1f} sources a network): "
                    f"{_pct(w['paced_share'])} paced like players, each on its own ticket, "
                    f"with natural timing jitter ({jitter} of gaps in the commonest two 10 ms "
                    "bins).")  # fmt: skip
        return sentence, bool(beside)
    return None


def _organic(w: dict[str, Any], b: dict[str, Any], bots: bool) -> tuple[Hypothesis, bool]:
    """A real crowd: from networks seen before or spread thin, player-like, converting. When
    bot listeners were found, new networks are theirs: only growth from networks seen before
    tells a real crowd beside them."""
    h = Hypothesis("organic")
    who = False
    known_added = w["lis_known_ps"] - b["lis_known_ps"]
    if (
        b["learned"]
        and known_added >= LISTENER_FLOOR
        and w["lis_known_ps"] >= 1.5 * b["lis_known_ps"]
    ):
        who = True
        h.add(0.5, f"{known_added:.0f} more listeners per second came from networks that "
              "visited before (Jung et al.: flash crowds mostly do).")  # fmt: skip
    spread_added = (w["lis_new_ps"] - w["lis_packed_ps"]) - (b["lis_new_ps"] - b["lis_packed_ps"])
    src_added = w["src_ps"] - b["src_ps"]
    if spread_added >= LISTENER_FLOOR:
        who = who or not bots
        h.add(0.4, f"{spread_added:.0f} more listeners per second from new networks holding "
              f"fewer than {PACKED_LISTENERS} listeners each, spread like a real "
              "audience.")  # fmt: skip
    elif src_added >= LISTENER_FLOOR and w["src_per_net"] <= SPREAD and w["joins_ok_ps"] > 0:
        who = who or not bots
        h.add(0.35, f"{src_added:.0f} more sources per second, spread {w['src_per_net']:.1f} "
              "to a network.")  # fmt: skip
    behaving = _players(w, b)
    if behaving is not None:
        # beside bots, only listeners told apart from them (off the timing grid) are a crowd
        who = who or not bots or behaving[1]
        h.add(0.5, behaving[0])
    normal = all(
        w["groups"][g]["p90"] <= lim and w["groups"][g]["p99"] <= 2 * lim
        for g, lim in PER_SOURCE_MAX.items()
    )
    if normal and w["src_ps"] >= 1.5 * max(b["src_ps"], 1.0):
        h.add(0.3, f"requests grew with the number of sources ({b['src_ps']:.0f} → "
              f"{w['src_ps']:.0f} per second) while each source kept a player's pace "
              f"({w['req_per_src']:.1f} requests per second each; Jung et al.).")  # fmt: skip
    if w["conversion"] is not None and w["conversion"] >= 0.6:
        h.add(0.3, f"{_pct(w['conversion'])} of the {w['tix']} tickets issued were followed by "
              "listening.")  # fmt: skip
    if w["lis_ps"] >= LISTENER_FLOOR and w["paced_share"] >= 0.8:
        h.add(0.25, f"{_pct(w['paced_share'])} of the active listeners paced like LL-HLS "
              "players.")  # fmt: skip
    return h, who and h.score >= ORGANIC_PRESENT


def _distress(w: dict[str, Any]) -> Hypothesis:
    h = Hypothesis("distress")
    if w["lag_max_s"] >= 0.150:
        h.add(0.5, f"the event loop lagged up to {w['lag_max_s'] * 1000:.0f} ms.")
    if w["shed_level_max"] >= 2:
        h.add(0.4, f"load shedding reached level {w['shed_level_max']:.0f}.")
    if w["fail_ps"]["shed"] > 0:
        h.add(0.3, f"{w['fail_ps']['shed']:.1f} requests per second were shed (503).")
    if w["parts_ok"] >= 50 and w["late_share"] >= 0.01:
        h.add(0.6, f"{_pct(w['late_share'])} of {w['parts_ok']} parts were served late.")
    return h


_ALARM_KIND = {"bad_tickets": "forged_tickets", "cache_busting": "cache_busting",
               "pow_failed": "join_flood"}  # fmt: skip
_FLOOD_OF = {"join": "join_flood", "playlist": "playlist_flood", "part": "segment_flood",
             "segment": "segment_flood", "init": "segment_flood"}  # fmt: skip


def _alarm(w: dict[str, Any], hyp: dict[str, Hypothesis]) -> str:
    """The guard's own alarm: attack mode on for ALARM_SHARE of the window or more. It names
    no kind, so it only strengthens a kind that already has a sign of the same nature (its
    rate-limit sign: the flood of the class most rate-limited). Returns a sentence, or ""."""
    on, seconds = w["attack_mode_s"], max(1, w["seconds"])
    if on < max(3, ALARM_SHARE * seconds):
        return ""
    signs = w["alarm"]
    said = ", ".join(f"{name.replace('_', ' ')} in {n} s" for name, n in signs.items())
    sentence = (f"the guard's attack mode was on for {on} of {seconds} s"
                f"{f' ({said})' if said else ''}")  # fmt: skip
    for name in signs:
        kind = _ALARM_KIND.get(name)
        if name == "rate_limited":
            limited = {c: n for c, n in w["rate_limited_by"].items() if c in _FLOOD_OF}
            kind = _FLOOD_OF[max(limited, key=limited.__getitem__)] if limited else None
        if kind is not None and 0 < hyp[kind].score < PRESENT:
            hyp[kind].add(0.3, f"{sentence}, and its sign agrees with this one.")
    return sentence


def _false_alarm(w: dict[str, Any], alarm: str) -> str:
    """Why the guard's alarm was a false one, with the numbers that say so."""
    rl = w["fail_ps"]["rate_limited"]
    return (f"{alarm}; a false alarm here: its refusals ({rl:.0f}/s rate-limited, "
            f"{_pct(rl / max(w['rps'], 1e-9))} of requests) fell on sources at a player's pace "
            f"(p90 {w['groups']['playlist']['p90']:.1f} playlist and "
            f"{w['groups']['media']['p90']:.1f} media requests/s), with "
            f"{w['forged_any_ps'] + w['expired_any_ps']:.1f}/s bad tickets carried, "
            f"{w['shared_ps']['req']:.0f}/s requests on shared tickets and "
            f"{_pct(w['paced_share'])} of listeners paced like players.")  # fmt: skip


def word(confidence: float) -> str:
    """Confidence in words."""
    return "high" if confidence >= 0.8 else "medium" if confidence >= 0.6 else "low"


def judge(w: dict[str, Any], b: dict[str, Any]) -> dict[str, Any]:
    """The verdict for a window's features `w` against its baseline's `b`."""
    hyp = {k: Hypothesis(k) for k in ATTACK_KINDS}
    w = {**w, "grid": grid_excess(w["gap_hist"], b["gap_hist"])}
    _floods(w, b, hyp)
    _refusals(w, b, hyp)
    _shared(w, b, hyp)
    _bots(w, b, hyp)
    alarm = _alarm(w, hyp)
    organic, organic_present = _organic(w, b, hyp["bot_listeners"].score >= PRESENT)
    strained = _distress(w)
    attacks = sorted(
        (h for h in hyp.values() if h.score >= PRESENT), key=lambda h: h.score, reverse=True
    )
    attack_score = attacks[0].score if attacks else 0.0
    if attacks and organic_present:
        verdict, confidence = "mixed", min(attack_score, organic.score)
    elif attacks:
        verdict, confidence = "attack", attack_score
    elif organic_present and strained.score >= PRESENT:
        verdict, confidence = "capacity_failure", min(organic.score, strained.score)
    elif organic_present:
        verdict, confidence = "organic_surge", organic.score * (1 - 0.5 * strained.score)
    else:
        verdict = "inconclusive"
        confidence = 1 - max([organic.score, strained.score] + [h.score for h in hyp.values()])
    reasons = [s for h in attacks for _, s in h.clues]
    if verdict != "attack":
        reasons += [s for _, s in organic.clues]
    false_alarm = bool(alarm) and not attacks
    if alarm and attacks:
        reasons.append(f"{alarm}.")
    elif false_alarm:
        reasons.append(_false_alarm(w, alarm))
    reasons += [s for _, s in strained.clues]
    if verdict == "inconclusive" and not reasons:
        reasons.append(f"traffic rose to {w['rps']:.0f} requests/s (baseline {b['rps']:.0f}/s) "
                       "but matched no rule for a crowd or an attack.")  # fmt: skip
    weak = [h for h in hyp.values() if 0 < h.score < PRESENT]
    if verdict == "attack":  # the signs of a crowd that did not make one
        weak.append(organic)
    return {
        "verdict": verdict,
        "kind": attacks[0].name if attacks else None,
        "kinds": [h.name for h in attacks],
        "confidence": round(confidence, 3),
        "grid": w["grid"],
        "attack_mode_s": w["attack_mode_s"],
        "false_alarm": false_alarm,
        "confidence_word": word(confidence),
        "reasons": reasons,
        "weak_signs": [s for h in weak for _, s in h.clues],
        "scores": {
            "organic": organic.score,
            "distress": strained.score,
            **{h.name: h.score for h in hyp.values()},
        },
    }
