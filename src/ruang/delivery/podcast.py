"""`GET /podcast.xml`: the instance's public ended spaces as a podcast feed (issue #10).

Every ended public space whose recording is made (it is made at the end) is an episode, its
enclosure the recording (`recording_url`), newest first (spaces/podcast.py renders the RSS).
`?tag=jazz` narrows it to a topic. A worker builds a feed at most every FRESH_S and keeps it:
podcast apps poll, and a thousand polls cost one build. A recording made or deleted through
a worker drops its feeds at once.

Its links follow the request's Host as the space's do (`link_base`; the answer says `Vary:
Host`): a feed is built once per tag with a placeholder prefix, which each answer replaces by
its own — so a flood of Host headers costs a string replacement each, never a build.
"""

from __future__ import annotations

import asyncio
import time
from collections import OrderedDict
from urllib.parse import quote, urlsplit
from xml.sax.saxutils import escape

from ruang.config import Config
from ruang.errors import ApiError
from ruang.hls.recording import RECORDING_NAME
from ruang.spaces.model import visible_text
from ruang.spaces.podcast import MAX_EPISODES, Channel, Episode, render
from ruang.store.base import Store

FRESH_S = 60.0  # a feed is rebuilt at most this often, seconds
FEEDS_KEPT = 64  # feeds (tags) a worker keeps
TAG_MAX = 24
_HOST = "ruang-feed-base.invalid"  # the placeholder's host (.invalid: never a real one)
_BASE = f"http://{_HOST}"  # the placeholder prefix of every link while a feed is kept


class PodcastFeeds:
    """One worker's podcast feeds, by tag (None: every public space)."""

    CACHE = "public, max-age=300"

    def __init__(self, config: Config, db: Store) -> None:
        self.config = config
        self.db = db
        self._kept: OrderedDict[str | None, tuple[float, bytes]] = OrderedDict()
        self._lock = asyncio.Lock()

    def forget(self) -> None:
        """Drop the kept feeds (a recording was made or deleted through this worker; the
        other workers' feeds catch up within FRESH_S)."""
        self._kept.clear()

    async def answer(self, tag: str | None, base: str | None = None) -> bytes:
        """The feed's XML, its links under `base` (by default the configured base URL)."""
        kept = await self._kept_feed(tag)
        base = base or self.config.base_url
        host = urlsplit(base).netloc or "Ruang"
        body = kept.replace(_BASE.encode(), escape(base).encode())
        return body.replace(_HOST.encode(), escape(host).encode())

    async def _kept_feed(self, tag: str | None) -> bytes:
        if tag is not None:
            tag = visible_text(tag).lstrip("#")  # XML holds no control characters
            if not tag or len(tag) > TAG_MAX:
                raise ApiError(422, "invalid_tag", f"tag must be 1–{TAG_MAX} characters.")
        async with self._lock:  # one build at a time: the others wait and take its result
            kept = self._kept.get(tag)
            if kept is not None and time.monotonic() - kept[0] < FRESH_S:
                return kept[1]
            body = await asyncio.to_thread(self._build, tag)
            self._kept[tag] = (time.monotonic(), body)
            self._kept.move_to_end(tag)
            while len(self._kept) > FEEDS_KEPT:
                self._kept.popitem(last=False)
            return body

    def _build(self, tag: str | None) -> bytes:
        base, host = _BASE, _HOST
        title = f"Ruang · {host}" + (f" · #{tag}" if tag else "")
        feed_url = f"{base}/podcast.xml" + (f"?tag={quote(tag)}" if tag else "")
        channel = Channel(
            title=title,
            link=f"{base}/",
            feed_url=feed_url,
            image_url=f"{base}/static/podcast.png",
            description=f"Live audio spaces on {host}, recorded.",
        )
        episodes = []
        for space in self.db.recent_recordings(MAX_EPISODES, tag):
            if space.ended_at is None:
                continue
            names = tuple(dict.fromkeys(m.name for m in self.db.speakers(space.id) if m.name))
            episodes.append(
                Episode(
                    guid=space.id,
                    title=space.title,
                    link=f"{base}/s/{space.id}/replay",
                    published=space.ended_at,
                    url=f"{base}/hls/{space.id}/{RECORDING_NAME}",
                    length=space.recording_bytes,
                    duration_s=space.recording_s,
                    speakers=names,
                    tags=space.tags,
                )
            )
        return render(channel, episodes)
