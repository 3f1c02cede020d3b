"""Fixtures shared by every test: a real `ruang serve` process on loopback."""

from __future__ import annotations

import re
import shutil
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from ruangtest import RuangServer, free_port

# What the tests start for real; the README's test command installs every one of them. A
# missing one fails the run at once rather than skipping what it would have tested.
NEEDED_BINARIES = (
    "ffmpeg",
    "ffprobe",
    "nginx",
    "redis-server",
    "chromium",
    "wrk",
    "espeak-ng",
    "openssl",
    "curl",
)
NEEDED_FILES = (Path("/usr/lib/nginx/modules/ngx_http_lua_module.so"),)


_FUNCTION = re.compile(r"^\s*(?:async\s+)?(?:function\b|\([^)]*\)\s*=>|\w+\s*=>)")


def _wait_for_functions_without_eval() -> None:
    """Ruang's pages forbid eval (Content-Security-Policy `script-src 'self'`), and Playwright
    evaluates a bare expression given to `wait_for_function` with eval, a function without:
    so the tests' bare expressions are handed to Playwright as `() => (expression)`."""
    from playwright.async_api import Page

    original = Page.wait_for_function

    async def wait_for_function(self: Page, expression: str, *args: Any, **kwargs: Any) -> Any:
        bare = not _FUNCTION.match(expression)
        return await original(
            self, f"() => ({expression})" if bare else expression, *args, **kwargs
        )

    Page.wait_for_function = wait_for_function  # type: ignore[method-assign]


_wait_for_functions_without_eval()


def pytest_sessionstart(session: pytest.Session) -> None:
    """Refuse to run with a real component missing (CI fails rather than skips)."""
    missing = [b for b in NEEDED_BINARIES if shutil.which(b) is None]
    missing += [str(f) for f in NEEDED_FILES if not f.exists()]
    if missing:
        pytest.exit(f"missing {', '.join(missing)}: run scripts/setup --test", returncode=3)


@pytest.fixture
def server_factory(tmp_path: Path) -> Iterator[type[RuangServer]]:
    """Make servers on demand (for crash/restart tests); all are stopped afterwards."""
    made: list[RuangServer] = []

    def make(
        data_dir: Path | None = None,
        port: int | None = None,
        args: tuple[str, ...] = (),
        env: dict[str, str] | None = None,
    ) -> RuangServer:
        s = RuangServer(
            data_dir or tmp_path / "data", port or free_port(), args=args, env=env or {}
        )
        made.append(s)
        return s

    yield make  # type: ignore[misc]
    for s in made:
        s.stop()


@pytest.fixture
def artifacts(request: pytest.FixtureRequest) -> Path:
    """A folder for what a test leaves for people to look at (screenshots), kept after the
    run: RUANG_TEST_ARTIFACTS, default test-artifacts/ at the top of the checkout."""
    import os

    root = Path(
        os.environ.get("RUANG_TEST_ARTIFACTS", Path(__file__).parent.parent / "test-artifacts")
    )
    folder = root / request.node.name
    folder.mkdir(parents=True, exist_ok=True)
    return folder


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RuangServer]:
    """One server shared by a test module."""
    s = RuangServer(tmp_path_factory.mktemp("ruang") / "data", free_port())
    s.start()
    yield s
    s.stop()


@pytest.fixture
def api(server: RuangServer) -> Iterator[httpx.Client]:
    """An HTTP client on the shared server."""
    with httpx.Client(base_url=server.url, timeout=20, follow_redirects=True) as c:
        yield c


@pytest.fixture
def redis_server(tmp_path: Path) -> Iterator[tuple[str, subprocess.Popen[bytes]]]:
    """A throwaway redis-server on a free loopback port, without persistence: (url, process)."""
    port = free_port()
    proc = subprocess.Popen(
        ["redis-server", "--port", str(port), "--bind", "127.0.0.1", "--save", "",
         "--appendonly", "no", "--dir", str(tmp_path)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )  # fmt: skip
    url = f"redis://127.0.0.1:{port}/0"
    import redis

    client = redis.Redis.from_url(url)
    deadline = time.monotonic() + 10
    while True:
        try:
            client.ping()
            break
        except redis.ConnectionError:
            assert time.monotonic() < deadline, "redis-server did not start"
            time.sleep(0.05)
    client.close()
    yield url, proc
    proc.terminate()
    proc.wait(timeout=10)


@pytest.fixture
def redis_url(redis_server: tuple[str, subprocess.Popen[bytes]]) -> str:
    """The URL of a throwaway redis-server."""
    return redis_server[0]
