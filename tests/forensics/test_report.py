"""The report: JSON and HTML from chains on disk, through `ruang report`."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import pytest
from forensics_sim import T0, Run, addresses, hammer, players, prefixes

from ruang.cli import main
from ruang.forensics import build_report, render_html

EVENT, END = T0 + 90, T0 + 110


def recorded(data_dir: Path, space: str = "sp1") -> list[dict[str, Any]]:
    run = Run(data_dir / "forensics")
    audience = players(addresses(30, prefixes(0, 30)), T0, END, "a", ramp_s=10)
    bots = hammer(addresses(10, prefixes(900, 10)), EVENT, END, 10, "part", ("ticket_forged",))
    run.play(T0, END, [audience, bots])
    run.close()
    return run.records


def test_the_report_carries_verdicts_series_and_chain_heads(tmp_path: Path) -> None:
    records = recorded(tmp_path)
    report = build_report(records, chains=[{"node": "n1", "head": records[-1]["hash"]}])
    (inc,) = report["incidents"]
    assert (inc["verdict"], inc["kind"]) == ("attack", "forged_tickets")
    assert len(inc["series"]["t"]) == len(inc["series"]["forged"])
    assert max(inc["series"]["forged"]) >= 90
    assert report["series"]["t"][0] == T0 and list(report["spaces"]) == ["sp1"]
    json.dumps(report)  # JSON all the way down
    only_space = build_report(records, space="sp1", since=EVENT - 60, until=END)
    assert only_space["range"] == [EVENT - 60, END - 1]
    assert only_space["incidents"][0]["kind"] == "forged_tickets"


def test_the_html_is_self_contained_with_plots(tmp_path: Path) -> None:
    page = render_html(build_report(recorded(tmp_path)))
    assert "forged_tickets" in page and "data:image/png;base64," in page
    assert "http://" not in page and "https://" not in page  # nothing fetched from elsewhere


def test_the_html_falls_back_to_tables_without_matplotlib(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(sys.modules, "matplotlib", None)  # import matplotlib -> ImportError
    page = render_html(build_report(recorded(tmp_path)))
    assert "data:image/png" not in page
    assert "matplotlib is not installed" in page and "<table class=series>" in page


def test_ruang_report_writes_both_files_and_flags_a_broken_chain(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    recorded(tmp_path)
    out = tmp_path / "out"
    with pytest.raises(SystemExit) as exit_:
        main(["report", "--data-dir", str(tmp_path), "--out", str(out)])
    assert exit_.value.code == 0
    report = json.loads((out / "report.json").read_text())
    assert report["verified"] and report["incidents"][0]["kind"] == "forged_tickets"
    assert report["chains"][0]["head"] and not report["chains"][0]["rotated_away"]
    assert (out / "report.html").read_text().startswith("<!doctype html>")
    assert "forged_tickets" in capsys.readouterr().out

    (chain,) = (tmp_path / "forensics").glob("*.jsonl")
    rows = chain.read_text().splitlines()
    chain.write_text("\n".join(rows[:10] + rows[11:]) + "\n")  # one second removed
    with pytest.raises(SystemExit) as exit_:
        main(["report", "--data-dir", str(tmp_path), "--out", str(out)])
    assert exit_.value.code == 1
    assert not json.loads((out / "report.json").read_text())["verified"]

    with pytest.raises(SystemExit) as exit_:
        main(["report", "--data-dir", str(tmp_path / "empty"), "--out", str(out)])
    assert exit_.value.code == 2
