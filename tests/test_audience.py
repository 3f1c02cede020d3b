"""Audience figures: presence expires, sketches merge across workers, peak and timeline hold."""

from __future__ import annotations

import time

import httpx

from ruang.audience import AudienceBook, WorkerAudience
from ruangtest import join


def test_workers_add_up_and_unique_merges() -> None:
    a, b = WorkerAudience(), WorkerAudience()
    for i in range(3000):
        a.seen("s", f"l{i}", 0.0)
    for i in range(2000, 5000):  # 1000 listeners seen by both workers
        b.seen("s", f"l{i}", 0.0)
    book = AudienceBook()
    book.ingest("a", a.report(1.0), 1.0)
    book.ingest("b", b.report(1.0), 1.0)
    snap = book.snapshot("s", 1.0)
    assert snap["current"] == 6000  # present on each worker: they are added
    assert abs(snap["unique"] - 5000) < 5000 * 0.05  # distinct people: merged
    assert snap["peak"] == 6000


def test_presence_expires_and_peak_stays() -> None:
    w = WorkerAudience()
    for i in range(10):
        w.seen("s", f"l{i}", 0.0)
    book = AudienceBook()
    book.ingest("w", w.report(1.0), 1.0)
    book.ingest("w", w.report(100.0), 100.0)
    snap = book.snapshot("s", 100.0)
    assert snap["current"] == 0 and snap["peak"] == 10 and snap["unique"] == 10
    assert [n for _, n in snap["timeline"]] == [10, 0]
    assert book.snapshot("s", 200.0)["current"] == 0  # a silent worker stops counting


def test_bad_reports_are_skipped() -> None:
    book = AudienceBook()
    book.ingest("w", {"s": {"current": "many"}, "t": {"current": 2, "hll": "%%%"}}, 0.0)
    assert book.snapshot("s", 0.0)["current"] == 0
    t = book.snapshot("t", 0.0)
    assert t["current"] == 2 and t["unique"] == 0  # counted, but its broken sketch is not


def test_host_sees_listeners(api: httpx.Client) -> None:
    space = api.post("/api/spaces", json={"title": "Audience"}).json()
    auth = {"Authorization": f"Bearer {space['host_token']}"}
    for _ in range(5):
        listen = join(api, space["id"])["listen_url"]
        assert api.get(listen).status_code == 200
    deadline = time.monotonic() + 10
    figures = {}
    while time.monotonic() < deadline:
        figures = api.get(f"/api/spaces/{space['id']}", headers=auth).json()["listeners"]
        if figures["current"] == 5:
            break
        time.sleep(0.5)
    assert figures["current"] == 5 and figures["unique"] == 5 and figures["peak"] == 5
    assert "listeners" not in api.get(f"/api/spaces/{space['id']}").json()  # host only
    metrics = api.get("/metrics").text
    assert f'ruang_listeners{{space="{space["id"]}"}} 5.0' in metrics
