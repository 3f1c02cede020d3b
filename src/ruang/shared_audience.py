"""Audience figures across nodes (Redis): every delivery worker adds what it sees, the node
running a space reads the sums for its host.

Per space: `ruang:aud:{space}` a hash of `{node}/{worker}` → "current at" (present listeners
on that worker and when it said so), and `ruang:uniq:{space}` a Redis HyperLogLog of every
listener id (PFADD of the ids a worker saw for the first time since its last report, PFCOUNT to
read). Written every REPORT_EVERY_S per worker, read as often by the owner: never per request.
"""

from __future__ import annotations

from typing import Any

from ruang.audience import REPORT_STALE_S

FIGURES_TTL_S = 120  # a space nobody reports on is forgotten after this
UNIQUE_TTL_S = 7 * 24 * 3600


class SharedAudience:
    """Reads and writes the shared figures of one deployment."""

    def __init__(self, client: Any, node: str) -> None:
        self._r: Any = client  # the process's redis.Redis (decode_responses)
        self._node = node

    def publish(
        self,
        worker: str,
        report: dict[str, dict[str, Any]],
        fresh: dict[str, set[str]],
        now: float,
    ) -> None:
        """A worker's report: present counts per space, and listener ids new to it."""
        pipe = self._r.pipeline(transaction=False)
        for sid, entry in report.items():
            key = f"ruang:aud:{sid}"
            pipe.hset(key, f"{self._node}/{worker}", f"{int(entry['current'])} {now:.3f}")
            pipe.expire(key, FIGURES_TTL_S)
        for sid, ids in fresh.items():
            if ids:
                pipe.pfadd(f"ruang:uniq:{sid}", *ids)
                pipe.expire(f"ruang:uniq:{sid}", UNIQUE_TTL_S)
        pipe.execute()

    def read(self, space_ids: list[str], now: float) -> dict[str, tuple[int, int]]:
        """(present now, unique so far) per space, summed over every node's workers."""
        pipe = self._r.pipeline(transaction=False)
        for sid in space_ids:
            pipe.hgetall(f"ruang:aud:{sid}")
            pipe.pfcount(f"ruang:uniq:{sid}")
        out = pipe.execute()
        figures = {}
        for i, sid in enumerate(space_ids):
            current = 0
            for value in out[2 * i].values():
                n, at = value.split()
                if now - float(at) <= REPORT_STALE_S:
                    current += int(n)
            figures[sid] = (current, int(out[2 * i + 1]))
        return figures
