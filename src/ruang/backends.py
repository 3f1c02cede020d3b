"""The one place where a process's shared-state implementations are chosen, at start-up:
embedded (SQLite, in-memory admission and limits: one node) or Redis (every node shares
spaces, ownership, the waiting room, the rare valuable rate limits and the audience figures)
when `redis_url` is set.

Each process's composition root (`ruang.live.process`, `ruang.delivery.worker`,
`ruang.server`) builds one `Backends`: with Redis it opens one synchronous and one asyncio
client for the whole process and hands them to every component that needs them; nothing else
reads the Redis URL or opens a client.
"""

from __future__ import annotations

from collections.abc import Callable, Coroutine
from typing import TYPE_CHECKING, Any

from ruang.config import Config
from ruang.guard.admission import Admission, Limits
from ruang.store.base import Store

if TYPE_CHECKING:
    from ruang.guard.cells import Cells, NodeMemory
    from ruang.guard.ratelimit import SharedRateLimiter
    from ruang.shared_audience import SharedAudience


class Backends:
    """A process's shared services: its Redis clients (if any) and the components on them."""

    def __init__(self, config: Config) -> None:
        self.config = config
        self._sync: Any = None
        self._async: Any = None
        if config.redis_url:
            import redis
            import redis.asyncio

            # str in, str out for both: every component reads text (numbers parse either way)
            self._sync = redis.Redis.from_url(config.redis_url, decode_responses=True)
            self._async = redis.asyncio.Redis.from_url(config.redis_url, decode_responses=True)

    @property
    def multi_node(self) -> bool:
        """True when several nodes share state (Redis)."""
        return self._sync is not None

    def store(self, media: int | None = None) -> Store:
        """The space store: of media process number `media`, or (None) of a delivery worker or
        the supervisor, which see every space of the node."""
        if self._sync is not None:
            from ruang.store.redisstore import RedisSpaceStore

            return RedisSpaceStore(self._sync, self.config.node, media)
        from ruang.store.sqlite import SpaceStore

        return SpaceStore(self.config.db_path, media)

    def admission(
        self, limits: Limits, key: bytes, now: float, memory: NodeMemory | None = None
    ) -> Admission:
        """A delivery worker's admission: the line every node shares (Redis), else the node's
        own in `memory` (what its workers share, guard.nodeline), else this worker's own."""
        if self._sync is not None:
            from ruang.guard.shared import SharedAdmission

            return SharedAdmission(self._sync, self._async, self.config.node, limits, key, now)
        if memory is not None:
            from ruang.guard.nodeline import NodeAdmission

            return NodeAdmission(memory, limits, key, now)
        return Admission(limits, key, now)

    def shared_audience(self) -> SharedAudience | None:
        """Audience figures summed across nodes, or None on one node (workers report to their
        media processes)."""
        if self._sync is None:
            return None
        from ruang.shared_audience import SharedAudience

        return SharedAudience(self._sync, self.config.node)

    def shared_limiter(self, cells: Cells | None = None) -> SharedRateLimiter | None:
        """Per-source budgets of the rare, valuable classes shared by every node, or None;
        the other classes in `cells` (the node's shared memory, see guard.cells)."""
        if self._async is None:
            return None
        from ruang.guard.ratelimit import SharedRateLimiter

        return SharedRateLimiter(self._async, cells=cells)

    def space_events(
        self, on_change: Callable[[str, str], None]
    ) -> Coroutine[Any, Any, None] | None:
        """A task body calling on_change(space_id, state) for every space state change on any
        node; None on one node (nothing else changes a space behind this node's back)."""
        if self._async is None:
            return None
        from ruang.store.redisstore import watch_events

        return watch_events(self._async, on_change)

    async def aclose(self) -> None:
        """Close the clients (the end of the process)."""
        if self._async is not None:
            await self._async.aclose()
        if self._sync is not None:
            self._sync.close()
