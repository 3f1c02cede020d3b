"""The report as one self-contained HTML page: verdicts, reasons, plots (embedded PNGs when
matplotlib is installed, tables otherwise), raw series and the chain heads to verify."""

from __future__ import annotations

import base64
import html
import io
import time
from collections.abc import Mapping, Sequence
from typing import Any

COLOURS = {
    "organic_surge": "#2e7d32",
    "capacity_failure": "#ef6c00",
    "attack": "#c62828",
    "mixed": "#6a1b9a",
    "inconclusive": "#546e7a",
}
PANELS = (  # (title, [(column, label)]) plotted one above the other
    ("requests per second", [("join", "join"), ("playlist", "playlist"), ("media", "media"),
                             ("refused", "refused"), ("req", "all")]),
    ("who", [("src", "sources"), ("net", "networks"), ("lis", "listeners"),
             ("lis_known", "listeners from known networks")]),
    ("shape (0–1)", [("new_net_share", "new networks"), ("ent_n", "source entropy (norm.)")]),
    ("server", [("loop_lag_s", "loop lag (s)"), ("shed_level", "shed level"),
                ("parts_late", "late parts"), ("attack_mode", "attack mode")]),
)  # fmt: skip
TABLE_COLUMNS = ("req", "join", "playlist", "media", "refused", "src", "net", "new_net_share",
                 "ent_n", "rate_p90", "rate_max", "lis", "lis_paced", "tix", "listen",
                 "parts_late", "loop_lag_s", "shed_level", "attack_mode")  # fmt: skip


def _e(x: Any) -> str:
    return html.escape(str(x))


def _iso(t: float) -> str:
    return time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime(t))


def plot_png(series: Mapping[str, Sequence[Any]], window: tuple[int, int] | None) -> str | None:
    """A base64 PNG of the series (one panel per PANELS row), or None without matplotlib."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return None
    t = list(series["t"])
    if not t:
        return None
    x = [v - t[0] for v in t]
    fig, axes = plt.subplots(len(PANELS), 1, figsize=(9, 2.1 * len(PANELS)), sharex=True)
    for ax, (title, lines) in zip(axes, PANELS, strict=True):
        for column, label in lines:
            ax.plot(x, series[column], label=label, linewidth=1.2)
        if window is not None:
            ax.axvspan(window[0] - t[0], window[1] - t[0], color="#ffcc80", alpha=0.35)
        ax.set_title(title, fontsize=9, loc="left")
        ax.legend(fontsize=7, loc="upper left", ncols=3)
        ax.tick_params(labelsize=7)
    axes[-1].set_xlabel(f"seconds after {_iso(t[0])}", fontsize=8)
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=80)
    plt.close(fig)
    return base64.b64encode(buf.getvalue()).decode("ascii")


def _table(series: Mapping[str, Sequence[Any]]) -> str:
    cols = [c for c in TABLE_COLUMNS if c in series]
    head = "".join(f"<th>{_e(c)}</th>" for c in ["time", *cols])
    rows = []
    for i, t in enumerate(series["t"]):
        cells = "".join(f"<td>{_e(series[c][i])}</td>" for c in cols)
        rows.append(f"<tr><td>{_e(time.strftime('%H:%M:%S', time.gmtime(t)))}</td>{cells}</tr>")
    return f"<table class=series><tr>{head}</tr>{''.join(rows)}</table>"


def _features(w: Mapping[str, Any], b: Mapping[str, Any]) -> str:
    rows = []
    for key, value in w.items():
        if isinstance(value, dict):
            continue
        rows.append(f"<tr><td>{_e(key)}</td><td>{_e(value)}</td><td>{_e(b.get(key))}</td></tr>")
    return (
        f"<table><tr><th>feature</th><th>window</th><th>baseline</th></tr>{''.join(rows)}</table>"
    )


def _incident(inc: Mapping[str, Any]) -> str:
    colour = COLOURS.get(inc["verdict"], "#333")
    kind = f" — {', '.join(inc['kinds'])}" if inc.get("kinds") else ""
    reasons = "".join(f"<li>{_e(r)}</li>" for r in inc["reasons"])
    weak = "".join(f"<li>{_e(r)}</li>" for r in inc.get("weak_signs", []))
    png = plot_png(inc["series"], (inc["start"], inc["end"]))
    picture = (
        f'<img alt="series around incident {inc["id"]}" src="data:image/png;base64,{png}">'
        if png
        else "<p><em>matplotlib is not installed: the series are in the table below.</em></p>"
    )
    base = inc["baseline"]
    baseline = (
        f"baseline: {base['seconds']} calm seconds from {_iso(base['start'])}"
        if base["start"] is not None
        else "no baseline (the record starts here)"
    )
    return f"""
