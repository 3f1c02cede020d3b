"""A space's live events, as the media process running it knows them (issue #9).

Components that change a space (the studio: stage, requests to speak, mutes, state) publish an
event here with a `type` and a JSON-able body; what delivers them to pages (Server-Sent Events
at `GET /api/spaces/{id}/events`) reads them from here. Bounded: a space keeps its last
MAX_EVENTS events.
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

MAX_EVENTS = 256  # events kept per space


def first_id(now: float) -> int:
    """A space's first event id in this process: the wall clock in milliseconds, so that ids
    keep increasing across a restarted media process (whose log starts empty) and a page's
    Last-Event-ID from before the restart is simply older than every new event. Events are
    batched (a few a second), so a run never uses up a millisecond's worth of ids per
    millisecond."""
    return int(now * 1000)


@dataclass(frozen=True, slots=True)
class Event:
    """One thing that happened in a space."""

    id: int  # increasing per space
    type: str  # "state", "stage", "request", "reaction", "listeners", "speaking", …
    data: dict[str, Any]
    at: float  # wall-clock time, seconds


@dataclass
class EventLog:
    """The recent events of every space of one media process."""

    clock: Callable[[], float] = time.time  # wall clock, seconds (tests pass a fake one)
    _spaces: dict[str, deque[Event]] = field(default_factory=dict)
    _next: dict[str, int] = field(default_factory=dict)

    def publish(self, space_id: str, type: str, data: dict[str, Any]) -> Event:
        """Record an event of a space; returns it (with its id)."""
        now = self.clock()
        n = self._next.get(space_id) or first_id(now)
        self._next[space_id] = n + 1
        event = Event(n, type, data, now)
        self._spaces.setdefault(space_id, deque(maxlen=MAX_EVENTS)).append(event)
        return event

    def since(self, space_id: str, after: int) -> list[Event]:
        """The space's events with an id above `after`, oldest first."""
        return [e for e in self._spaces.get(space_id, ()) if e.id > after]

    def spaces(self) -> list[str]:
        """The spaces with events."""
        return list(self._spaces)

    def last_id(self, space_id: str) -> int:
        """The id of the space's latest event (0 before any)."""
        return self._next.get(space_id, 1) - 1

    def forget(self, space_id: str) -> None:
        """Drop a space's events (it ended and its last events were delivered)."""
        self._spaces.pop(space_id, None)
        self._next.pop(space_id, None)
