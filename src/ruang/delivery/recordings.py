"""An ended space's recording on this node's disk: made once, on the first request, kept,
and deleted with everything else the space recorded.

Making it is a remux (`ruang.hls.recording`), about a second for an hour (docs/BENCHMARKS.md),
done on a thread: the worker's loop goes on serving, and no media process is involved, so no
mixer ever waits for it. Several workers (and several requests) asking at once make it once:
requests in one worker share one task, workers share an advisory lock on a file in the
space's folder, and whoever gets the lock second finds the file made. A restart or crash
before it was made (or during: the file appears only whole, by rename) makes it on the next
request.
"""

from __future__ import annotations

import asyncio
import fcntl
import logging
import shutil
from collections.abc import Callable
from pathlib import Path

from ruang.errors import ApiError
from ruang.hls.recording import RECORDING_NAME, RecordingInfo, remux, replay_segments

log = logging.getLogger(__name__)
LOCK_NAME = ".recording.lock"


class NothingRecorded(Exception):
    """The space has no finished replay to make a recording of (yet, or at all)."""


class Recordings:
    """The recordings of the spaces under `spaces_dir`, for one delivery worker."""

    def __init__(self, spaces_dir: Path) -> None:
        self.dir = spaces_dir
        self._making: dict[str, asyncio.Task[Path]] = {}

    def existing(self, space_id: str) -> Path | None:
        """The recording's path if it has been made."""
        path = self.dir / space_id / RECORDING_NAME
        return path if path.is_file() else None

    async def ensure(self, space_id: str, info: Callable[[], RecordingInfo]) -> Path:
        """The recording's path, made first if needed (`info` is asked, on a thread, only
        then). Raises NothingRecorded, or FileNotFoundError when the space's folder is gone."""
        made = self.existing(space_id)
        if made is not None:
            return made
        task = self._making.get(space_id)
        if task is None:
            task = asyncio.ensure_future(asyncio.to_thread(self._make, space_id, info))
            self._making[space_id] = task
            task.add_done_callback(lambda _: self._making.pop(space_id, None))
        return await asyncio.shield(task)

    def _make(self, space_id: str, info: Callable[[], RecordingInfo]) -> Path:
        folder = self.dir / space_id
        out = folder / RECORDING_NAME
        with open(folder / LOCK_NAME, "a") as lock:  # FileNotFoundError: deleted
            fcntl.flock(lock, fcntl.LOCK_EX)  # another worker may be making it
            if out.is_file():
                return out
            try:
                playlist = (folder / "replay.m3u8").read_text()
            except FileNotFoundError:
                raise NothingRecorded(f"space {space_id} has no replay") from None
            segments = replay_segments(playlist)
            if "#EXT-X-ENDLIST" not in playlist or not segments:
                raise NothingRecorded(f"space {space_id}'s replay is not finished or empty")
            try:
                units = remux(folder, segments, out, info().tags())
            except Exception as exc:
                if not folder.is_dir():  # deleted while it was being made
                    raise FileNotFoundError(f"space {space_id}'s folder is gone") from None
                if isinstance(exc, ValueError):  # no audio, or data ffmpeg cannot read
                    log.warning("space %s: no recording made: %s", space_id, exc)
                    raise NothingRecorded(str(exc)) from None
                raise
            log.info("space %s: recording made, %d access units", space_id, units)
            return out

    async def delete(self, space_id: str) -> None:
        """Remove everything the space recorded on this node: its whole folder (parts,
        segments, playlists, the recording, and whatever else is kept there)."""
        folder = self.dir / space_id
        if folder.parent != self.dir or not folder.name:
            raise ValueError(f"not a space folder: {folder}")
        await asyncio.to_thread(shutil.rmtree, folder, ignore_errors=True)


def unsatisfiable(header: str | None, size: int) -> ApiError | None:
    """A JSON 416 for a Range header no byte of a `size`-byte file satisfies (or that is not
    a byte range at all), else None (the file response serves the ranges)."""
    if header is None:
        return None
    unit, _, spec = header.partition("=")
    ok = unit.strip().lower() == "bytes" and bool(spec.strip())
    for item in spec.split(",") if ok else ():
        first, dash, last = item.strip().partition("-")
        if not dash or not (first.isdigit() or last.isdigit()):
            ok = False
        elif not first:  # a suffix: the last N bytes
            ok = ok and int(last) > 0
        elif int(first) >= size or (last and int(last) < int(first)):
            ok = False
        if not ok:
            break
    if ok:
        return None
    return ApiError(
        416,
        "range_not_satisfiable",
        f"Range {header!r} is not a byte range within the {size} bytes of the recording.",
        {"Content-Range": f"bytes */{size}"},
    )
