"""GCRA cells in memory a node's delivery workers share, so a source's budget is one per node
whatever `--workers` is (docs/GUARD.md, "One guard per node").

The supervisor creates one anonymous memory file (memfd) before it starts the workers and
hands its descriptor to every worker, as it does the public socket: a restarted worker maps
the same cells, and nothing is left behind when the node stops. A process without one (a
test, a tool) maps private memory of the same layout, so the code path is the same.

A table is a fixed-size open-addressing array: per cell a 64-bit key hash and a float64 `tat`
(GCRA's theoretical arrival time). Keys are hashed with Python's own `hash()`, which the
supervisor seeds the same in every worker (PYTHONHASHSEED, random per node: an attacker
cannot aim collisions); a header fingerprint makes a worker with another seed fall back to
private cells rather than read nonsense. A key lives in one of the `PROBE` cells after its
hash; a cell whose `tat` has passed is exactly a fresh key's state, so it is reused at once
and nothing is ever swept. When all `PROBE` cells hold sources still in debt, the one nearest
to recovering is forgotten (counted as an eviction) — a limit can only get more lenient, it
never refuses anyone it should not.

No locks: each worker reads a cell, decides and writes it back (aligned 8-byte stores, which
x86-64 and ARM64 never tear). Two workers checking the same key within the same microsecond
may both read the old `tat`, and one request's charge is lost: each such race lets one extra
request through, so a source's effective budget is at most its budget plus the races, which
need two workers inside the same ~1 µs window for one key (measured in docs/BENCHMARKS.md:
under 1 % extra for one source flooding two workers). A lock per check would cost more than
the check (fcntl ~2 µs), and one owner process a round trip.
"""

from __future__ import annotations

import fcntl
import logging
import mmap
import os
from types import TracebackType
from typing import Any

log = logging.getLogger(__name__)

PROBE = 8  # cells a key may live in after its hash
CELL_BYTES = 16  # 8-byte hash + 8-byte tat
HEADER_BYTES = 64  # the fingerprint, then spare
FINGERPRINT_KEY = "ruang-guard-cells/1"


def slots_for(keys: int) -> int:
    """A power of two at least twice `keys` (half full at worst: short probes)."""
    slots = 1024
    while slots < 2 * keys:
        slots *= 2
    return slots


def table_bytes(slots: int) -> int:
    """Bytes one table of `slots` cells takes, header included."""
    return HEADER_BYTES + CELL_BYTES * slots


class Cells:
    """One table of GCRA cells over `buffer[offset:offset + table_bytes(slots)]`."""

    def __init__(self, slots: int, buffer: Any = None, offset: int = 0) -> None:
        if slots < 2 or slots & (slots - 1):
            raise ValueError(f"slots must be a power of two ≥ 2, got {slots}")
        size = table_bytes(slots)
        self.shared = buffer is not None  # False: private memory, this process's alone
        if buffer is None:
            buffer, offset = mmap.mmap(-1, size), 0
        view = memoryview(buffer)[offset : offset + size]
        if len(view) < size:
            raise ValueError(f"a table of {slots} cells needs {size} bytes, got {len(view)}")
        header = view[:HEADER_BYTES].cast("q")
        mark = hash(FINGERPRINT_KEY) or 1
        if header[0] == 0:
            header[0] = mark
        elif header[0] != mark:  # another hash seed: this process cannot find the keys
            log.error("shared guard cells hashed with another seed: this worker keeps its own")
            self.shared = False
            view = memoryview(mmap.mmap(-1, size))
            view[:HEADER_BYTES].cast("q")[0] = mark
        self.slots = slots
        self.mask = slots - 1
        self.hashes = view[HEADER_BYTES : HEADER_BYTES + 8 * slots].cast("q")
        self.tats = view[HEADER_BYTES + 8 * slots : size].cast("d")
        self.evicted = 0  # sources forgotten while still in debt (by this process)

    def find(self, h: int, now: float) -> int:
        """The cell of hash `h` (nonzero), or the cell a new key with it should take: the
        first empty or recovered one among its `PROBE`, else the nearest to recovering."""
        hashes, tats, mask = self.hashes, self.tats, self.mask
        i = h & mask
        if hashes[i] == h:
            return i
        spare = -1
        least = i
        for k in range(PROBE):
            j = (i + k) & mask
            other = hashes[j]
            if other == h:
                return j
            if other == 0:  # never used: the key is not further on
                return j if spare < 0 else spare
            if spare < 0:
                tat = tats[j]
                if tat <= now:
                    spare = j
                elif tat < tats[least]:
                    least = j
        if spare >= 0:
            return spare
        self.evicted += 1
        return least

    def in_debt(self, now: float) -> int:
        """Cells of sources not yet recovered (a scan of the table: for statistics only)."""
        import numpy as np

        tats = np.frombuffer(self.tats.cast("B"), dtype=np.float64)
        return int(np.count_nonzero(tats > now))


