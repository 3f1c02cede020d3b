"""The incident report: read chains, verify them, merge workers and nodes by second, find the
incident windows and judge each one. `build_report` is pure (records in, dict out);
`load` and `write_report` do the I/O; `render_html` lives in `render.py`."""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

from ruang.forensics.chain import Checked, chain_files, read_and_verify
from ruang.forensics.features import MEDIA, merge, merge_signals
from ruang.forensics.verdict import judge
from ruang.forensics.window import BASELINE_S, find_windows, summarise

REPORT_VERSION = 1
CONTEXT_S = 30  # seconds of series shown before and after each window
Reader = Callable[[Mapping[str, Any]], Any]


def _share_new(s: Mapping[str, Any]) -> float:
    return round(1 - sum(s.get("net_age", ())[1:]) / s["net"], 3) if s.get("net") else 0.0


SERIES: dict[str, Reader] = {  # column -> how it is read from a merged second
    "req": lambda s: s.get("req", 0),
    "join": lambda s: sum(s.get("by", {}).get("join", {}).values()),
    "playlist": lambda s: sum(s.get("by", {}).get("playlist", {}).values()),
    "media": lambda s: sum(sum(s.get("by", {}).get(c, {}).values()) for c in MEDIA),
    "src": lambda s: s.get("src", 0),
    "net": lambda s: s.get("net", 0),
    "new_net_share": lambda s: _share_new(s),
    "ent_n": lambda s: s.get("ent_n", 0),
    "rate_p90": lambda s: s.get("rate", {}).get("p90", 0),
    "rate_max": lambda s: s.get("rate", {}).get("max", 0),
    "lis": lambda s: s.get("lis", 0),
    "lis_paced": lambda s: s.get("lis_paced", 0),
    "lis_known": lambda s: sum(s.get("lis_age", ())[1:]),
    "tix": lambda s: s.get("tix", 0),
    "listen": lambda s: s.get("listen", 0),
    "refused": lambda s: sum(v for k, v in s.get("fail", {}).items() if k not in ("pow_required",)),
    "forged": lambda s: s.get("fail", {}).get("forged", 0),
    "cache_bust": lambda s: s.get("fail", {}).get("cache_bust", 0),
    "timeout": lambda s: s.get("fail", {}).get("timeout", 0),
    "shed": lambda s: s.get("fail", {}).get("shed", 0),
    "parts_ok": lambda s: s.get("parts_ok", 0),
    "parts_late": lambda s: s.get("parts_late", 0),
    "loop_lag_s": lambda s: s.get("signals", {}).get("loop_lag_s", 0),
    "shed_level": lambda s: s.get("signals", {}).get("shed_level", 0),
    "attack_mode": lambda s: s.get("signals", {}).get("attack_mode", 0),
    "pow_difficulty": lambda s: s.get("signals", {}).get("pow_difficulty", 0),
}  # fmt: skip


def load(data_dirs: Iterable[Path]) -> Checked:
    """Read and verify every chain under each DATA_DIR/forensics (or DATA_DIR itself)."""
    paths: list[Path] = []
    for d in data_dirs:
        root = d / "forensics" if (d / "forensics").is_dir() else d
        paths += chain_files(root)
    return read_and_verify(paths)


def per_second(
    records: Iterable[Mapping[str, Any]], space: str | None = None
) -> list[dict[str, Any]]:
    """One merged dict per second (workers and nodes combined) for the node-wide totals or one
    space, contiguous from the first second to the last (silent seconds as zeros)."""
    stats: dict[int, list[Mapping[str, Any]]] = {}
    signals: dict[int, list[Mapping[str, float]]] = {}
    for r in records:
        t = int(r["t"])
        scope = r.get("total") if space is None else r.get("spaces", {}).get(space)
        if scope:
            stats.setdefault(t, []).append(scope)
        if r.get("signals"):
            signals.setdefault(t, []).append(r["signals"])
    seconds = sorted(set(stats) | set(signals))
    if not seconds:
        return []
    out = []
    for t in range(seconds[0], seconds[-1] + 1):
        s: dict[str, Any] = merge(stats[t]) if t in stats else {"req": 0}
        s["t"] = t
        s["signals"] = merge_signals(signals.get(t, []))
        out.append(s)
    return out


def columns(seconds: Sequence[Mapping[str, Any]]) -> dict[str, list[Any]]:
    """The raw per-second series as columns (t first)."""
    cols: dict[str, list[Any]] = {"t": [s["t"] for s in seconds]}
    for name, read in SERIES.items():
        cols[name] = [read(s) for s in seconds]
    return cols


