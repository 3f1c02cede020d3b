"""Spaces and speakers as plain values, with the rules of their lifecycle."""

from __future__ import annotations

import enum
import hashlib
import re
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime

ID_PATTERN = re.compile(r"^[a-z0-9]{10}$")
_ID_ALPHABET = "abcdefghijkmnopqrstuvwxyz23456789"
TITLE_MAX_CHARS = 200
NAME_MAX_CHARS = 60
TAGS_MAX = 5  # topic tags per space
TAG_MAX_CHARS = 24


class State(enum.StrEnum):
    """A space is scheduled, then live, then ended; it never goes back."""

    SCHEDULED = "scheduled"
    LIVE = "live"
    ENDED = "ended"


class Role(enum.StrEnum):
    """The host runs the space, with up to two co-hosts; speakers are invited or approved."""

    HOST = "host"
    COHOST = "cohost"
    SPEAKER = "speaker"


def new_id() -> str:
    """A short, unguessable-enough public id (10 chars, ~50 bits)."""
    return "".join(secrets.choice(_ID_ALPHABET) for _ in range(10))


def new_token() -> str:
    """A secret bearer token (192 bits)."""
    return secrets.token_urlsafe(24)


def hash_token(token: str) -> str:
    """Tokens are stored hashed, so a leaked database does not leak the right to speak."""
    return hashlib.sha256(token.encode()).hexdigest()


def utcnow() -> datetime:
    """Timezone-aware now, in UTC."""
    return datetime.now(UTC)


def utc(unix_s: float) -> datetime:
    """A unix time (seconds) as a timezone-aware datetime in UTC."""
    return datetime.fromtimestamp(unix_s, UTC)


def iso(t: datetime | None) -> str | None:
    """ISO 8601 with milliseconds and Z, or None."""
    return (
        None
        if t is None
        else t.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
    )


@dataclass(frozen=True, slots=True)
class Space:
    """A live audio space as stored."""

    id: str
    title: str
    state: State
    created_at: datetime
    starts_at: datetime | None = None
    started_at: datetime | None = None
    ended_at: datetime | None = None
    media: int = 0  # the node's media process running its pipeline (and WHIP, control)
    tags: tuple[str, ...] = ()  # topic tags, as given at creation
    listed: bool = True  # public; False = unlisted (left out of any listing or feed)
    recording_deleted: bool = False  # the host deleted the replay and recording (410 since)
    recording_bytes: int = 0  # the recording's size once made (0 before), for podcast feeds
    recording_s: float = 0.0  # its length, seconds


@dataclass(frozen=True, slots=True)
class Speaker:
    """Someone allowed on stage: the host, or an invited speaker."""

    id: str
    space_id: str
    name: str
    role: Role
    muted: bool = False
    removed: bool = False
    on_stage: bool = False
    identity: str = ""  # the session of a listener approved to speak ("" if invited by token)


def visible_text(raw: str) -> str:
    """The text with its blanks collapsed and control characters (C0, DEL, C1) dropped: they
    are not text anyone typed, and XML (the podcast feed) cannot hold them."""
    text = "".join(c for c in raw if not (c < " " or "\x7f" <= c <= "\x9f") or c.isspace())
    return " ".join(text.split())


def clean_title(raw: object) -> str:
    """The title as given, trimmed; raises ValueError with the reason if unusable."""
    if not isinstance(raw, str):
        raise ValueError("title must be a string")
    title = visible_text(raw)
    if not title:
        raise ValueError("title must not be empty")
    if len(title) > TITLE_MAX_CHARS:
        raise ValueError(f"title is {len(title)} characters; at most {TITLE_MAX_CHARS}")
    return title


def clean_name(raw: object, default: str) -> str:
    """A speaker's display name, trimmed, or the default; ValueError if unusable."""
    if raw is None:
        return default
    if not isinstance(raw, str):
        raise ValueError("name must be a string")
    name = visible_text(raw)[:NAME_MAX_CHARS]
    return name or default


def clean_tags(raw: object) -> tuple[str, ...]:
    """Topic tags: a list of at most TAGS_MAX short strings, each trimmed (inner spaces
    collapsed), empty ones and repeats (ignoring case) dropped; ValueError if unusable."""
    if raw is None:
        return ()
    if not isinstance(raw, list):
        raise ValueError("tags must be a list of strings")
    if len(raw) > TAGS_MAX:  # counted as sent, so that the documented maxItems is the rule
        raise ValueError(f"{len(raw)} tags; at most {TAGS_MAX}")
    tags: list[str] = []
    for item in raw:
        if not isinstance(item, str):
            raise ValueError(f"tags must be strings, not {item!r}")
        tag = visible_text(item).lstrip("#")
        if len(tag) > TAG_MAX_CHARS:
            raise ValueError(f"tag {tag!r} is {len(tag)} characters; at most {TAG_MAX_CHARS}")
        if tag and tag.casefold() not in {t.casefold() for t in tags}:
            tags.append(tag)
    if len(tags) > TAGS_MAX:
        raise ValueError(f"{len(tags)} tags; at most {TAGS_MAX}")
    return tuple(tags)


def parse_starts_at(raw: object) -> datetime | None:
    """An ISO 8601 instant (timezone required or UTC assumed); ValueError if malformed."""
    if raw is None:
        return None
    if not isinstance(raw, str):
        raise ValueError("starts_at must be an ISO 8601 string")
    try:
        t = datetime.fromisoformat(raw.replace("Z", "+00:00"))
    except ValueError:
        raise ValueError(f"starts_at {raw!r} is not an ISO 8601 date-time") from None
    return t if t.tzinfo else t.replace(tzinfo=UTC)


def parse_visibility(raw: object) -> bool:
    """True for a public space (the default), False for an unlisted one; ValueError else."""
    if raw is None or raw == "public":
        return True
    if raw == "unlisted":
        return False
    raise ValueError(f"visibility must be public or unlisted, not {raw!r}")
