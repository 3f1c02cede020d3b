"""The one place where the shared-state implementation is chosen at start-up: embedded
(SQLite, in-memory admission: one node) or Redis (every node shares spaces, ownership and the
waiting room) when `redis_url` is set."""

from __future__ import annotations

from collections.abc import Callable, Coroutine
from typing import TYPE_CHECKING, Any

from ruang.config import Config
from ruang.guard.admission import Admission, Limits
from ruang.store.base import Store

if TYPE_CHECKING:
    from ruang.shared_audience import SharedAudience


def open_store(config: Config, media: int | None = None) -> Store:
    """The space store of this process: of media process number `media`, or (None) of a
    delivery worker or the supervisor, which see every space of the node."""
    if config.redis_url:
        from ruang.store.redisstore import RedisSpaceStore

        return RedisSpaceStore(config.redis_url, config.node, media)
    from ruang.store.sqlite import SpaceStore

    return SpaceStore(config.db_path, media)


def make_admission(config: Config, limits: Limits, key: bytes, now: float) -> Admission:
    """A delivery worker's admission: its own line per space, or the line every node shares."""
    if config.redis_url:
        from ruang.guard.shared import SharedAdmission

        return SharedAdmission(config.redis_url, config.node, limits, key, now)
    return Admission(limits, key, now)


def open_shared_audience(config: Config) -> SharedAudience | None:
    """Audience figures summed across nodes, or None on one node (workers report locally)."""
    if not config.redis_url:
        return None
    from ruang.shared_audience import SharedAudience

    return SharedAudience(config.redis_url, config.node)


def space_events(
    config: Config, on_change: Callable[[str, str], None]
) -> Coroutine[Any, Any, None] | None:
    """A task body calling on_change(space_id, state) for every space state change on any
    node; None on one node (nothing else changes a space behind this node's back)."""
    if not config.redis_url:
        return None
    from ruang.store.redisstore import watch_events

    return watch_events(config.redis_url, on_change)
