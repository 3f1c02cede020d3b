"""The chain: records on disk are linked, bounded, resumed, and tampering is caught."""

from __future__ import annotations

import json
from pathlib import Path

from ruang.forensics.chain import GENESIS, read_and_verify, record_hash, verify
from ruang.forensics.recorder import TrafficRecorder

T0 = 1_800_000_000


def write_seconds(rec: TrafficRecorder, first: int, count: int, per_s: int = 5) -> None:
    for sec in range(first, first + count):
        for i in range(per_s):
            rec.request(sec + i / per_s, "sp", "part", "ok", f"10.0.0.{i}", "10.0.0.0/24")
        rec.flush(sec + 1.0)


def chain(tmp_path: Path, count: int = 20) -> list[Path]:
    rec = TrafficRecorder(tmp_path, "n1", 0)
    write_seconds(rec, T0, count)
    rec.close()
    return sorted(tmp_path.glob("*.jsonl"))


def lines(path: Path) -> list[str]:
    return path.read_text().splitlines()


def test_an_intact_chain_verifies(tmp_path: Path) -> None:
    paths = chain(tmp_path)
    assert verify(paths) == (True, [])
    checked = read_and_verify(paths)
    assert [r["seq"] for r in checked.records] == list(range(20))
    assert checked.records[0]["prev"] == GENESIS
    assert checked.chains[0].head == checked.records[-1]["hash"]
    assert all(r["hash"] == record_hash(r) for r in checked.records)


def test_an_edited_record_is_caught(tmp_path: Path) -> None:
    (path,) = chain(tmp_path)
    rows = lines(path)
    record = json.loads(rows[7])
    record["total"]["req"] += 1
    rows[7] = json.dumps(record, sort_keys=True, separators=(",", ":"))
    path.write_text("\n".join(rows) + "\n")
    ok, problems = verify([path])
    assert not ok
    assert any("seq 7 was altered" in p for p in problems), problems


def test_an_edited_record_with_its_hash_recomputed_breaks_the_next_link(tmp_path: Path) -> None:
    (path,) = chain(tmp_path)
    rows = lines(path)
    record = json.loads(rows[7])
    record["total"]["req"] = 0
    record["hash"] = record_hash(record)
    rows[7] = json.dumps(record, sort_keys=True, separators=(",", ":"))
    path.write_text("\n".join(rows) + "\n")
    ok, problems = verify([path])
    assert not ok
    assert any("seq 8 does not follow seq 7" in p for p in problems), problems


def test_a_deleted_record_is_caught(tmp_path: Path) -> None:
    (path,) = chain(tmp_path)
    rows = lines(path)
    del rows[5]
    path.write_text("\n".join(rows) + "\n")
    ok, problems = verify([path])
    assert not ok
    assert any("seq jumps from 4 to 6" in p for p in problems), problems


def test_reordered_records_are_caught(tmp_path: Path) -> None:
    (path,) = chain(tmp_path)
    rows = lines(path)
    rows[3], rows[4] = rows[4], rows[3]
    path.write_text("\n".join(rows) + "\n")
    ok, problems = verify([path])
    assert not ok
    assert any("does not follow" in p for p in problems), problems


def test_a_chain_resumes_after_a_restart_and_cuts_a_torn_line(tmp_path: Path) -> None:
    chain(tmp_path, 5)
    (path,) = tmp_path.glob("*.jsonl")
    with path.open("ab") as f:
        f.write(b'{"node":"n1","worker":0,"seq":5,"t":')  # a crash mid-write
    rec = TrafficRecorder(tmp_path, "n1", 0)
    write_seconds(rec, T0 + 5, 5)
    rec.close()
    checked = read_and_verify(sorted(tmp_path.glob("*.jsonl")))
    assert checked.ok, checked.problems
    assert [r["seq"] for r in checked.records] == list(range(10))


def test_chains_of_several_workers_are_checked_apart(tmp_path: Path) -> None:
    for worker in (0, 1):
        rec = TrafficRecorder(tmp_path, "n1", worker)
        write_seconds(rec, T0, 4)
        rec.close()
    checked = read_and_verify(tmp_path.glob("*.jsonl"))
    assert checked.ok
    assert [(c.node, c.worker, c.records) for c in checked.chains] == [("n1", 0, 4), ("n1", 1, 4)]


def test_the_chain_stays_within_max_bytes_and_still_verifies(tmp_path: Path) -> None:
    budget = 16_384
    rec = TrafficRecorder(tmp_path, "n1", 0, max_bytes=budget)
    for k in range(60):
        write_seconds(rec, T0 + 10 * k, 10, per_s=20)
        on_disk = sum(p.stat().st_size for p in tmp_path.glob("*.jsonl"))
        assert on_disk <= budget, (k, on_disk)
    rec.close()
    stats = rec.statistics()
    assert stats["files_deleted"] > 0
    assert stats["records_written"] == 600
    checked = read_and_verify(tmp_path.glob("*.jsonl"))
    assert checked.ok, checked.problems
    (info,) = checked.chains
    assert info.anchor != GENESIS  # the oldest records were rotated away: the anchor says so
    assert info.last_seq == 599 and info.first_seq > 0
