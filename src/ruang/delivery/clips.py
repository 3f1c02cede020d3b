"""Clips: any listener cuts 15–60 s of a space — from its replay, or the last minutes of a
live one — into its own page and .m4a (issue #10).

A clip is cut from the stored segments at AAC frame boundaries without re-encoding
(`ruang.hls.recording.cut`, a few milliseconds for a minute), on a thread, at most
CUTS_AT_ONCE at a time per worker, and kept in the space's folder (`clips/{id}.m4a` and its
`{id}.json`), so deleting the recording deletes its clips. Who cuts is a person: a listener's
ticket or a session (a display name); each has a budget (PER_PERSON), each space a cap
(MAX_PER_SPACE), so a thousand callers cost a bounded amount of disk and CPU.
"""

from __future__ import annotations

import asyncio
import json
import math
import re
import time
from collections import OrderedDict, deque
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from ruang.errors import ApiError
from ruang.hls.recording import cut, replay_durations
from ruang.spaces.model import Space, State, clean_title, iso, new_id

MIN_S, MAX_S = 15.0, 60.0  # a clip's length, seconds
LIVE_WINDOW_S = 120.0  # while live, a clip starts at most this long before the recorded end
PER_PERSON = (5, 600.0)  # clips one person may cut per this many seconds (per worker)
MAX_PER_SPACE = 500  # clips a space keeps (~0.5 MB each at most)
CUTS_AT_ONCE = 2  # cuts running at once in one worker; more wait a moment (503)
PEOPLE_KEPT = 100_000  # budgets remembered, oldest forgotten first
CLIPS_DIR = "clips"
CLIP_ID = re.compile(r"^[a-z0-9]{10}$")


@dataclass(frozen=True, slots=True)
class Clip:
    """A clip as stored."""

    id: str
    space_id: str
    title: str
    start_s: float  # on the replay
    duration_s: float
    created_at: str


def _number(data: dict[str, Any], name: str) -> float:
    value = data.get(name)
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise ApiError(422, "invalid_field", f"{name} must be a number of seconds, not {value!r}.")
    return float(value)


