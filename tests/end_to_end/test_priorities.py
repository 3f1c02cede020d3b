"""Speakers first on the CPU (DESIGN §2.4): a real `ruang serve`'s media process runs
real-time where the machine permits it, so its delivery workers need not lower themselves and
serve listeners as equals of the machine's other work; where it may not (or is told not to),
the workers step down to nice +5 below it."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest


def descendants(pid: int) -> list[int]:
    """Every process below pid."""
    parent_of: dict[int, int] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                raw = Path(f"/proc/{entry}/stat").read_text()
            except OSError:
                continue
            parent_of[int(entry)] = int(raw[raw.rindex(")") + 2 :].split()[1])
    found, frontier = [], [pid]
    while frontier:
        kids = [p for p, parent in parent_of.items() if parent in frontier]
        found += kids
        frontier = kids
    return found


def processes(pid: int, module: str) -> list[int]:
    """The server's processes running `python -m module`."""
    out = []
    for p in descendants(pid):
        try:
            argv = Path(f"/proc/{p}/cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        if module.encode() in argv:
            out.append(p)
    return out


def realtime_permitted() -> bool:
    try:
        os.sched_setscheduler(0, os.SCHED_RR, os.sched_param(1))
    except OSError:
        return False
    os.sched_setscheduler(0, os.SCHED_OTHER, os.sched_param(0))
    return True


@pytest.mark.parametrize("realtime", [True, False])
def test_speakers_come_first_and_workers_step_down_only_when_needed(
    server_factory, realtime: bool
) -> None:
    args = ("--workers", "2", "--media-processes", "1")
    srv = server_factory(args=args if realtime else (*args, "--no-media-realtime"))
    srv.start()
    assert srv.proc is not None
    rt = realtime and realtime_permitted()
    want = 0 if rt else 5
    deadline = time.monotonic() + 15  # the second worker may still be starting up
    while True:
        workers = processes(srv.proc.pid, "ruang.delivery.worker")
        media = processes(srv.proc.pid, "ruang.live.process")
        settled = len(workers) == 2 and all(
            os.getpriority(os.PRIO_PROCESS, p) == want for p in workers
        )
        if settled or time.monotonic() > deadline:
            break
        time.sleep(0.2)
    assert len(workers) == 2 and media, (workers, media)
    # the one media process runs real-time where permitted (its warm spare does once it
    # takes over), else nice -5 or, where even that is refused, normal
    policies = [os.sched_getscheduler(p) & ~os.SCHED_RESET_ON_FORK for p in media]
    assert (os.SCHED_RR in policies) is rt, policies
    if not rt:
        assert all(os.getpriority(os.PRIO_PROCESS, p) <= 0 for p in media)
    for p in workers:
        assert os.sched_getscheduler(p) == os.SCHED_OTHER
        assert os.getpriority(os.PRIO_PROCESS, p) == want, p
