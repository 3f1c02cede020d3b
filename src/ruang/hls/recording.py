"""One audio file of a whole space: its stored CMAF segments remuxed into a single .m4a.

The replay's init segment and its segments, concatenated, are a fragmented MP4 stream; PyAV
(ffmpeg's libavformat) reads it and writes the same AAC access units into one ordinary MP4
(`ipod` muxer: .m4a brands) with `+faststart`, so the index (moov) comes first and players
start before the end. Nothing is decoded or encoded: the file is the live audio, bit for bit.
"""

from __future__ import annotations

import io
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import av

RECORDING_NAME = "recording.m4a"
_CHUNK_BYTES = 1 << 16  # read-ahead of the concatenated input


@dataclass(frozen=True, slots=True)
class RecordingInfo:
    """What the file's metadata says: the space's title, when it happened, who spoke."""

    title: str
    date: str  # ISO 8601 date-time of the start, UTC
    artists: Sequence[str]
    comment: str

    def tags(self) -> dict[str, str]:
        """The container metadata (ffmpeg's names: title, date, creation_time, artist,
        comment)."""
        tags = {"title": self.title, "date": self.date, "creation_time": self.date}
        if self.artists:
            tags["artist"] = ", ".join(self.artists)
        if self.comment:
            tags["comment"] = self.comment
        return tags


def replay_segments(playlist: str) -> list[str]:
    """The segment names a replay playlist lists, in order (the init is `init.mp4`)."""
    return [line for line in playlist.splitlines() if line and not line.startswith("#")]


class _Concatenated(io.RawIOBase):
    """Several files read as one stream, one open file at a time."""

    def __init__(self, paths: Sequence[Path]) -> None:
        self._paths = list(reversed(paths))
        self._file: io.BufferedReader | None = None

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: bytearray | memoryview) -> int:  # type: ignore[override]
        while True:
            if self._file is None:
                if not self._paths:
                    return 0
                self._file = open(self._paths.pop(), "rb")  # noqa: SIM115  closed below
            n = self._file.readinto(buffer)
            if n:
                return n
            self._file.close()
            self._file = None

    def close(self) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None
        super().close()


def remux(folder: Path, segments: Sequence[str], out: Path, tags: Mapping[str, str]) -> int:
    """Write `folder`'s init.mp4 and `segments` as one faststart .m4a at `out` (replaced
    atomically, fsync'd); returns the number of access units written. Raises ValueError when
    the segments hold no audio, OSError when a file is missing."""
    paths = [folder / "init.mp4", *(folder / name for name in segments)]
    tmp = out.with_name(out.name + ".tmp")
    units = 0
    source = io.BufferedReader(_Concatenated(paths), _CHUNK_BYTES)
    with source, av.open(source, "r", format="mp4") as inp:
        stream = inp.streams.audio[0]
        options = {"movflags": "+faststart"}  # the index first: players start at once
        with av.open(str(tmp), "w", format="ipod", options=options) as output:
            output.metadata.update(tags)
            copy = output.add_stream_from_template(stream)
            for packet in inp.demux(stream):
                if packet.dts is None:  # the demuxer's end-of-stream marker
                    continue
                packet.stream = copy
                output.mux(packet)
                units += 1
    if not units:
        tmp.unlink(missing_ok=True)
        raise ValueError(f"no audio in {folder}'s {len(segments)} segments")
    fd = os.open(tmp, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
    os.replace(tmp, out)
    return units