class Clips:
    """One worker's clips: cutting them within the budgets, reading them back."""

    def __init__(self, spaces_dir: Path, base_url: str) -> None:
        self.dir = spaces_dir
        self.base_url = base_url
        self._cuts = 0
        self._people: OrderedDict[str, deque[float]] = OrderedDict()

    def view(self, clip: Clip, base: str | None = None) -> dict[str, Any]:
        """A clip as JSON, with its links under `base` (by default the configured base URL;
        the request's, web.common.link_base)."""
        base = base or self.base_url
        space_page = f"{base}/s/{clip.space_id}"
        return {
            "id": clip.id,
            "space_id": clip.space_id,
            "title": clip.title,
            "start_s": clip.start_s,
            "duration_s": clip.duration_s,
            "created_at": clip.created_at,
            "page_url": f"{space_page}/clips/{clip.id}",
            "file_url": f"{base}/api/spaces/{clip.space_id}/clips/{clip.id}.m4a",
            "replay_at_url": f"{space_page}/replay#t={int(clip.start_s)}",
        }

    def _spend(self, person: str, now: float, *, take: bool = True) -> None:
        """Take one clip from the person's budget (or, with take=False, only check that
        there is one), or refuse (429)."""
        count, per_s = PER_PERSON
        times = self._people.pop(person, None) or deque()
        while times and now - times[0] >= per_s:
            times.popleft()
        if len(times) >= count:
            self._people[person] = times
            wait = max(1, math.ceil(per_s - (now - times[0])))
            raise ApiError(
                429,
                "too_many_clips",
                f"You have cut {count} clips in the last {int(per_s // 60)} minutes; "
                f"try again in {wait} s.",
                {"Retry-After": str(wait)},
            )
        if take:
            times.append(now)
        self._people[person] = times
        while len(self._people) > PEOPLE_KEPT:
            self._people.popitem(last=False)

    async def create(
        self, space: Space, person: str, data: dict[str, Any], base: str | None = None
    ) -> dict[str, Any]:
        """Cut a clip of the space for a person; its view, links under `base` (raises
        ApiError with the reason)."""
        start_s, duration_s = _number(data, "start_s"), _number(data, "duration_s")
        if not MIN_S <= duration_s <= MAX_S:
            raise ApiError(
                422,
                "invalid_field",
                f"duration_s must be {MIN_S:.0f}–{MAX_S:.0f} seconds, not {duration_s:g}.",
            )
        if start_s < 0:
            raise ApiError(422, "invalid_field", f"start_s must be ≥ 0, not {start_s:g}.")
        raw_title = data.get("title")
        try:
            title = clean_title(raw_title) if raw_title not in (None, "") else f"{space.title}"
        except ValueError as exc:
            raise ApiError(422, "invalid_field", str(exc)) from None
        if space.state is State.SCHEDULED:
            raise ApiError(409, "not_started", "The space has not started: nothing to clip yet.")
        self._spend(person, time.monotonic(), take=False)  # refused before any file is read
        folder = self.dir / space.id
        try:
            playlist = await asyncio.to_thread((folder / "replay.m3u8").read_text)
        except FileNotFoundError:
            raise ApiError(409, "nothing_recorded", "Nothing of this space is recorded.") from None
        recorded = sum(d for _, d in replay_durations(playlist))
        end_s = start_s + duration_s
        if space.state is State.LIVE and start_s < recorded - LIVE_WINDOW_S:
            raise ApiError(
                422,
                "outside_window",
                f"While the space is live, clip its last {LIVE_WINDOW_S:.0f} s (from "
                f"{max(0.0, recorded - LIVE_WINDOW_S):.0f} s on); the whole replay can be "
                "clipped once it has ended.",
            )
        if end_s > recorded + 0.5:
            raise ApiError(
                422,
                "outside_recording",
                f"{start_s:g}–{end_s:g} s goes past what is recorded ({recorded:.1f} s).",
            )
        clips = folder / CLIPS_DIR
        held = await asyncio.to_thread(lambda: sum(1 for _ in clips.glob("*.json")))
        if held >= MAX_PER_SPACE:
            raise ApiError(429, "clips_full", f"This space has {held} clips, the most it keeps.")
        if self._cuts >= CUTS_AT_ONCE:
            raise ApiError(
                503, "clip_busy", "Other clips are being cut; try again.", {"Retry-After": "2"}
            )
        self._spend(person, time.monotonic())
        self._cuts += 1
        try:
            clip = await asyncio.to_thread(
                self._cut, folder, playlist, space, title, start_s, duration_s
            )
        except FileNotFoundError:  # its folder went away meanwhile: the host deleted it
            raise ApiError(
                410, "recording_deleted", "The host deleted this space's recording."
            ) from None
        except OSError as exc:
            raise ApiError(
                503, "clip_failed", f"The clip could not be cut: {exc}", {"Retry-After": "5"}
            ) from None
        finally:
            self._cuts -= 1
        return self.view(clip, base)

    def _cut(
        self, folder: Path, playlist: str, space: Space, title: str, start_s: float, length: float
    ) -> Clip:
        clips = folder / CLIPS_DIR
        clips.mkdir(exist_ok=True)  # FileNotFoundError: the folder was deleted meanwhile
        clip_id = new_id()
        tags = {"title": title, "album": space.title, "comment": f"A clip of {space.title}"}
        if space.started_at is not None:
            tags["date"] = iso(space.started_at) or ""
        try:
            made = cut(folder, playlist, start_s, length, clips / f"{clip_id}.m4a", tags)
        except ValueError as exc:
            raise ApiError(422, "outside_recording", str(exc)) from None
        now = iso(datetime.now(UTC)) or ""
        clip = Clip(clip_id, space.id, title, made.start_s, made.duration_s, now)
        record = clips / f"{clip_id}.json"
        tmp = record.with_name(record.name + ".tmp")
        tmp.write_text(json.dumps({name: getattr(clip, name) for name in Clip.__slots__}))
        tmp.replace(record)
        return clip

    def read(self, space_id: str, clip_id: str) -> Clip | None:
        """A stored clip (None if there is none by that id)."""
        if not CLIP_ID.match(clip_id):
            return None
        try:
            raw = json.loads((self.dir / space_id / CLIPS_DIR / f"{clip_id}.json").read_text())
            return Clip(**raw)
        except (OSError, ValueError, TypeError):
            return None

    def file(self, space_id: str, clip_id: str) -> Path | None:
        """A stored clip's .m4a (None if there is none)."""
        if not CLIP_ID.match(clip_id):
            return None
        path = self.dir / space_id / CLIPS_DIR / f"{clip_id}.m4a"
        return path if path.is_file() and path.with_suffix(".json").is_file() else None
