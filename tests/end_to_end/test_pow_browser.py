"""Headless Chromium solves the join's proof-of-work with pow.js (Web Workers, hand-written
SHA-256), and what it finds verifies in Python; the listener page, told 428, solves and joins
again with the solution. Solve times per difficulty are printed (`pytest -s`) for
docs/GUARD.md.

A tiny local HTTP server plays the delivery worker: it serves the real static files and
answers the space's metadata and join with a real `ProofOfWork`."""

from __future__ import annotations

import json
import statistics
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from ruang.guard.pow import ProofOfWork
from ruang_bench.tools.chromium import CHROMIUM, HEADLESS_ARGS

STATIC = Path(__file__).resolve().parents[2] / "src" / "ruang" / "web" / "static"
CHROMIUM_ARGS = list(HEADLESS_ARGS)
KEY = b"t" * 32
SPACE = "powspace1"
TYPES = {
    ".js": "text/javascript",
    ".css": "text/css",
    ".html": "text/html",
    ".svg": "image/svg+xml",
}
TIMED_BITS = (8, 12, 14, 16, 18)
RUNS = 7  # solves per difficulty: the number of tries is geometric, so report the median


class FakeWorker:
    """What the delivery worker does on join when proof-of-work is armed (docs/GUARD.md)."""

    def __init__(self, bits: int) -> None:
        self.pow = ProofOfWork(KEY)
        self.pow.difficulty = bits
        self.joins: list[tuple[dict[str, Any], str | None]] = []

    def join(self, body: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        error = self.pow.verify(SPACE, body.get("pow"), time.time())
        self.joins.append((body, error))
        if error is not None:
            pow_ = self.pow.challenge(SPACE, time.time())
            return 428, {"error": error, "message": "Solve this first.", "pow": pow_}
        return 200, {"listen_url": f"/hls/{SPACE}/t/x/live.m3u8", "state": "live"}


def handler(worker: FakeWorker) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args: object) -> None:
            pass

        def send(self, status: int, body: bytes, ctype: str) -> None:
            self.send_response(status)
            self.send_header("Content-Type", ctype)
            self.send_header("Content-Length", str(len(body)))
            self.send_header("Cache-Control", "no-store")
            self.end_headers()
            self.wfile.write(body)

        def do_GET(self) -> None:
            path = self.path.split("?")[0]
            if path == "/blank":
                self.send(200, b"<!doctype html><title>pow</title>", "text/html")
            elif path == f"/s/{SPACE}":
                self.send(200, (STATIC / "listen.html").read_bytes(), "text/html")
            elif path == f"/api/spaces/{SPACE}":
                meta = {"id": SPACE, "title": "PoW", "state": "live", "stage": []}
                self.send(200, json.dumps(meta).encode(), "application/json")
            elif path.startswith("/static/") and ".." not in path:
                file = STATIC / path.removeprefix("/static/")
                if file.is_file():
                    self.send(200, file.read_bytes(), TYPES.get(file.suffix, "text/plain"))
                else:
                    self.send(404, b"{}", "application/json")
            else:
                self.send(404, b'{"error": "not_found"}', "application/json")

        def do_POST(self) -> None:
            body = json.loads(self.rfile.read(int(self.headers["Content-Length"] or 0)) or b"{}")
            if self.path == f"/api/spaces/{SPACE}/join":
                status, answer = worker.join(body)
                self.send(status, json.dumps(answer).encode(), "application/json")
            else:
                self.send(404, b'{"error": "not_found"}', "application/json")

    return Handler


@pytest.fixture
def site() -> Iterator[tuple[str, FakeWorker]]:
    worker = FakeWorker(12)
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), handler(worker))
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}", worker
    httpd.shutdown()
    httpd.server_close()


SOLVE = """async (pow) => {
  const t = performance.now();
  const nonce = await window.solvePow(pow);
  return { nonce, ms: performance.now() - t, cores: navigator.hardwareConcurrency };
}"""


async def test_browser_solutions_verify_in_python(site: tuple[str, FakeWorker]) -> None:
    from playwright.async_api import async_playwright

    url, worker = site
    async with async_playwright() as p:
        browser = await p.chromium.launch(
            executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS
        )
        try:
            page = await browser.new_page()
            await page.goto(url + "/blank")
            await page.add_script_tag(url=url + "/static/pow.js")
            times: dict[int, list[float]] = {}
            cores = 0
            for bits in TIMED_BITS:
                worker.pow.difficulty = bits
                for _ in range(RUNS if bits != 12 else RUNS + 3):
                    pow_ = worker.pow.challenge(SPACE, time.time())
                    found = await page.evaluate(SOLVE, pow_)
                    solution = {"challenge": pow_["challenge"], "nonce": found["nonce"]}
                    assert worker.pow.verify(SPACE, solution, time.time()) is None, (bits, found)
                    assert worker.pow.verify(SPACE, solution, time.time()) is not None  # once
                    times.setdefault(bits, []).append(found["ms"])
                    cores = found["cores"]
            print(
                f"\nbrowser proof-of-work solve times, {cores} workers (ms): bits median mean max"
            )
            for bits, ms in times.items():
                print(f"  {bits:2d}  {statistics.median(ms):7.0f} {statistics.mean(ms):7.0f}"
                      f" {max(ms):7.0f}")  # fmt: skip
            assert statistics.median(times[12]) < 2_000  # "well under a second", with slack
        finally:
            await browser.close()


async def test_listener_page_solves_and_joins_again(site: tuple[str, FakeWorker]) -> None:
    from playwright.async_api import async_playwright

    url, worker = site
    async with async_playwright() as p:
        browser = await p.chromium.launch(
            executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS
        )
        try:
            page = await browser.new_page()
            await page.goto(f"{url}/s/{SPACE}?autoplay=1")
            await page.wait_for_function("window.ruangListener.powMs !== null", timeout=20_000)
            await page.wait_for_function("() => window.ruangListener.state !== 'joining'"
                                         " || document.getElementById('listen-status')"
                                         ".textContent.startsWith('Connecting')",
                                         timeout=20_000)  # fmt: skip
        finally:
            await browser.close()
    assert [error for _, error in worker.joins[:2]] == ["proof_of_work_required", None]
    second = worker.joins[1][0]
    assert set(second["pow"]) == {"challenge", "nonce"}
