"""`GET /api/spaces/{id}/timeline`: who spoke when and the reactions, placed on the replay.

Built from the space's journal and its replay playlist (spaces/timeline.py), off the event
loop, and kept: an ended space's timeline never changes, a live one's is rebuilt at most every
LIVE_TTL_S — so a thousand callers cost one build, and edges may cache the answer too.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections import OrderedDict
from pathlib import Path
from typing import Any

from ruang.errors import ApiError
from ruang.live.eventfeed import JOURNAL_FILE
from ruang.spaces.model import Space, State
from ruang.spaces.timeline import timeline
from ruang.store.base import Store

LIVE_TTL_S = 5.0  # a live space's timeline is rebuilt at most this often, seconds
ENDED_CACHE = "public, max-age=3600"
LIVE_CACHE = f"public, max-age={int(LIVE_TTL_S)}"
MAX_JOURNAL_BYTES = 64 * 1024 * 1024  # read at most this much of a journal (~days of talk)
KEPT = 256  # timelines a worker keeps


class Timelines:
    """One worker's timelines, built once each (ended) or every LIVE_TTL_S (live)."""

    def __init__(self, spaces_dir: Path, db: Store) -> None:
        self.spaces_dir = spaces_dir
        self.db = db
        self._kept: OrderedDict[str, tuple[float, bool, bytes]] = OrderedDict()
        self._building: dict[str, asyncio.Future[bytes]] = {}

    async def answer(self, space: Space) -> tuple[bytes, str]:
        """The space's timeline as JSON bytes, and its Cache-Control."""
        ended = space.state is State.ENDED
        kept = self._kept.get(space.id)
        now = time.monotonic()
        if kept is not None and kept[1] == ended and (ended or now - kept[0] < LIVE_TTL_S):
            self._kept.move_to_end(space.id)
            return kept[2], ENDED_CACHE if ended else LIVE_CACHE
        building = self._building.get(space.id)
        if building is None:  # one build at a time per space; the others wait for it
            building = asyncio.ensure_future(asyncio.to_thread(self._build, space))
            self._building[space.id] = building
            building.add_done_callback(lambda _: self._building.pop(space.id, None))
        body = await asyncio.shield(building)
        self._kept[space.id] = (now, ended, body)
        self._kept.move_to_end(space.id)
        while len(self._kept) > KEPT:
            self._kept.popitem(last=False)
        return body, ENDED_CACHE if ended else LIVE_CACHE

    def _build(self, space: Space) -> bytes:
        folder = self.spaces_dir / space.id
        try:
            playlist = (folder / "replay.m3u8").read_text()
        except FileNotFoundError:
            playlist = ""
        if space.state is State.SCHEDULED:
            playlist = ""  # before the start there is no replay to place anything on
        try:
            with open(folder / JOURNAL_FILE, "rb") as f:
                journal = f.read(MAX_JOURNAL_BYTES)
        except FileNotFoundError:
            journal = b""
        except OSError as exc:
            raise ApiError(
                503, "timeline_unavailable", f"The timeline cannot be read: {exc}"
            ) from None
        view: dict[str, Any] = {"id": space.id, "state": space.state.value}
        view.update(timeline(journal, playlist))
        spoke: dict[str, float] = {}
        for turn in view["turns"]:
            who = turn["speaker"]
            spoke[who] = spoke.get(who, 0.0) + turn["end_s"] - turn["start_s"]
        members = {m.id: m for m in self.db.speakers(space.id)}
        for gone in [i for i in spoke if i not in members]:  # removed since, yet they spoke
            member = self.db.get_speaker(space.id, gone)
            if member is not None:
                members[gone] = member
        speakers = []
        for member in members.values():
            if member.id in spoke or member.on_stage:
                speakers.append(
                    {
                        "id": member.id,
                        "name": member.name,
                        "role": member.role.value,
                        "spoke_s": round(spoke.get(member.id, 0.0), 1),
                    }
                )
        view["speakers"] = sorted(speakers, key=lambda m: -m["spoke_s"])
        return json.dumps(view, ensure_ascii=False, separators=(",", ":")).encode()
