"""The podcast feed parses as RSS 2.0 with what podcast apps read: enclosures with length and
type, guids, dates, durations, the channel's image (feedparser, as apps' parsers do)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import feedparser

from ruang.spaces.podcast import MAX_EPISODES, Channel, Episode, render

CHANNEL = Channel(
    title="Ruang on example.org",
    link="https://example.org/",
    feed_url="https://example.org/podcast.xml",
    image_url="https://example.org/static/podcast.png",
    description="Live audio spaces, recorded.",
)


def episode(i: int) -> Episode:
    return Episode(
        guid=f"space{i:05d}",
        title=f"Town hall <{i}> & more",
        link=f"https://example.org/s/space{i:05d}/replay",
        published=datetime(2026, 12, 1, tzinfo=UTC) + timedelta(hours=i),
        url=f"https://example.org/recordings/space{i:05d}.m4a",
        length=1000 + i,
        duration_s=3723.4,
        speakers=("Ayu", "Bima"),
        tags=("kopi",),
    )


def test_the_feed_is_rss_with_enclosures_newest_first() -> None:
    feed = feedparser.parse(render(CHANNEL, [episode(1), episode(3), episode(2)]))
    assert not feed.bozo, feed.bozo_exception
    assert feed.version == "rss20"
    assert feed.feed.title == CHANNEL.title
    assert feed.feed.image.href == CHANNEL.image_url
    assert [e.id for e in feed.entries] == ["space00003", "space00002", "space00001"]
    first = feed.entries[0]
    assert first.title == "Town hall <3> & more"  # escaped in the XML, whole again here
    assert first.enclosures[0].href == "https://example.org/recordings/space00003.m4a"
    assert first.enclosures[0].length == "1003" and first.enclosures[0].type == "audio/mp4"
    assert first.itunes_duration == "1:02:03"
    assert "Ayu, Bima" in first.summary and "kopi" in first.summary
    assert first.published_parsed[:4] == (2026, 12, 1, 3)


def test_a_feed_keeps_the_newest_episodes_and_an_empty_one_is_valid() -> None:
    feed = feedparser.parse(render(CHANNEL, [episode(i) for i in range(MAX_EPISODES + 20)]))
    assert len(feed.entries) == MAX_EPISODES
    assert feed.entries[0].id == f"space{MAX_EPISODES + 19:05d}"
    empty = feedparser.parse(render(CHANNEL, []))
    assert not empty.bozo and empty.entries == []
