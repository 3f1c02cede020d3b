"""The waiting room of one node without Redis, shared by its delivery workers: one pace, one
admission cap and one FIFO line per space for the node, whatever `--workers` is (docs/GUARD.md,
"One guard per node").

The rules are `Admission`'s (admission.py), unchanged; only where its counters live moves, as
guard/shared.py moves them to Redis. Here they live in the node's shared memory
(guard.cells.NodeMemory.lines), which the supervisor hands to every worker:

* the pace: the node's token bucket (tokens, last refill);
* per space, a line: `tail` (the next place in line to hand out: the ticket-number counter)
  and `head` (every place below it is admitted: the "now serving" number, moved on only at
  the pace), the pre-start draws' `prestart` and `threshold`, and when it was last touched;
* the cap: the node's present listeners (NodeMemory.present, one cell per listener id holding
  until when it counts), counted by a scan every COUNT_EVERY_S, plus every admission since.

A join reads, decides and writes all of that under one lock: a POSIX record lock on the
memory file (fcntl, ~1 µs uncontended, released by the kernel if its holder dies). So two
workers never hand out the same place, and nobody is admitted before an earlier place
whichever worker each asked: places are numbered in the order the joins took the lock. The
lock is held for one join's arithmetic (a few µs), and only by joins, never by a player's
playlist or media request.

The count of present listeners errs on the strict side between scans (departures are seen
only at the next scan); a listener's cell is refreshed at most every MARK_EVERY_S, so it
counts up to PRESENT_WINDOW_S + MARK_EVERY_S after its last sign of life.
"""

from __future__ import annotations

import logging
import mmap
from typing import Any

import numpy as np

from ruang.audience import PRESENT_WINDOW_S, WorkerAudience
from ruang.guard.admission import Admission, Admitted, Limits, Waiting, _Line
from ruang.guard.cells import Cells, NodeLock, NodeMemory

log = logging.getLogger(__name__)

LINE_TTL_S = 2 * 24 * 3600  # a line nobody touched for this long may be forgotten (as Redis's)
COUNT_EVERY_S = 0.5  # the present listeners are counted again at most this often
MARK_EVERY_S = 10.0  # a listener's presence cell is refreshed at most this often
PROBE = 8  # slots a space's line may live in after its hash
LINE_SLOTS = 16_384  # lines of spaces a node keeps (a power of two)
HEADER_BYTES = 64
LOCK_BYTE = 1  # the byte of the memory file its lock holds (NodeMemory.lock)
FINGERPRINT_KEY = "ruang-node-lines/1"
# the header's float64 fields, after the fingerprint
TOKENS, REFILLED, COUNTED, COUNTED_AT, SINCE = range(5)


