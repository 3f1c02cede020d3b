"""`GET /api/spaces/{id}/events`: the space's live events as short Server-Sent Events answers.

The media process running a space rewrites its event file (`events.sse`, already framed) at
most every 0.25 s (live/eventfeed.py). A worker answers a subscriber with the frames after
the subscriber's last event id (`Last-Event-ID`, or `?after=` for clients that cannot set
headers), or, when there is none yet, holds the request until the next batch (at most
WAIT_S, as LL-HLS blocking reload holds a playlist request); the answer then ends, with a
`retry:` hint, and the browser's EventSource reconnects with the last id it saw. So every
answer depends only on (space, last id, file version): identical for everyone asking with the
same id, cacheable for a second, and an edge that coalesces requests (the shipped nginx
config keys its cache on the last id) sends about one request per batch to the origin,
whatever the number of subscribers.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from ruang.delivery.hls import HlsResponse, encode_headers, error_answer
from ruang.errors import not_found
from ruang.live.eventfeed import EVENTS_FILE
from ruang.live.sse import Frames, answer, parse_after
from ruang.spaces.model import ID_PATTERN, Space

if TYPE_CHECKING:
    from ruang.delivery.remote import RemoteOrigin

WAIT_S = 8.0  # longest hold for the next batch; the edge's lock and read timeouts exceed it
POLL_S = 0.05  # a space with waiting subscribers checks its event file this often, seconds
RECHECK_S = 0.01  # a file checked this recently is not checked again
# An answer holding events stays true (it is what followed that id, if not all of it: the
# next request starts from its last id), so edges may keep it a while; an empty one (the wait
# ran out) only a second, so that the next wait reaches the origin soon.
EVENTS_CACHE = "public, max-age=6"
EMPTY_CACHE = "public, max-age=1"
SSE_TYPE = "text/event-stream; charset=utf-8"
_HEADERS, _EMPTY_HEADERS = (
    encode_headers(
        [("Content-Type", SSE_TYPE), ("Cache-Control", cache), ("Access-Control-Allow-Origin", "*")]
    )
    for cache in (EVENTS_CACHE, EMPTY_CACHE)
)
MAX_FILES = 10_000  # event files a worker tracks before it starts over


@dataclass
class EventFile:
    """One space's event file as this worker last read it, and who waits for the next one."""

    path: Path
    mtime_ns: int = -1
    size: int = -1
    frames: Frames = field(default_factory=Frames)
    changed: asyncio.Event = field(default_factory=asyncio.Event)
    waiters: int = 0
    poller: asyncio.Task[None] | None = None
    checked_at: float = -1.0
    answers: dict[int, HlsResponse] = field(default_factory=dict)  # by first frame's index

    def refresh(self) -> None:
        """Re-read the file if it changed (at most every RECHECK_S); wakes the waiters."""
        now = time.monotonic()
        if now - self.checked_at < RECHECK_S:
            return
        self.checked_at = now
        try:
            st = os.stat(self.path)
        except (FileNotFoundError, NotADirectoryError):
            return
        if st.st_mtime_ns == self.mtime_ns and st.st_size == self.size:
            return
        try:
            text = self.path.read_bytes()
        except FileNotFoundError:
            return
        self.mtime_ns, self.size = st.st_mtime_ns, st.st_size
        self.frames = Frames.parse(text)
        self.answers = {}
        event, self.changed = self.changed, asyncio.Event()
        event.set()

    def answer(self, after: int | None) -> HlsResponse:
        """The answer for a subscriber whose last event is `after` (made once per version)."""
        start = self.frames.start_after(after)
        r = self.answers.get(start)
        if r is None:
            frames = b"".join(self.frames.chunks[start:])
            headers = _HEADERS if frames else _EMPTY_HEADERS
            r = self.answers[start] = HlsResponse(200, answer(frames, after), headers)
        return r


class EventStream:
    """Serves every space's event stream for one delivery worker."""

    def __init__(
        self,
        spaces_dir: Path,
        find_space: Callable[[str], Space | None],
        remote: RemoteOrigin | None = None,
        wait_s: float = WAIT_S,
    ) -> None:
        self.dir = spaces_dir
        self.find_space = find_space
        self.remote = remote
        self.wait_s = wait_s
        self._files: dict[str, EventFile] = {}

    def file(self, space_id: str) -> EventFile:
        """A space's event file, refreshed."""
        f = self._files.get(space_id)
        if f is None:
            if len(self._files) >= MAX_FILES:
                self._files = {k: v for k, v in self._files.items() if v.waiters}
            f = self._files[space_id] = EventFile(self.dir / space_id / EVENTS_FILE)
        f.refresh()
        return f

    async def handle(self, space_id: str, last_event_id: str | None) -> HlsResponse:
        """Answer GET /api/spaces/{space_id}/events for a client whose last id is given."""
        if not ID_PATTERN.match(space_id) or self.find_space(space_id) is None:
            return error_answer(not_found(f"Space {space_id!r}"))
        after = parse_after(last_event_id)
        if self.remote is not None:
            node = self.remote.owner(space_id)
            if node is not None:  # another node runs it: its answer, coalesced
                return await self.remote.fetch_events(node, space_id, after)
        f = self.file(space_id)
        if after is not None and after > f.frames.last_id and f.frames.ids:
            after = (
                None  # not an id of this space (forged, or from another numbering): a new client
            )
        if (after is None and f.frames.ids) or (after is not None and after < f.frames.last_id):
            return f.answer(after)
        await self._wait(f)
        return f.answer(after)

    async def _wait(self, f: EventFile) -> None:
        """Until the file changes, or WAIT_S. One poller per space serves every waiter."""
        f.waiters += 1
        try:
            if f.poller is None or f.poller.done():
                f.poller = asyncio.create_task(self._poll(f))
            with contextlib.suppress(TimeoutError):  # then the answer holds no new event
                await asyncio.wait_for(f.changed.wait(), self.wait_s)
        finally:
            f.waiters -= 1

    async def _poll(self, f: EventFile) -> None:
        while f.waiters > 0:
            await asyncio.sleep(POLL_S)
            f.refresh()
