"""The guard over HTTP, against a real server: per-source limits that spare other sources,
proof-of-work on join under pressure (single use, bound to its space), cache-busting URLs
refused, a trusted edge's forwarded address used and an untrusted one ignored, and the
evidence of all of it in the hash-chained traffic records that `ruang report` verifies."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx

from ruang.guard.pow import solve
from ruangtest import from_address, join, post_join

FORGED_PER_S = 15


def client(url: str, source: str = "127.0.0.1") -> httpx.Client:
    """An HTTP client whose connections come from `source` (any 127.x.y.z works)."""
    return from_address(url, source)


def until(check: Any, timeout: float = 10.0) -> Any:
    deadline = time.monotonic() + timeout
    while not (result := check()):
        assert time.monotonic() < deadline, "condition not met in time"
        time.sleep(0.1)
    return result


def test_a_join_flood_from_one_address_does_not_refuse_another(server_factory) -> None:
    srv = server_factory(args=("--joins-per-s", "100000", "--pow-max-bits", "0"))
    srv.start()
    with client(srv.url) as flood, client(srv.url, "127.0.9.9") as other:
        sid = flood.post("/api/spaces", json={"title": "Flood"}).json()["id"]
        statuses = [flood.post(f"/api/spaces/{sid}/join").status_code for _ in range(80)]
        assert statuses.count(200) >= 30 and statuses[-1] == 429, statuses
        r = flood.post(f"/api/spaces/{sid}/join")
        assert r.status_code == 429 and r.json()["error"] == "rate_limited"
        assert int(r.headers["retry-after"]) >= 1
        assert other.post(f"/api/spaces/{sid}/join").status_code == 200  # another network
        # listeners already admitted keep listening from the flooding address itself
        listen = join(other, sid)["listen_url"]
        assert flood.get(listen).status_code == 200


def test_under_pressure_a_newcomer_pays_once_and_the_payment_is_single_use(
    server_factory,
) -> None:
    srv = server_factory(args=("--joins-per-s", "1"))
    srv.start()
    with client(srv.url) as api:
        a = api.post("/api/spaces", json={"title": "A"}).json()["id"]
        b = api.post("/api/spaces", json={"title": "B"}).json()["id"]
        for _ in range(5):  # a line forms (1 admission per second)
            post_join(api, f"/api/spaces/{a}/join")
        # the next second's tick sees people waiting: joins now need a proof of work
        r = until(lambda: (x := api.post(f"/api/spaces/{a}/join")).status_code == 428 and x)
        body = r.json()
        assert (
            body["error"] == "proof_of_work_required" and r.headers["cache-control"] == "no-store"
        )
        puzzle = body["pow"]
        assert puzzle["algorithm"] == "sha256" and 12 <= puzzle["difficulty"] <= 20
        proof = {"challenge": puzzle["challenge"], "nonce": solve(puzzle["challenge"], 0)}
        wrong = api.post(f"/api/spaces/{a}/join", json={"pow": proof})
        if wrong.status_code == 428:  # nonce 0 almost never meets 12+ bits
            assert wrong.json()["error"] == "proof_of_work_failed"
        proof["nonce"] = solve(puzzle["challenge"], puzzle["difficulty"])
        # the worker is under pressure for every space, and a puzzle for A never pays for B
        elsewhere = api.post(f"/api/spaces/{b}/join", json={"pow": proof})
        assert elsewhere.status_code == 428, elsewhere.text
        assert elsewhere.json()["error"] == "proof_of_work_failed"
        paid = api.post(f"/api/spaces/{a}/join", json={"pow": proof})
        assert paid.status_code in (200, 202), paid.text
        again = api.post(f"/api/spaces/{a}/join", json={"pow": proof})
        assert again.status_code == 428 and again.json()["error"] == "proof_of_work_failed"
        if paid.status_code == 202:  # in line: polling with the place costs no more work
            place = {"queue": paid.json()["queue"]}
            assert api.post(f"/api/spaces/{a}/join", json=place).status_code in (200, 202)


def test_cache_busting_urls_are_refused_and_player_parameters_pass(server_factory) -> None:
    srv = server_factory()
    srv.start()
    with client(srv.url) as api:
        sid = api.post("/api/spaces", json={"title": "Bust"}).json()["id"]
        listen = join(api, sid)["listen_url"]
        assert api.get(listen).status_code == 200
        for busted in (f"{listen}?x=1", f"{listen}?_HLS_msn=0&cb=123"):
            r = api.get(busted)
            assert r.status_code == 400 and r.json()["error"] == "cache_bust", r.text
        assert api.get(f"{listen}?_HLS_msn=0&_HLS_part=0").status_code == 200


def test_a_trusted_edge_forwards_the_client_and_an_untrusted_one_does_not(
    server_factory,
) -> None:
    srv = server_factory(
        args=("--trusted-proxy", "127.0.0.1", "--joins-per-s", "100000", "--pow-max-bits", "0")
    )
    srv.start()
    with client(srv.url) as edge, client(srv.url, "127.0.7.7") as stranger:
        sid = edge.post("/api/spaces", json={"title": "Edge"}).json()["id"]
        path = f"/api/spaces/{sid}/join"

        def from_(api: httpx.Client, who: str) -> int:
            return api.post(path, headers={"X-Forwarded-For": who}).status_code

        assert [from_(edge, "10.1.1.1") for _ in range(60)][-1] == 429  # 10.1.1.1 spent
        assert from_(edge, "10.2.2.2") == 200  # another client behind the same edge
        # an untrusted peer's header is ignored: its own address is what counts
        assert [from_(stranger, f"10.3.3.{i}") for i in range(60)][-1] == 429


def test_the_evidence_is_chained_and_reported(server_factory, tmp_path: Path) -> None:
    srv = server_factory(args=("--pow-max-bits", "0"))
    srv.start()
    with client(srv.url) as api:
        space = api.post("/api/spaces", json={"title": "Evidence"}).json()
        sid = space["id"]
        listen = join(api, sid)["listen_url"]
        for _ in range(3):
            assert api.get(listen).status_code == 200
        forged = listen.replace("/t/", "/t/x").rsplit("/", 1)[0] + "/live.m3u8"
        # 15 forged tickets a second for 5 s: over the report's floor for a window (10 more
        # refusals a second than usual, for at least 3 s)
        for _second in range(5):
            started = time.monotonic()
            for _ in range(FORGED_PER_S):
                assert api.get(forged).status_code in (401, 403)
            time.sleep(max(0.0, 1.0 - (time.monotonic() - started)))
        host = {"Authorization": f"Bearer {space['host_token']}"}

        def reported() -> Any:
            view = api.get(f"/api/spaces/{sid}", headers=host).json()
            return view.get("guard")

        guard = until(reported, 15)
        assert guard["attack_mode"] is False and guard["pow_difficulty"] == 0
        metrics = api.get("/metrics").text
        assert "ruang_attack_mode{" in metrics and "ruang_pow_difficulty{" in metrics
    time.sleep(2.2)  # the last second closes and is flushed
    srv.stop()  # the worker writes and syncs what is left
    out = tmp_path / "report"
    done = subprocess.run(
        [sys.executable, "-m", "ruang.cli", "report", "--data-dir", str(srv.data_dir)]
        + ["--space", sid, "--out", str(out)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    report = json.loads((out / "report.json").read_text())
    assert "<html" in (out / "report.html").read_text().lower()
    assert report["verified"] is True and report["space"] == sid
    # every forged-ticket request is counted as such, and the window they fall in is judged
    # an attack of that kind
    assert sum(report["series"]["forged"]) == 5 * FORGED_PER_S, report["series"]["forged"]
    judged = [(i["verdict"], i["kind"], i["kinds"]) for i in report["incidents"]]
    assert any(v == "attack" and "forged_tickets" in kinds for v, _, kinds in judged), judged
    chains = list((srv.data_dir / "forensics").glob("*.jsonl"))
    assert chains
    # editing one recorded second breaks the chain, and the report says so
    path = chains[0]
    lines = path.read_text().splitlines()
    record = json.loads(lines[0])
    record["total"]["req"] = int(record["total"]["req"]) + 1000
    lines[0] = json.dumps(record, sort_keys=True, separators=(",", ":"))
    path.write_text("\n".join(lines) + "\n")
    broken = subprocess.run(
        [sys.executable, "-m", "ruang.cli", "report", "--data-dir", str(srv.data_dir)]
        + ["--out", str(tmp_path / "again")],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert broken.returncode == 1, broken.stdout + broken.stderr


def test_one_ticket_asking_for_a_crowd_is_held_to_a_player_and_unknown_paths_cost_nothing(
    server_factory,
) -> None:
    srv = server_factory()
    srv.start()
    with client(srv.url) as api:
        sid = api.post("/api/spaces", json={"title": "Shared ticket"}).json()["id"]
        shared = join(api, sid)["listen_url"]
        own = join(api, sid)["listen_url"]
        statuses = [api.get(shared).status_code for _ in range(120)]
        assert statuses.count(200) >= 60 and statuses[-1] == 429, statuses  # bots on 1 ticket
        assert api.get(own).status_code == 200  # the same address, another listener: fine
        r = api.get("/wp-login.php")
        assert r.status_code == 404 and r.json()["error"] == "not_found"
