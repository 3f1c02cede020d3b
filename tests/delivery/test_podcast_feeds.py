"""The podcast feed's links follow the request's base (its Host) while the feed is built once
per tag: a thousand Hosts cost one build."""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

import feedparser

from ruang.config import Config
from ruang.delivery.podcast import PodcastFeeds
from ruang.spaces.model import Space, State, utcnow


@dataclass
class Member:
    name: str


class FakeStore:
    def __init__(self) -> None:
        now = utcnow()
        self.space = Space("abcdefghij", "Town & hall", State.ENDED, now, started_at=now)
        self.space = replace(self.space, ended_at=now, recording_bytes=1234, recording_s=61.0)
        self.builds = 0

    def recent_recordings(self, limit: int, tag: str | None) -> list[Space]:
        self.builds += 1
        return [self.space]

    def speakers(self, space_id: str) -> list[Any]:
        return [Member("Ana")]


async def test_links_follow_the_base_and_the_feed_is_built_once() -> None:
    store = FakeStore()
    feeds = PodcastFeeds(Config(), store)  # type: ignore[arg-type]
    sid = store.space.id
    for base in ("http://192.168.1.5:8000", "http://[::1]:8000", None):
        body = await feeds.answer(None, base)
        feed = feedparser.parse(body)
        base = base or Config().base_url
        assert not feed.bozo, feed.get("bozo_exception")
        assert f"<link>{base}/</link>".encode() in body
        assert {link.href for link in feed.feed.links} >= {f"{base}/podcast.xml"}
        episode = feed.entries[0]
        assert episode.link == f"{base}/s/{sid}/replay" and episode.title == "Town & hall"
        assert episode.enclosures[0].href == f"{base}/hls/{sid}/recording.m4a"
        assert "invalid" not in str(feed)  # no placeholder left anywhere
    assert store.builds == 1
