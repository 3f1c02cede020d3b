"""The node's waiting room without Redis: workers over one memory share one pace, one cap and
one FIFO line per space, and a proof-of-work solution buys one join per node."""

from __future__ import annotations

import fcntl
import os
import random
import time

from ruang.guard.admission import Admitted, Limits, Waiting
from ruang.guard.cells import NodeMemory, create_memory
from ruang.guard.nodeline import COUNT_EVERY_S, LOCK_BYTE, NodeAdmission
from ruang.guard.pow import LOCK_BYTE as POW_LOCK
from ruang.guard.pow import ProofOfWork, solve

KEY = b"q" * 32


def workers(
    n: int = 2,
    rate: float = 10,
    burst: int = 5,
    listeners: int = 1000,
    memory: NodeMemory | None = None,
) -> list[NodeAdmission]:
    memory = memory or NodeMemory()
    limits = Limits(max_listeners=listeners, joins_per_s=rate, burst=burst)
    return [NodeAdmission(memory, limits, KEY, 0.0) for _ in range(n)]


def test_two_workers_admit_one_burst_and_one_pace() -> None:
    a, b = workers(rate=10, burst=5)
    admitted = sum(
        isinstance(w.join("s", f"n{i}", None, 0.0), Admitted) for i, w in enumerate([a, b] * 5)
    )
    assert admitted == 5  # the node's burst, whoever asked (each its own would admit 10)
    places = [w.join("s", f"m{i}", None, 0.0) for i, w in enumerate([a, b] * 10)]
    assert [p.position for p in places if isinstance(p, Waiting)] == list(range(6, 26))
    assert a.waiting() == b.waiting() == 25  # the five refused in the first round are in line too


def test_the_line_is_fifo_across_workers_whatever_the_retry_order() -> None:
    pair = workers(rate=10, burst=1)
    assert isinstance(pair[0].join("s", "first", None, 0.0), Admitted)
    tokens = {}
    for i in range(40):  # 40 arrive at once, alternately at each worker
        w = pair[i % 2].join("s", f"n{i}", None, 0.001 * i)
        assert isinstance(w, Waiting) and w.position == i + 1
        tokens[i] = w.token
    admitted: list[int] = []
    rng = random.Random(7)
    t = 0.1
    while tokens and t < 20:
        for i in rng.sample(sorted(tokens), len(tokens)):  # retries, any order, any worker
            r = rng.choice(pair).join("s", f"n{i}", tokens[i], t)
            if isinstance(r, Admitted):
                admitted.append(i)
                del tokens[i]
            else:
                tokens[i] = r.token
        t += 0.1
    assert admitted == sorted(admitted) and len(admitted) == 40
    assert 3.5 < t < 5.5  # 40 people at the node's 10 per second, not 20


def test_the_cap_counts_the_listeners_every_worker_sees() -> None:
    a, b = workers(rate=1000, burst=1000, listeners=4)
    for i, w in enumerate([a, b, a, b]):
        assert isinstance(w.join("s", f"n{i}", None, 0.0), Admitted)
        w.seen("s", f"listener{i}", 0.0)  # the ticket issued
    assert isinstance(a.join("s", "late", None, 0.01), Waiting)
    assert isinstance(b.join("t", "other", None, 0.01), Waiting)  # the node's cap, every space
    assert a.listeners(0.01) == b.listeners(0.01) == 4
    # they stop listening: once their presence lapses, the next count lets the line move
    later = 60.0
    assert isinstance(b.join("t", "again", None, later), Admitted)
    assert a.listeners(later + COUNT_EVERY_S / 2) == 2  # "other", first in line, and "again"


def test_a_child_process_takes_the_next_place() -> None:
    fd = create_memory(NodeMemory.SIZE)
    (parent,) = workers(1, rate=1, burst=1, memory=NodeMemory(fd))
    now = time.time()
    assert isinstance(parent.join("s", "a", None, now), Admitted)
    first = parent.join("s", "b", None, now)
    assert isinstance(first, Waiting) and first.position == 1
    pid = os.fork()
    if pid == 0:  # another worker: the same memory, the same seed (forked)
        (child,) = workers(1, rate=1, burst=1, memory=NodeMemory(fd))
        w = child.join("s", "c", None, now)
        os._exit(w.position if isinstance(w, Waiting) else 99)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 2
    third = parent.join("s", "d", None, now)
    assert isinstance(third, Waiting) and third.position == 3
    os.close(fd)


def test_a_join_waits_for_another_process_holding_the_lock() -> None:
    fd = create_memory(NodeMemory.SIZE)
    (worker,) = workers(1, memory=NodeMemory(fd))
    ready_r, ready_w = os.pipe()
    pid = os.fork()
    if pid == 0:
        fcntl.lockf(fd, fcntl.LOCK_EX, 1, LOCK_BYTE)
        os.write(ready_w, b"x")
        time.sleep(0.3)
        os._exit(0)
    os.read(ready_r, 1)
    began = time.monotonic()
    worker.join("s", "a", None, 0.0)
    assert time.monotonic() - began >= 0.2  # it waited for the other's lock
    os.waitpid(pid, 0)
    os.close(fd)


def test_a_solution_buys_one_join_per_node() -> None:
    memory = NodeMemory()
    a, b = (ProofOfWork(KEY, used=memory.solutions(), lock=memory.lock(POW_LOCK)) for _ in "ab")
    a.difficulty = b.difficulty = 4
    now = time.time()
    pow_ = a.challenge("s1", now)
    solution = {"challenge": pow_["challenge"], "nonce": solve(pow_["challenge"], 4)}
    assert b.verify("s1", solution, now) is None  # issued by one worker, used at the other
    assert a.verify("s1", solution, now) is not None
    assert b.verify("s1", solution, now) is not None
    assert a.statistics()["failures"]["reused"] == 1
