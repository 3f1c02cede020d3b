"""Fixtures shared by every test: a real `ruang serve` process on loopback."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from ruangtest import RuangServer, free_port


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