<section class=incident>
<h2>Incident {inc["id"]}: <span class=badge style="background:{colour}">{_e(inc["verdict"])}{_e(kind)}</span></h2>
<p>{_e(_iso(inc["start"]))} → {_e(_iso(inc["end"]))} ({inc["duration_s"]} s); {_e(baseline)}.
Confidence <b>{inc["confidence"]:.2f}</b> ({_e(inc["confidence_word"])}).</p>
<h3>Reasons</h3><ul>{reasons}</ul>
{f"<h3>Weaker signs (below the threshold)</h3><ul>{weak}</ul>" if weak else ""}
{picture}
<details><summary>Features, window against baseline</summary>
{_features(inc["features"], inc["baseline_features"])}</details>
<details{" open" if not png else ""}><summary>Raw series (per second)</summary>
{_table(inc["series"])}</details>
</section>"""  # noqa: E501


def _node_wide(incidents: list[Mapping[str, Any]]) -> str:
    if not incidents:
        return ""
    sections = "".join(
        _incident({**inc, "id": f"node-wide {inc['id']}"}).replace(
            "<h3>Reasons</h3>",
            f"<p><em>Node-wide: judged on the whole node's traffic, of which "
            f"{inc.get('spaceless_rps', 0):.0f} requests/s named no space.</em></p>"
            "<h3>Reasons</h3>",
            1,
        )
        for inc in incidents
    )
    return (
        "<h2>Node-wide incidents while this space ran</h2><p>What hit the node as a whole "
        "during this space's records, some of it naming no space (a slowloris holds "
        f"connections before any path is read).</p>{sections}"
    )


def render_html(report: Mapping[str, Any]) -> str:
    """The whole report as one HTML page (no external resources)."""
    chains = "".join(
        f"<tr><td>{_e(c['node'])}</td><td>{c['worker']}</td><td>{c['records']}</td>"
        f"<td>{c['first_seq']}–{c['last_seq']}</td><td><code>{_e(c['anchor'])}</code></td>"
        f"<td><code>{_e(c['head'])}</code></td></tr>"
        for c in report["chains"]
    )
    problems = "".join(f"<li>{_e(p)}</li>" for p in report["problems"])
    status = (
        "<p class=ok>Every chain verified: each record's SHA-256 matches and links to the one "
        "before.</p>"
        if report["verified"]
        else f"<p class=bad>Chain problems:</p><ul>{problems}</ul>"
    )
    summary = "".join(
        f"<tr><td>{inc['id']}</td><td>{_e(_iso(inc['start']))}</td><td>{inc['duration_s']} s</td>"
        f"<td>{_e(inc['verdict'])}</td><td>{_e(inc['kind'] or '')}</td>"
        f"<td>{inc['confidence']:.2f} ({_e(inc['confidence_word'])})</td></tr>"
        for inc in report["incidents"]
    )
    rng = report["range"]
    overview = plot_png(report["series"], None) if report["series"]["t"] else None
    span = f"{_iso(rng[0])} → {_iso(rng[1])}" if rng else "no records"
    return f"""<!doctype html>
<html lang=en><head><meta charset=utf-8><title>Ruang incident report</title>
<style>
body{{font:14px/1.45 system-ui,sans-serif;max-width:1000px;margin:2em auto;padding:0 1em}}
table{{border-collapse:collapse;font-size:12px;margin:.5em 0}}
td,th{{border:1px solid #ccc;padding:2px 6px;text-align:right}}
th{{background:#f3f3f3}} code{{font-size:11px;word-break:break-all}}
.badge{{color:#fff;padding:2px 8px;border-radius:4px}} .ok{{color:#2e7d32}} .bad{{color:#c62828}}
.incident{{border-top:2px solid #ddd;margin-top:2em}} img{{max-width:100%}}
table.series{{display:block;max-height:420px;overflow:auto}}
</style></head><body>
<h1>Incident report</h1>
<p>Scope: {_e(report["scope"])}. Records: {_e(span)}.</p>
{status}
<table><tr><th>#</th><th>start</th><th>length</th><th>verdict</th><th>kind</th>
<th>confidence</th></tr>{summary}</table>
{"" if report["incidents"] else "<p>No incident windows: traffic stayed near its baseline.</p>"}
{f'<img alt="overview" src="data:image/png;base64,{overview}">' if overview else ""}
{"".join(_incident(inc) for inc in report["incidents"])}
{_node_wide(report.get("node_incidents", []))}
<h2>Chains</h2>
<p>To check this report, recompute each record's hash (SHA-256 of its canonical JSON without
<code>hash</code>) and follow <code>prev</code> from the anchor to the head
(<code>ruang report</code> does it). An anchor other than zeros means older records were
rotated away.</p>
<table><tr><th>node</th><th>worker</th><th>records</th><th>seq</th><th>anchor</th>
<th>head</th></tr>{chains}</table>
</body></html>
"""
