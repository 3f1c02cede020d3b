"""Real servers for tests: `ruang serve` on loopback, started and stopped by the tests."""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from ruang.guard.pow import solve

ROOT = Path(__file__).resolve().parent.parent


def free_port() -> int:
    """A TCP port nobody listens on right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class RuangServer:
    """A running `ruang serve` (media process + delivery workers) and its data folder."""

    data_dir: Path
    port: int
    proc: subprocess.Popen[bytes] | None = None
    log_path: Path | None = None
    args: tuple[str, ...] = ()
    env: dict[str, str] = field(default_factory=dict)

    @property
    def url(self) -> str:
        """Base URL."""
        return f"http://127.0.0.1:{self.port}"

    def start(self, timeout: float = 20.0) -> None:
        """Start and wait until /healthz answers."""
        self.log_path = self.data_dir.parent / f"server-{self.port}-{time.time_ns()}.log"
        log = open(self.log_path, "wb")  # noqa: SIM115 - kept open for the process's life
        # Captions are off unless a test asks (tests/end_to_end/test_captions.py): a captioning
        # process transcribing test tones would share the two cores with timing-sensitive tests.
        env = {**os.environ, "RUANG_CAPTIONS": "off", "PYTHONUNBUFFERED": "1", **self.env}
        self.proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "ruang.cli",
                "serve",
                "--port",
                str(self.port),
                "--data-dir",
                str(self.data_dir),
                "--ice-address",
                "127.0.0.1",
                "--log-level",
                "info",
                *self.args,
            ],
            stdout=log,
            stderr=subprocess.STDOUT,
            env=env,
            cwd=ROOT,
        )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"ruang serve exited: {self.log()}")
            try:
                if httpx.get(f"{self.url}/healthz", timeout=1).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.1)
        self.proc.kill()  # do not leave it running behind a failed test
        self.proc.wait()
        raise RuntimeError(f"ruang serve did not come up: {self.log()}")

    def log(self) -> str:
        """What the server printed so far."""
        return self.log_path.read_text(errors="replace") if self.log_path else ""

    def stop(self) -> None:
        """Graceful stop (SIGTERM), then kill if it hangs."""
        if self.proc is None or self.proc.poll() is not None:
            return
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()

    def kill9(self) -> None:
        """Crash it: SIGKILL to the media process (its workers die with it)."""
        assert self.proc is not None
        self.proc.kill()
        self.proc.wait()


def solve_puzzle(payload: dict[str, Any], answer: httpx.Response) -> None:
    """Put the solution of a 428's proof-of-work into the next join's payload."""
    puzzle = answer.json()["pow"]
    nonce = solve(puzzle["challenge"], puzzle["difficulty"])
    payload["pow"] = {"challenge": puzzle["challenge"], "nonce": nonce}


def from_address(url: str, source: str) -> httpx.Client:
    """A client whose connections come from `source` (any 127.x.y.z): another listener, as
    per-source limits see it."""
    transport = httpx.HTTPTransport(local_address=source)
    return httpx.Client(base_url=url, timeout=10, transport=transport)


def post_join(
    api: httpx.Client, path: str, payload: dict[str, Any] | None = None
) -> httpx.Response:
    """POST a join, solving any proof-of-work asked for; the first other answer."""
    body: dict[str, Any] = dict(payload or {})
    while (r := api.post(path, json=body)).status_code == 428:
        solve_puzzle(body, r)
    return r


def join(
    api: httpx.Client, space_id: str, body: dict[str, Any] | None = None, timeout: float = 30.0
) -> dict[str, Any]:
    """Join as a listener the way a well-behaved client does: solve a proof-of-work (428),
    wait in line (202) or back off (503) as told by Retry-After, keeping the queue token,
    until admitted (200)."""
    payload: dict[str, Any] = dict(body or {})
    deadline = time.monotonic() + timeout
    while True:
        r = api.post(f"/api/spaces/{space_id}/join", json=payload)
        if r.status_code == 200:
            return dict(r.json())
        if r.status_code == 428:
            solve_puzzle(payload, r)
            continue
        assert r.status_code in (202, 503), r.text
        assert time.monotonic() < deadline, f"still not admitted after {timeout} s: {r.text}"
        if r.status_code == 202:
            payload["queue"] = r.json()["queue"]
        time.sleep(min(float(r.headers.get("retry-after", "1")), 1.0))


async def ajoin(api: httpx.AsyncClient, space_id: str, timeout: float = 30.0) -> dict[str, Any]:
    """`join` for async tests."""
    payload: dict[str, Any] = {}
    deadline = time.monotonic() + timeout
    while True:
        r = await api.post(f"/api/spaces/{space_id}/join", json=payload)
        if r.status_code == 200:
            return dict(r.json())
        if r.status_code == 428:
            solve_puzzle(payload, r)
            continue
        assert r.status_code in (202, 503), r.text
        assert time.monotonic() < deadline, f"still not admitted after {timeout} s: {r.text}"
        if r.status_code == 202:
            payload["queue"] = r.json()["queue"]
        await asyncio.sleep(min(float(r.headers.get("retry-after", "1")), 1.0))
