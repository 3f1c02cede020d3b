"""One guard per node: a source's budget is the configured one whatever `--workers` is."""

from __future__ import annotations

import json
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx

API_BURST, API_RATE = 50, 10.0  # the "api" class's per-address budget (guard.ratelimit)


def served_by_worker(data_dir: Path) -> dict[str, int]:
    """Requests each worker's traffic recorder counted (its evidence files)."""
    counts: dict[str, int] = {}
    for path in sorted((data_dir / "forensics").rglob("*.jsonl")):
        for line in path.read_text().splitlines():
            record = json.loads(line)
            if "total" in record:
                key = str(record.get("worker"))
                counts[key] = counts.get(key, 0) + int(record["total"].get("req", 0))
    return counts


def test_one_source_gets_one_budget_from_two_workers(server_factory) -> None:
    srv = server_factory(args=("--workers", "2", "--media-processes", "1"))
    srv.start()
    fresh = httpx.Limits(max_keepalive_connections=0)  # a new connection, any worker, each time

    def ask(_: int) -> int:
        with httpx.Client(base_url=srv.url, timeout=10, limits=fresh) as client:
            return client.get("/api/spaces/nosuchspace").status_code

    began = time.monotonic()
    with ThreadPoolExecutor(8) as pool:
        statuses = list(pool.map(ask, range(400)))
    elapsed = time.monotonic() - began
    passed = sum(s != 429 for s in statuses)
    # the node's budget: the burst, then the rate (two workers each with their own would
    # let about twice that through); a few lost updates between racing workers are allowed
    assert passed >= API_BURST
    assert passed <= API_BURST + API_RATE * elapsed + 5, (passed, elapsed)
    time.sleep(2.2)  # the workers write their second's evidence
    workers = served_by_worker(srv.data_dir)
    assert len([n for n in workers.values() if n > 0]) == 2, workers  # both workers answered
