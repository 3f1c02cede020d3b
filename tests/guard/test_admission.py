"""Admission: capacity is respected, the line is FIFO, pre-start arrivals are shuffled once."""

from __future__ import annotations

import random

from ruang.guard.admission import Admission, Admitted, Limits, Waiting

KEY = b"q" * 32


def gate(rate: float = 10, burst: int = 5, listeners: int = 1000) -> Admission:
    return Admission(Limits(max_listeners=listeners, joins_per_s=rate, burst=burst), KEY, 0.0)


def test_under_capacity_everyone_is_admitted_at_once() -> None:
    g = gate(burst=5)
    assert all(isinstance(g.join("s", f"n{i}", None, 0.0), Admitted) for i in range(5))
    assert isinstance(g.join("s", "n6", None, 0.0), Waiting)


def test_the_line_is_fifo_whatever_the_retry_order() -> None:
    g = gate(rate=10, burst=1)
    assert isinstance(g.join("s", "first", None, 0.0), Admitted)
    tokens = {}
    for i in range(50):  # 50 arrive at once, in this order
        w = g.join("s", f"n{i}", None, 0.001 * i)
        assert isinstance(w, Waiting) and w.position == i + 1
        tokens[i] = w.token
    admitted: list[int] = []
    rng = random.Random(7)
    t = 0.1
    while tokens and t < 20:
        for i in rng.sample(sorted(tokens), len(tokens)):  # everyone retries, in random order
            r = g.join("s", f"n{i}", tokens[i], t)
            if isinstance(r, Admitted):
                admitted.append(i)
                del tokens[i]
            else:
                tokens[i] = r.token
        t += 0.1
    assert admitted == sorted(admitted) and len(admitted) == 50
    assert 4.0 < t < 7.0  # 50 people at 10 per second


def test_positions_shrink_and_estimate_the_wait() -> None:
    g = gate(rate=10, burst=1)
    g.join("s", "a", None, 0.0)
    w = [g.join("s", f"n{i}", None, 0.0) for i in range(30)]
    last = w[-1]
    assert isinstance(last, Waiting) and last.position == 30
    assert 2.5 <= last.estimated_wait_s <= 3.5 and last.retry_after_s >= 1
    again = g.join("s", "n29", last.token, 1.0)
    assert isinstance(again, Waiting) and again.position < last.position


def test_forged_queue_token_goes_to_the_back() -> None:
    g = gate(rate=1, burst=1)
    g.join("s", "a", None, 0.0)
    honest = g.join("s", "b", None, 0.0)
    assert isinstance(honest, Waiting)
    forged = honest.token[:-1] + ("0" if honest.token[-1] != "0" else "1")
    r = g.join("s", "c", forged, 0.0)
    assert isinstance(r, Waiting) and r.position == 2
    assert isinstance(g.join("s", "c", "q.0." + "0" * 32, 0.0), Waiting)


def test_concurrent_listener_cap() -> None:
    g = gate(rate=1000, burst=1000, listeners=3)
    for i in range(3):
        assert isinstance(g.join("s", f"n{i}", None, 0.0), Admitted)
        g.seen("s", f"l{i}", 0.0)
    assert isinstance(g.join("s", "n4", None, 0.0), Waiting)
    assert g.listeners(100.0) == 0  # they left: no sign of life for a minute
    assert isinstance(g.join("s", "n5", None, 100.0), Admitted)


def test_prestart_arrivals_are_shuffled_once_and_go_first() -> None:
    g = gate(rate=10, burst=1)
    g.schedule("s")
    early = {}
    for i in range(40):
        w = g.join("s", f"net{i}", None, 0.0)
        assert isinstance(w, Waiting)
        early[i] = w.token
    again = g.join("s", "net3", None, 0.5)  # refreshing gives the same draw
    assert isinstance(again, Waiting) and again.token == early[3]
    g.start("s")
    late = g.join("s", "late", None, 1.0)
    assert isinstance(late, Waiting)
    order: list[str] = []
    pending = {f"net{i}": tok for i, tok in early.items()} | {"late": late.token}
    t = 1.0
    while pending and t < 30:
        for who in sorted(pending):
            r = g.join("s", who, pending[who], t)
            if isinstance(r, Admitted):
                order.append(who)
                del pending[who]
        t += 0.1
    assert order[-1] == "late" and len(order) == 41
    assert order[:-1] != [f"net{i}" for i in range(40)]  # not arrival order: a shuffle


def test_a_late_reading_of_the_clock_credits_no_second_twice() -> None:
    g = gate(rate=1, burst=1)  # one admission a second
    assert isinstance(g.join("s", "n0", None, 10.0), Admitted)
    w = g.join("s", "n1", None, 9.0)  # a request read before the last one: no credit, no rewind
    assert isinstance(w, Waiting)
    # 10 → 10.5 is half a second since the last credit, not 1.5 s since the late reading
    w = g.join("s", "n1", w.token, 10.5)
    assert isinstance(w, Waiting)
    assert isinstance(g.join("s", "n1", w.token, 11.0), Admitted)
