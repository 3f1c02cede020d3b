"""What the media process and the delivery workers need from the space store: one interface,
two implementations (SQLite on one node, Redis across nodes), chosen once in `ruang.backends`."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol

from ruang.spaces.model import Role, Space, Speaker, State

OWNER_TTL_S = 15  # an owner that stops renewing its claim is forgotten after this, seconds
OWNER_RENEW_S = 5.0  # how often a media process renews the claims on its spaces, seconds
LOAD_TTL_S = 15  # a node whose media processes stop reporting their load gets no new space


@dataclass(frozen=True, slots=True)
class CreationCounts:
    """What the creation caps are checked against (`ruang.guard.creation`): open (live or
    scheduled) spaces, and spaces created since a given instant, by one creator's address and
    network and on the whole node; the oldest recent creations as unix times (seconds), to
    say when the rate window frees a place."""

    open_by_address: int = 0
    open_by_network: int = 0
    open_on_node: int = 0
    recent_by_network: int = 0
    recent_on_node: int = 0
    oldest_recent_by_network: float | None = None
    oldest_recent_on_node: float | None = None


class Store(Protocol):
    """Spaces and speakers, and which node runs each space's pipeline."""

    def close(self) -> None: ...

    def create_space(
        self,
        title: str,
        starts_at: datetime | None,
        address: str = "",
        network: str = "",
        tags: tuple[str, ...] = (),
        listed: bool = True,
    ) -> tuple[Space, Speaker, str]:
        """A new space created from `address` (in `network`), with topic `tags`, live at once
        unless scheduled, public unless not `listed`, and its host; returns the host's token."""
        ...

    def creation_counts(self, address: str, network: str, since: datetime) -> CreationCounts:
        """Open spaces by this creator's address and network and on this node, and spaces
        created since `since` by the network and on this node (ended ones included)."""
        ...

    def get_space(self, space_id: str) -> Space | None: ...

    def changes(self) -> int | None:
        """A number that differs whenever another process has committed a change since the
        last call (so readers may cache until it moves); None when changes arrive as events
        instead."""
        ...

    def spaces_in_state(self, state: State) -> list[Space]:
        """This node's spaces in a state (every space on one node)."""
        ...

    def set_state(self, space_id: str, state: State, at: datetime) -> Space: ...

    def set_recording(self, space_id: str, size: int, seconds: float) -> None:
        """Note that the space's recording is made: its size in bytes and length."""
        ...

    def recent_recordings(self, limit: int, tag: str | None = None) -> list[Space]:
        """The newest ended public spaces with a recording made and not deleted (optionally
        with a topic tag), newest first, at most `limit` (the podcast feed)."""
        ...

    def delete_recording(self, space_id: str) -> None:
        """Mark the space's recording deleted (its replay, download and whatever else was
        recorded answer 410 from now on), and tell every worker at once (Redis: an event)."""
        ...

    def move(self, space_id: str, media: int) -> None:
        """Run the space on another media process of its node from its next start."""
        ...

    def add_speaker(
        self, space_id: str, name: str, role: Role, identity: str = ""
    ) -> tuple[Speaker, str]:
        """A new stage member and their token; `identity`: the session of an approved
        listener."""
        ...

    def speaker_by_token(self, space_id: str, token: str) -> Speaker | None: ...

    def get_speaker(self, space_id: str, speaker_id: str) -> Speaker | None: ...

    def speakers(self, space_id: str) -> list[Speaker]: ...

    def count_speakers(self, space_id: str) -> int: ...

    def update_speaker(
        self,
        space_id: str,
        speaker_id: str,
        *,
        muted: bool | None = None,
        removed: bool | None = None,
        on_stage: bool | None = None,
        role: Role | None = None,
        name: str | None = None,
    ) -> None: ...

    def block(self, space_id: str, identity: str) -> None:
        """Refuse this session identity in this space from now on (joins, requests)."""
        ...

    def is_blocked(self, space_id: str, identity: str) -> bool: ...

    def clear_on_stage(self) -> None:
        """Nobody is on stage in this media process's spaces (it just started)."""
        ...

    def owner(self, space_id: str) -> str | None:
        """The base URL of the node running the space's pipeline; None = this node."""
        ...

    def claim(self, space_ids: list[str]) -> None:
        """Record (renew) this node as the owner of these spaces."""
        ...

    def report_load(self, media: int, statistics: dict[str, Any]) -> None:
        """Tell the other nodes what media process `media` of this node carries."""
        ...

    def node_loads(self) -> dict[str, list[dict[str, Any]]]:
        """What every node's media processes carry, by node base URL (nodes that reported
        lately; empty on one node)."""
        ...
