"""The HLS files of every space as delivery sees them: immutable media cached in memory,
playlists re-read when they change, and waiting for parts that are about to exist."""

from __future__ import annotations

import asyncio
import os
import time
from collections import OrderedDict
from dataclasses import dataclass, field
from pathlib import Path

from ruang.hls.playlist import parse_next_part

POLL_S = 0.005  # how often a space with waiting requests checks for a new part, seconds
RECHECK_S = 0.002  # a playlist fetched again within this reuses the last check
MEDIA_CACHE_BYTES = 128 * 1024 * 1024  # immutable parts/segments kept in memory per worker


@dataclass
class LivePlaylist:
    """The latest live.m3u8 of one space, and who waits for the next one."""

    path: Path
    mtime_ns: int = -1
    text: bytes = b""
    next_part: tuple[int, int] | None = None  # None once the space has ended
    changed: asyncio.Event = field(default_factory=asyncio.Event)
    waiters: int = 0
    poller: asyncio.Task[None] | None = None
    checked_at: float = -1.0

    def refresh(self) -> bool:
        """Re-read the playlist if it changed on disk; True if it did. Checks at most every
        RECHECK_S: a burst of requests costs one stat, and waiting requests have the poller."""
        now = time.monotonic()
        if now - self.checked_at < RECHECK_S:
            return False
        self.checked_at = now
        try:
            st = os.stat(self.path)
        except FileNotFoundError:
            return False
        if st.st_mtime_ns == self.mtime_ns and st.st_size == len(self.text):
            return False
        text = self.path.read_bytes()
        if not text.startswith(b"#EXTM3U"):
            return False  # caught between truncate and write on a non-atomic filesystem
        self.mtime_ns, self.text = st.st_mtime_ns, text
        self.next_part = parse_next_part(text.decode())
        # Wake whoever waits, whichever request noticed the change first (an ordinary
        # request may re-read the playlist before the poller does).
        event, self.changed = self.changed, asyncio.Event()
        event.set()
        return True

    def has(self, msn: int, part: int | None) -> bool:
        """True once the part (or, with part None, the whole segment) msn is in the playlist."""
        if self.next_part is None:
            return bool(self.text)
        nmsn, npart = self.next_part
        if part is None:
            return msn < nmsn
        return (msn, part) < (nmsn, npart)


class SpaceFiles:
    """Every space's files under one folder, for one delivery worker."""

    def __init__(self, spaces_dir: Path) -> None:
        self.dir = spaces_dir
        self._live: dict[str, LivePlaylist] = {}
        self._media: OrderedDict[str, bytes] = OrderedDict()
        self._media_bytes = 0

    def live(self, space_id: str) -> LivePlaylist:
        """The live playlist state of a space (refreshed)."""
        pl = self._live.get(space_id)
        if pl is None:
            pl = self._live[space_id] = LivePlaylist(self.dir / space_id / "live.m3u8")
        pl.refresh()
        return pl

    async def wait_for(self, pl: LivePlaylist, msn: int, part: int | None, timeout: float) -> bool:
        """Wait until the playlist holds (msn, part); False on timeout. One poller per space
        serves every waiting request, so a thousand waiting players cost one stat per tick."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        pl.waiters += 1
        try:
            if pl.poller is None or pl.poller.done():
                pl.poller = asyncio.create_task(self._poll(pl))
            while not pl.has(msn, part):
                remaining = deadline - loop.time()
                if remaining <= 0:
                    return False
                event = pl.changed
                try:
                    await asyncio.wait_for(event.wait(), remaining)
                except TimeoutError:
                    return False
            return True
        finally:
            pl.waiters -= 1

    async def _poll(self, pl: LivePlaylist) -> None:
        while pl.waiters > 0:
            await asyncio.sleep(POLL_S)
            pl.refresh()  # wakes the waiters itself when the playlist changed

    def media(self, space_id: str, name: str) -> bytes | None:
        """An immutable file (init, part, segment), from memory when seen before."""
        key = f"{space_id}/{name}"
        data = self._media.get(key)
        if data is not None:
            self._media.move_to_end(key)
            return data
        try:
            data = (self.dir / key).read_bytes()
        except (FileNotFoundError, NotADirectoryError):
            return None
        self._media[key] = data
        self._media_bytes += len(data)
        while self._media_bytes > MEDIA_CACHE_BYTES:
            _, old = self._media.popitem(last=False)
            self._media_bytes -= len(old)
        return data

    def final_replay(self, space_id: str) -> bytes | None:
        """The replay playlist of an ended space, kept in memory like media once it is the
        final VOD one (with ENDLIST; one still growing is read each time)."""
        data = self.media(space_id, "replay.m3u8")
        if data is not None and b"#EXT-X-ENDLIST" not in data:
            key = f"{space_id}/replay.m3u8"
            self._media_bytes -= len(self._media.pop(key, b""))
        return data

    def forget(self, space_id: str) -> None:
        """Drop what is kept in memory of a space (its recording was deleted: every answer
        is a 410 from now on, so the memory is better spent on others)."""
        self._live.pop(space_id, None)
        prefix = f"{space_id}/"
        for key in [k for k in self._media if k.startswith(prefix)]:
            self._media_bytes -= len(self._media.pop(key))

    def replay(self, space_id: str) -> bytes | None:
        """The replay playlist (small, changes while live: read each time)."""
        try:
            return (self.dir / space_id / "replay.m3u8").read_bytes()
        except FileNotFoundError:
            return None