def build_report(
    records: Sequence[Mapping[str, Any]],
    *,
    space: str | None = None,
    since: float | None = None,
    until: float | None = None,
    chains: Sequence[Mapping[str, Any]] = (),
    problems: Sequence[str] = (),
) -> dict[str, Any]:
    """The report as a JSON-able dict: incident windows with verdicts, series, chain heads."""
    chosen = [
        r
        for r in records
        if (since is None or r["t"] >= since) and (until is None or r["t"] <= until)
    ]
    seconds = per_second(chosen, space)
    incidents = _incidents(seconds)
    node_wide: list[dict[str, Any]] = []
    if space is not None and seconds:
        # what hit the node while this space ran, though it named no space (slowloris holds
        # connections before any path is read), marked as node-wide
        first, last = seconds[0]["t"], seconds[-1]["t"]
        spaceless = _spaceless(chosen)
        for inc in _incidents(per_second(chosen, None)):
            if inc["end"] >= first and inc["start"] <= last:
                inside = [spaceless.get(t, 0) for t in range(inc["start"], inc["end"] + 1)]
                inc["node_wide"] = True
                inc["spaceless_rps"] = round(sum(inside) / len(inside), 2)
                node_wide.append(inc)
    spaces: dict[str, int] = {}
    for r in chosen:
        for sid, st in r.get("spaces", {}).items():
            spaces[sid] = spaces.get(sid, 0) + int(st.get("req", 0))
    return {
        "version": REPORT_VERSION,
        "generated_at": round(time.time(), 3),
        "scope": space or "node-wide (every space and request)",
        "space": space,
        "range": [seconds[0]["t"], seconds[-1]["t"]] if seconds else None,
        "verified": not problems,
        "problems": list(problems),
        "chains": list(chains),
        "spaces": dict(sorted(spaces.items(), key=lambda kv: -kv[1])),
        "incidents": incidents,
        "node_incidents": node_wide,
        "series": columns(seconds),
    }


def _incidents(seconds: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """The incident windows of a per-second series, each judged against its baseline."""
    by_t = {s["t"]: i for i, s in enumerate(seconds)}
    windows = find_windows(seconds)
    flagged = {t for a, b in windows for t in range(a, b + 1)}
    incidents = []
    for n, (a, b) in enumerate(windows, 1):
        inside = seconds[by_t[a] : by_t[b] + 1]
        before = [
            s for s in seconds[max(0, by_t[a] - BASELINE_S) : by_t[a]] if s["t"] not in flagged
        ]
        w, base = summarise(inside, since=a), summarise(before)
        lo, hi = max(0, by_t[a] - CONTEXT_S), min(len(seconds), by_t[b] + CONTEXT_S + 1)
        incidents.append(
            {
                "id": n,
                "start": a,
                "end": b,
                "duration_s": b - a + 1,
                "baseline": {"start": before[0]["t"] if before else None, "seconds": len(before)},
                **judge(w, base),
                "features": w,
                "baseline_features": base,
                "series": columns(seconds[lo:hi]),
            }
        )
    return incidents


def _spaceless(records: Iterable[Mapping[str, Any]]) -> dict[int, int]:
    """Per second, the requests that named no space (node-wide total minus every space's)."""
    out: dict[int, int] = {}
    for r in records:
        named = sum(int(st.get("req", 0)) for st in r.get("spaces", {}).values())
        t = int(r["t"])
        out[t] = out.get(t, 0) + int(r.get("total", {}).get("req", 0)) - named
    return out


def write_report(report: Mapping[str, Any], out: Path) -> tuple[Path, Path]:
    """Write report.json and report.html into `out`."""
    from ruang.forensics.render import render_html

    out.mkdir(parents=True, exist_ok=True)
    json_path, html_path = out / "report.json", out / "report.html"
    json_path.write_text(json.dumps(report, indent=1) + "\n")
    html_path.write_text(render_html(report))
    return json_path, html_path


def parse_time(text: str) -> float:
    """Unix seconds, or an ISO 8601 time (UTC unless it names its zone)."""
    try:
        return float(text)
    except ValueError:
        pass
    from datetime import UTC, datetime

    parsed = datetime.fromisoformat(text.replace("Z", "+00:00"))
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    return parsed.timestamp()


def run(
    data_dirs: Sequence[Path],
    out: Path,
    space: str | None = None,
    since: float | None = None,
    until: float | None = None,
) -> int:
    """`ruang report`: print a summary, write the files; exit status 1 if a chain is broken,
    2 if there is nothing to report."""
    checked = load(data_dirs)
    if not checked.records:
        print(f"no forensic records under {', '.join(str(d) for d in data_dirs)}")
        return 2
    report = build_report(
        checked.records,
        space=space,
        since=since,
        until=until,
        chains=[c.as_dict() for c in checked.chains],
        problems=checked.problems,
    )
    json_path, html_path = write_report(report, out)
    print(f"{len(checked.records)} records in {len(checked.chains)} chains, "
          f"{'verified' if checked.ok else 'CHAIN PROBLEMS'}")  # fmt: skip
    for p in checked.problems[:20]:
        print(f"  ! {p}")
    for inc in report["incidents"]:
        kind = f" ({inc['kind']})" if inc["kind"] else ""
        print(
            f"incident {inc['id']}: {_iso(inc['start'])} +{inc['duration_s']} s: "
            f"{inc['verdict']}{kind}, confidence {inc['confidence']:.2f} ({inc['confidence_word']})"
        )
    if not report["incidents"]:
        print("no incident windows")
    print(f"wrote {json_path} and {html_path}")
    return 0 if checked.ok else 1


def _iso(t: float) -> str:
    return time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(t))
