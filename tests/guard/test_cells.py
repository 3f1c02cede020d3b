"""The shared GCRA cells: two limiters over one memory spend one budget."""

from __future__ import annotations

import os

import pytest

from ruang.guard.board import Board
from ruang.guard.cells import Cells, NodeMemory, create_memory
from ruang.guard.ratelimit import Budget, RateLimiter

SMALL = {"media": (Budget(10.0, 20), Budget(1e6, 1_000_000))}


def passes(rl: RateLimiter, ip: str, now: float, n: int) -> int:
    return sum(rl.check("media", ip, "10.0.0.0/24", now) == 0.0 for _ in range(n))


def test_two_workers_on_one_memory_share_one_budget() -> None:
    memory = NodeMemory()
    a, b = RateLimiter(SMALL, cells=memory.limits()), RateLimiter(SMALL, cells=memory.limits())
    assert passes(a, "10.0.0.1", 0.0, 15) == 15
    assert passes(b, "10.0.0.1", 0.0, 15) == 5  # the burst of 20, whoever spends it
    assert passes(a, "10.0.0.2", 0.0, 30) == 20  # another source: its own budget
    assert passes(b, "10.0.0.1", 1.0, 30) == 10  # a second later: the rate, once


def test_a_child_process_spends_the_same_budget() -> None:
    fd = create_memory(NodeMemory.SIZE)
    parent = RateLimiter(SMALL, cells=NodeMemory(fd).limits())
    assert parent.cells.shared
    pid = os.fork()
    if pid == 0:  # the child: the same hash seed (forked), the same memory
        child = RateLimiter(SMALL, cells=NodeMemory(fd).limits())
        os._exit(passes(child, "10.0.0.1", 0.0, 12))
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 12
    assert passes(parent, "10.0.0.1", 0.0, 20) == 8
    os.close(fd)


def test_a_crowded_table_forgets_the_nearest_to_recovering_and_never_refuses() -> None:
    wide = {"media": (Budget(1.0, 1), Budget(1e6, 1_000_000))}
    rl = RateLimiter(wide, cells=Cells(16))  # 16 cells for 1,000 sources in debt
    for i in range(1000):
        ip = f"10.0.{i >> 8}.{i & 255}"
        assert rl.check("media", ip, "net/0", 0.0) == 0.0
    assert rl.evicted > 0 and len(rl) <= 16


def test_cells_need_a_power_of_two() -> None:
    with pytest.raises(ValueError):
        Cells(1000)


def test_the_board_adds_up_fresh_rows_and_takes_the_strictest() -> None:
    memory = NodeMemory()
    w0, w1 = Board(memory.board(), 0), Board(memory.board(), 1)
    w0.post(99.0, {"requests": 300, "pow_difficulty": 12, "limit_factor": 1.0})
    w1.post(99.0, {"requests": 200, "pow_difficulty": 0, "limit_factor": 0.25})
    assert w0.totals(100.0)["requests"] == 500
    assert w1.strictest(100.0) == (12, 0.25)
    assert w0.totals(110.0)["requests"] == 0  # stale rows (stopped workers) are not the node's