def create_memory(size: int) -> int:
    """A zeroed anonymous memory file of `size` bytes, inheritable; its descriptor."""
    fd = os.memfd_create("ruang-guard", 0)
    os.ftruncate(fd, size)
    os.set_inheritable(fd, True)
    return fd


def map_memory(fd: int, size: int) -> mmap.mmap:
    """The memory file `fd` mapped shared (every process that maps it sees every write)."""
    return mmap.mmap(fd, size)


NODE_KEYS = 200_000  # sources in debt each node-wide table holds at once
NODE_SLOTS = slots_for(NODE_KEYS)
BOARD_BYTES = 64 * 1024  # the workers' per-second evidence (guard.board)


class NodeLock:
    """An exclusive lock shared by a node's processes: a POSIX record lock on one byte of the
    node's memory file. It excludes other processes only (the lock is the process's): one
    event-loop thread per worker takes it. Without a file (private memory) it does nothing."""

    def __init__(self, fd: int | None, byte: int = 0) -> None:
        self._fd, self._byte = fd, byte

    def __enter__(self) -> None:
        if self._fd is not None:
            fcntl.lockf(self._fd, fcntl.LOCK_EX, 1, self._byte)

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        if self._fd is not None:
            fcntl.lockf(self._fd, fcntl.LOCK_UN, 1, self._byte)


LINES_BYTES = 1024 * 1024  # the waiting room's lines and pace (guard.nodeline)
_EXTRA = 2 * table_bytes(NODE_SLOTS) + BOARD_BYTES  # where the later additions begin


class NodeMemory:
    """The memory a node's workers share: the per-source limits' cells, the per-ticket
    cells, the board of each worker's latest second, the seen proof-of-work solutions, the
    present listeners and the waiting room's lines. `fd` None: this process's own."""

    SIZE = _EXTRA + 2 * table_bytes(NODE_SLOTS) + LINES_BYTES

    def __init__(self, fd: int | None = None) -> None:
        self.buffer: Any = map_memory(fd, self.SIZE) if fd is not None else mmap.mmap(-1, self.SIZE)
        self.shared = fd is not None
        self.fd = fd  # for the lock of the structures that need one (guard.nodeline)

    def limits(self) -> Cells:
        """The cells of the per-source budgets (every class)."""
        return self._cells(0)

    def tickets(self) -> Cells:
        """The cells of the per-ticket budgets (one player's pace)."""
        return self._cells(table_bytes(NODE_SLOTS))

    def board(self) -> memoryview:
        """The bytes of the workers' board."""
        start = 2 * table_bytes(NODE_SLOTS)
        return memoryview(self.buffer)[start : start + BOARD_BYTES]

    def _cells(self, offset: int) -> Cells:
        cells = Cells(NODE_SLOTS, self.buffer, offset)
        cells.shared = cells.shared and self.shared
        return cells

    def solutions(self) -> Cells:
        """The cells of the proof-of-work solutions seen (hash, when they expire)."""
        return self._cells(_EXTRA)

    def present(self) -> Cells:
        """The cells of the listeners present (hash, until when they count)."""
        return self._cells(_EXTRA + table_bytes(NODE_SLOTS))

    def lines(self) -> memoryview:
        """The bytes of the waiting room's lines and pace (guard.nodeline)."""
        start = _EXTRA + 2 * table_bytes(NODE_SLOTS)
        return memoryview(self.buffer)[start : start + LINES_BYTES]

    def lock(self, byte: int) -> NodeLock:
        """The node's lock number `byte` (one per structure that needs one)."""
        return NodeLock(self.fd, byte)
