"""Waiting for parts: every waiting request wakes when its part appears, whichever request
happened to notice the new playlist first."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

from ruang.delivery.files import SpaceFiles

HEAD = "#EXTM3U\n#EXT-X-VERSION:9\n#EXT-X-TARGETDURATION:2\n"


def playlist(next_msn: int, next_part: int) -> str:
    return HEAD + f'#EXT-X-PRELOAD-HINT:TYPE=PART,URI="{next_msn}.{next_part}.m4s"\n'


async def test_a_waiter_wakes_even_when_an_ordinary_request_reads_first(tmp_path: Path) -> None:
    space = tmp_path / "abcdefghij"
    space.mkdir()
    (space / "live.m3u8").write_text(playlist(3, 1))
    files = SpaceFiles(tmp_path)
    pl = files.live("abcdefghij")
    waiter = asyncio.create_task(files.wait_for(pl, 3, 1, timeout=5.0))
    await asyncio.sleep(0.05)
    (space / "live.m3u8").write_text(playlist(3, 2))  # part 3.1 now exists
    time.sleep(0.003)  # noqa: ASYNC251 - past the 2 ms re-check, without letting the poller run
    assert files.live("abcdefghij").has(3, 1)  # an ordinary request notices it first
    done, _ = await asyncio.wait({waiter}, timeout=1.0)
    assert waiter in done and waiter.result() is True
