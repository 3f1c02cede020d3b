"""A podcast feed of ended spaces: RSS 2.0 with enclosures and the usual podcast tags (issue #10).

Rendered with feedgen (its podcast extension writes the itunes: tags Apple Podcasts and the
other apps read). Pure: the caller gives the episodes; no I/O here.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime

from feedgen.feed import FeedGenerator

MAX_EPISODES = 100  # newest first; podcast apps keep what they already fetched


@dataclass(frozen=True, slots=True)
class Episode:
    """One ended space with a recording."""

    guid: str  # the space's id: stable, never reused
    title: str
    link: str  # its replay page
    published: datetime  # when it ended
    url: str  # recording_url
    length: int  # the recording's size, bytes
    duration_s: float
    speakers: tuple[str, ...] = ()
    tags: tuple[str, ...] = ()
    captions_url: str | None = None


@dataclass(frozen=True, slots=True)
class Channel:
    """The feed itself."""

    title: str
    link: str  # the instance's front page
    feed_url: str
    image_url: str  # a square PNG (podcast apps want 1400–3000 px)
    description: str
    language: str = "en"
    author: str = "Ruang"


def _hms(seconds: float) -> str:
    s = max(0, int(round(seconds)))
    return f"{s // 3600:d}:{s % 3600 // 60:02d}:{s % 60:02d}"


def render(channel: Channel, episodes: Iterable[Episode]) -> bytes:
    """The feed as RSS 2.0 XML bytes (UTF-8)."""
    fg = FeedGenerator()
    fg.load_extension("podcast")
    fg.title(channel.title)
    fg.link(href=channel.link, rel="alternate")
    fg.link(href=channel.feed_url, rel="self")
    fg.description(channel.description)
    fg.language(channel.language)
    fg.generator("Ruang")
    fg.image(channel.image_url, title=channel.title, link=channel.link)
    fg.podcast.itunes_author(channel.author)
    fg.podcast.itunes_image(channel.image_url)
    fg.podcast.itunes_explicit("no")
    fg.podcast.itunes_category("Society & Culture")
    fg.podcast.itunes_summary(channel.description)
    fg.podcast.itunes_type("episodic")
    newest = sorted(episodes, key=lambda e: e.published, reverse=True)[:MAX_EPISODES]
    fg.lastBuildDate(newest[0].published if newest else datetime.now(UTC))
    for ep in reversed(newest):  # feedgen puts the last added first
        fe = fg.add_entry()
        fe.guid(ep.guid, permalink=False)
        fe.title(ep.title)
        fe.link(href=ep.link)
        who = ", ".join(ep.speakers)
        about = f"A live audio space recorded {ep.published:%Y-%m-%d}."
        if who:
            about += f" With {who}."
        if ep.tags:
            about += " Topics: " + ", ".join(ep.tags) + "."
        fe.description(about)
        fe.published(ep.published)
        fe.enclosure(ep.url, str(ep.length), "audio/mp4")
        fe.podcast.itunes_duration(_hms(ep.duration_s))
        fe.podcast.itunes_explicit("no")
        fe.podcast.itunes_episode_type("full")
        if who:
            fe.podcast.itunes_author(who)
        if ep.captions_url:
            fe.podcast.itunes_is_closed_captioned("yes")
    data: bytes = fg.rss_str(pretty=True)
    return data
