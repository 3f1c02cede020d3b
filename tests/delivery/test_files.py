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


def test_a_final_replay_is_kept_in_memory_and_forgotten_on_deletion(tmp_path: Path) -> None:
    folder = tmp_path / "abcdefghij"
    folder.mkdir()
    files = SpaceFiles(tmp_path)
    (folder / "replay.m3u8").write_bytes(b"#EXTM3U\n#EXT-X-PLAYLIST-TYPE:EVENT\n")
    assert files.final_replay("abcdefghij") == b"#EXTM3U\n#EXT-X-PLAYLIST-TYPE:EVENT\n"
    final = b"#EXTM3U\n#EXT-X-PLAYLIST-TYPE:VOD\n0.m4s\n#EXT-X-ENDLIST\n"
    (folder / "replay.m3u8").write_bytes(final)  # a growing one was not kept: read again
    assert files.final_replay("abcdefghij") == final
    (folder / "0.m4s").write_bytes(b"seg")
    assert files.media("abcdefghij", "0.m4s") == b"seg"
    (folder / "replay.m3u8").unlink()
    (folder / "0.m4s").unlink()
    assert files.final_replay("abcdefghij") == final  # the final one stays in memory
    files.forget("abcdefghij")
    assert files.final_replay("abcdefghij") is None
    assert files.media("abcdefghij", "0.m4s") is None