class NodeAdmission(Admission):
    """`Admission` with its pace, cap and lines in the node's shared memory (`memory`)."""

    def __init__(
        self,
        memory: NodeMemory,
        limits: Limits,
        key: bytes,
        now: float,
        audience: WorkerAudience | None = None,
    ) -> None:
        super().__init__(limits, key, now, audience)
        self.lock = memory.lock(LOCK_BYTE)
        self._present: Cells = memory.present()
        view = memory.lines()
        need = HEADER_BYTES + 6 * 8 * LINE_SLOTS
        if len(view) < need:
            raise ValueError(f"{LINE_SLOTS} lines need {need} bytes, got {len(view)}")
        mark = hash(FINGERPRINT_KEY) or 1
        fingerprint = view[:8].cast("q")
        fresh = fingerprint[0] == 0
        if fingerprint[0] not in (0, mark):  # another hash seed: it cannot find the lines
            log.error("the node's waiting room hashed with another seed: this worker keeps its own")
            view, fresh = memoryview(mmap.mmap(-1, need)), True
            fingerprint = view[:8].cast("q")
            self.lock = NodeLock(None)
        self._header = view[8:HEADER_BYTES].cast("d")
        if fresh:  # the node's first worker: a full bucket (two at once fill it twice: once)
            self._header[TOKENS], self._header[REFILLED] = float(limits.burst), now
            fingerprint[0] = mark
        columns = [view[HEADER_BYTES + 8 * LINE_SLOTS * k :][: 8 * LINE_SLOTS] for k in range(6)]
        self._hashes, self._tails, self._heads, self._prestarts = (c.cast("q") for c in columns[:4])
        self._thresholds, self._touched = (c.cast("d") for c in columns[4:])
        self._started: dict[str, bool] = {}
        self.evicted = 0  # lines forgotten before LINE_TTL_S to make room (by this process)

    # -- the line of a space, in shared memory -----------------------------------------------
    def schedule(self, space_id: str) -> None:
        """The space is scheduled: arrivals get draws until `start`."""
        self._started[space_id] = False

    def start(self, space_id: str) -> None:
        """The space started: pre-start draws go first, in draw order."""
        self._started[space_id] = True

    def _slot(self, space_id: str, now: float) -> int:
        """The slot of the space's line: its own, else a free or forgotten one (zeroed)."""
        h = hash(space_id) or 1
        mask = LINE_SLOTS - 1
        hashes, touched = self._hashes, self._touched
        spare, oldest = -1, h & mask
        for k in range(PROBE):
            j = (h + k) & mask
            if hashes[j] == h:
                return j
            if hashes[j] == 0:
                spare = j if spare < 0 else spare
                break
            if spare < 0 and touched[j] < now - LINE_TTL_S:
                spare = j
            if touched[j] < touched[oldest]:
                oldest = j
        if spare < 0:  # every slot holds a line touched within LINE_TTL_S: the oldest goes
            spare = oldest
            self.evicted += 1
            log.warning("the node's waiting room forgot a line to make room for %s", space_id)
        hashes[spare] = h
        self._tails[spare] = self._heads[spare] = self._prestarts[spare] = 0
        self._thresholds[spare] = 0.0
        return spare

    def _recount(self, now: float) -> None:
        """The present listeners counted afresh, if the last count is old (under the lock)."""
        header = self._header
        if now - header[COUNTED_AT] >= COUNT_EVERY_S or now < header[COUNTED_AT]:
            header[COUNTED] = float(self._present.in_debt(now))
            header[COUNTED_AT] = now
            header[SINCE] = 0.0

    def join(
        self, space_id: str, network: str, token: str | None, now: float, crowded: bool = False
    ) -> Admitted | Waiting:
        """Decide one join against the node's line for the space (`Admission.join`'s rules)."""
        header = self._header
        with self.lock:
            slot = self._slot(space_id, now)
            line = _Line(
                tail=self._tails[slot],
                head=self._heads[slot],
                prestart=self._prestarts[slot],
                threshold=self._thresholds[slot],
                started=self._started.get(space_id, True),
            )
            self._recount(now)
            self._tokens, self._refilled = header[TOKENS], header[REFILLED]
            self._lines = {space_id: line}
            try:
                return super().join(space_id, network, token, now, crowded)
            finally:
                self._tails[slot], self._heads[slot] = line.tail, line.head
                self._prestarts[slot], self._thresholds[slot] = line.prestart, line.threshold
                self._touched[slot] = now
                header[TOKENS], header[REFILLED] = self._tokens, self._refilled
                self._lines = {}

    def _take(self, now: float) -> bool:
        if not super()._take(now):
            return False
        self._header[SINCE] += 1.0  # one more listener until the next count
        return True

    def listeners(self, now: float) -> int:
        """Listeners present on the node: the last count plus the admissions since."""
        return int(self._header[COUNTED] + self._header[SINCE])

    def seen(self, space_id: str, listener: str, now: float) -> None:
        """A listener showed a sign of life: this worker's figures, and the node's presence
        cell (refreshed at most every MARK_EVERY_S per listener, by this worker)."""
        last = self.audience.last_seen(space_id, listener)
        super().seen(space_id, listener, now)
        if last is None or now - last >= MARK_EVERY_S or now < last:
            cells = self._present
            h = hash(listener) or 1
            i = cells.find(h, now)
            cells.hashes[i] = h
            cells.tats[i] = now + PRESENT_WINDOW_S + MARK_EVERY_S

    def waiting(self) -> int:
        """People in line on the node's lines (places handed out, not yet admitted)."""
        tails = np.frombuffer(self._tails.cast("B"), dtype=np.int64)
        heads = np.frombuffer(self._heads.cast("B"), dtype=np.int64)
        return int((tails - heads).sum())

    def statistics(self) -> dict[str, Any]:
        """A snapshot: the node's present listeners and people waiting, lines forgotten."""
        return {
            "listeners": self.listeners(0.0),
            "waiting": self.waiting(),
            "lines_evicted": self.evicted,
        }
