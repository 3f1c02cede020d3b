"""The node's board: each delivery worker's latest second of evidence, in shared memory, so
attack mode and the proof-of-work difficulty judge the node's traffic, not one worker's share
of it (docs/GUARD.md, "One guard per node").

One row of float64 per worker, written only by that worker once a second (`post`), read by
every worker (`totals`, `strictest`). A row is written field by field with its second last,
so a reader may see a row half old, half new for a moment: the figures are evidence summed
over a second, and a row one field off for one tick moves no decision that the next second's
does not confirm (attack mode needs 3 hostile seconds of 5).
"""

from __future__ import annotations

from collections.abc import Mapping

FIELDS = (
    "requests",
    "refused",
    "ticket_failures",
    "rate_limited",
    "pow_failures",
    "cache_busts",
    "joins",
    "new_networks",
    "networks",
    "pow_difficulty",
    "limit_factor",
)
ROW = len(FIELDS) + 1  # the fields, then the second they are of
FRESH_S = 2.0  # rows older than this (a stopped worker's) are not the node's any more


class Board:
    """The rows of up to `len(buffer) // (8 * ROW)` workers over `buffer` (shared memory)."""

    def __init__(self, buffer: memoryview, worker: int) -> None:
        self._cells = buffer.cast("d")
        self.capacity = len(self._cells) // ROW
        if not 0 <= worker < self.capacity:
            raise ValueError(f"worker {worker} has no row on a board of {self.capacity}")
        self.worker = worker

    def post(self, second: float, figures: Mapping[str, float]) -> None:
        """This worker's figures for the second that began at `second` (Unix time)."""
        base = self.worker * ROW
        cells = self._cells
        for k, name in enumerate(FIELDS):
            cells[base + k] = float(figures.get(name, 0.0))
        cells[base + ROW - 1] = second

    def _fresh(self, now: float) -> list[int]:
        cells = self._cells
        rows = []
        for w in range(self.capacity):
            second = cells[w * ROW + ROW - 1]
            if second and now - second <= FRESH_S:
                rows.append(w * ROW)
        return rows

    def totals(self, now: float) -> dict[str, float]:
        """Every fresh row's figures added up (the node's latest second)."""
        cells = self._cells
        out = dict.fromkeys(FIELDS, 0.0)
        for base in self._fresh(now):
            for k, name in enumerate(FIELDS):
                out[name] += cells[base + k]
        return out

    def strictest(self, now: float) -> tuple[int, float]:
        """The highest proof-of-work difficulty and the tightest limit factor any fresh row
        asks for (1.0 when none does)."""
        cells = self._cells
        bits, factor = 0, 1.0
        pow_k, factor_k = FIELDS.index("pow_difficulty"), FIELDS.index("limit_factor")
        for base in self._fresh(now):
            bits = max(bits, int(cells[base + pow_k]))
            f = cells[base + factor_k]
            if 0.0 < f < factor:
                factor = f
        return bits, factor
