"""A part-aware LL-HLS listener for measurements.

It does what a low-latency player does on the network: it reads the live playlist, asks for
the part named by EXT-X-PRELOAD-HINT at once (the server holds the request until the part
exists), and reloads the playlist with `_HLS_msn`/`_HLS_part` blocking requests for that same
part. Every part's arrival is timestamped (time.time(), when its last byte is in). Afterwards
the parts are decoded with PyAV, each decoded sample keeping its media time, so that a sound's
position can be mapped to the part that carried it, to that part's arrival and to its
PROGRAM-DATE-TIME.
"""

from __future__ import annotations

import asyncio
import contextlib
import io
import re
import struct
import time
from dataclasses import dataclass, field
from datetime import datetime, timedelta

import av
import httpx
import numpy as np

from ruang_bench.tools.tones import SAMPLE_RATE, Samples

PartKey = tuple[int, int]  # (msn, part index)

_ATTR = re.compile(r'([A-Z0-9-]+)=("[^"]*"|[^,]*)')
_PART_URI = re.compile(r"^(\d+)\.(\d+)\.m4s$")


@dataclass
class PlaylistPart:
    """A part as the playlist lists it."""

    key: PartKey
    uri: str
    duration: float
    pdt: datetime  # wall-clock time of its first sample (segment PDT + earlier parts)


@dataclass
class Playlist:
    """The parts of one live playlist fetch, with the preload hint and server control."""

    parts: dict[PartKey, PlaylistPart]
    hint: PartKey | None
    part_hold_back: float | None
    ended: bool


def _attrs(line: str) -> dict[str, str]:
    return {k: v.strip('"') for k, v in _ATTR.findall(line.split(":", 1)[1])}


def _key(uri: str) -> PartKey | None:
    m = _PART_URI.match(uri)
    return (int(m.group(1)), int(m.group(2))) if m else None


def parse_playlist(text: str) -> Playlist:
    """Read the parts of an LL-HLS media playlist (only what a player needs here)."""
    parts: dict[PartKey, PlaylistPart] = {}
    hint: PartKey | None = None
    phb: float | None = None
    pdt: datetime | None = None
    for line in text.splitlines():
        if line.startswith("#EXT-X-PROGRAM-DATE-TIME:"):
            pdt = datetime.fromisoformat(line.split(":", 1)[1].replace("Z", "+00:00"))
        elif line.startswith("#EXT-X-PART:") and pdt is not None:
            a = _attrs(line)
            key = _key(a["URI"])
            if key is not None:
                duration = float(a["DURATION"])
                parts[key] = PlaylistPart(key, a["URI"], duration, pdt)
                pdt = pdt + timedelta(seconds=duration)
        elif line.startswith("#EXT-X-PRELOAD-HINT:"):
            hint = _key(_attrs(line).get("URI", ""))
        elif line.startswith("#EXT-X-SERVER-CONTROL:"):
            v = _attrs(line).get("PART-HOLD-BACK")
            phb = float(v) if v else None
    return Playlist(parts, hint, phb, "#EXT-X-ENDLIST" in text)


def tfdt(fragment: bytes) -> int:
    """baseMediaDecodeTime of the first track fragment (moof/traf/tfdt) of a CMAF chunk."""

    def boxes(data: bytes, start: int, end: int) -> dict[bytes, tuple[int, int]]:
        found: dict[bytes, tuple[int, int]] = {}
        pos = start
        while pos + 8 <= end:
            size, kind = struct.unpack_from(">I4s", data, pos)
            if size < 8:
                break
            found.setdefault(kind, (pos + 8, pos + size))
            pos += size
        return found

    moof = boxes(fragment, 0, len(fragment))[b"moof"]
    traf = boxes(fragment, *moof)[b"traf"]
    body, _ = boxes(fragment, *traf)[b"tfdt"]
    version = fragment[body]
    if version == 1:
        return int(struct.unpack_from(">Q", fragment, body + 4)[0])
    return int(struct.unpack_from(">I", fragment, body + 4)[0])


@dataclass
class ReceivedPart:
    """One part as the listener got it."""

    key: PartKey
    data: bytes
    requested: float  # time.time() the request was sent
    arrived: float  # time.time() its last byte arrived
    tfdt: int = 0  # media time of its first sample, 1/48000 s
    listed: PlaylistPart | None = None  # filled in from the playlists seen

    @property
    def samples(self) -> int:
        """Samples in the part, from the playlist's duration."""
        return round((self.listed.duration if self.listed else 0.512) * SAMPLE_RATE)

    @property
    def pdt_end(self) -> float:
        """Wall-clock time (epoch seconds) of the end of the part, by PROGRAM-DATE-TIME."""
        assert self.listed is not None
        return self.listed.pdt.timestamp() + self.listed.duration


@dataclass
class Listening:
    """What the listener received, and the decoded audio with its media timeline."""

    parts: list[ReceivedPart]
    init: bytes
    part_hold_back: float
    errors: list[str] = field(default_factory=list)
    audio: Samples = field(default_factory=lambda: np.zeros(0, np.float32))
    audio_start: int = 0  # media time (1/48000 s) of audio[0]

    def decode(self) -> None:
        """Decode init + every received part (in order, contiguous) with PyAV."""
        blob = self.init + b"".join(p.data for p in self.parts)
        chunks: list[Samples] = []
        start: int | None = None
        expected = 0
        with av.open(io.BytesIO(blob), mode="r", format="mp4") as container:
            for frame in container.decode(audio=0):
                assert frame.pts is not None
                pcm = frame.to_ndarray().astype(np.float32)
                mono = pcm.mean(axis=0) if frame.format.is_planar else pcm.reshape(-1).copy()
                if start is None:
                    start = expected = int(frame.pts)
                if frame.pts > expected:  # a hole: keep the timeline true
                    chunks.append(np.zeros(int(frame.pts) - expected, np.float32))
                    expected = int(frame.pts)
                chunks.append(mono.astype(np.float32))
                expected += mono.size
        self.audio = np.concatenate(chunks) if chunks else np.zeros(0, np.float32)
        self.audio_start = start or 0

    def part_at(self, media_time: int) -> ReceivedPart | None:
        """The received part holding this media time (1/48000 s)."""
        for p in self.parts:
            if p.tfdt <= media_time < p.tfdt + p.samples:
                return p
        return None

    def edge_lags(self) -> list[float]:
        """For every part: arrival minus the PDT of its end, seconds (how old the live edge
        is when a player learns it)."""
        return [p.arrived - p.pdt_end for p in self.parts if p.listed is not None]


class PartListener:
    """Follows a live LL-HLS playlist part by part until a deadline."""

    def __init__(self, client: httpx.AsyncClient, playlist_url: str) -> None:
        self.client = client
        self.url = playlist_url
        self.base = playlist_url.rsplit("/", 1)[0]
        self.listed: dict[PartKey, PlaylistPart] = {}
        self.fetching: dict[PartKey, asyncio.Task[ReceivedPart | None]] = {}
        self.errors: list[str] = []
        self.part_hold_back = 0.0
        self.playlist_requests = 0

    async def _playlist(self, hint: PartKey | None) -> Playlist | None:
        params = {} if hint is None else {"_HLS_msn": hint[0], "_HLS_part": hint[1]}
        self.playlist_requests += 1
        try:
            r = await self.client.get(self.url, params=params)
        except httpx.HTTPError as e:
            self.errors.append(f"playlist {params}: {e!r}")
            return None
        if r.status_code != 200:
            self.errors.append(f"playlist {params}: HTTP {r.status_code}")
            return None
        pl = parse_playlist(r.text)
        self.listed.update(pl.parts)
        if pl.part_hold_back:
            self.part_hold_back = pl.part_hold_back
        return pl

    async def _part(self, key: PartKey) -> ReceivedPart | None:
        requested = time.time()
        url = f"{self.base}/{key[0]}.{key[1]}.m4s"
        try:
            r = await self.client.get(url)
        except httpx.HTTPError as e:
            self.errors.append(f"part {key}: {e!r}")
            return None
        arrived = time.time()
        if r.status_code != 200:
            self.errors.append(f"part {key}: HTTP {r.status_code}")
            return None
        return ReceivedPart(key, r.content, requested, arrived, tfdt(r.content))

    def _fetch(self, key: PartKey) -> None:
        if key not in self.fetching:
            self.fetching[key] = asyncio.create_task(self._part(key))

    async def run(self, seconds: float) -> Listening:
        """Listen for `seconds` from the live edge; returns every part received."""
        r = await self.client.get(f"{self.base}/init.mp4")
        r.raise_for_status()
        init = r.content
        deadline = time.monotonic() + seconds
        pl = await self._playlist(None)
        if pl is None or pl.hint is None:
            raise RuntimeError(f"no live playlist with a preload hint at {self.url}")
        first = pl.hint
        while time.monotonic() < deadline:
            hint = pl.hint if pl is not None else None
            if hint is None:
                if pl is not None and pl.ended:
                    break
                await asyncio.sleep(0.1)  # after an error: a plain reload, a moment later
                pl = await self._playlist(None)
                continue
            self._fetch(hint)  # the server holds it until it exists
            # Anything listed that we skipped (after an error) is fetched too, in order.
            for key in sorted(k for k in self.listed if first <= k < hint):
                self._fetch(key)
            pl = await self._playlist(hint)
        for task in self.fetching.values():
            if not task.done():
                with contextlib.suppress(asyncio.TimeoutError):
                    await asyncio.wait_for(asyncio.shield(task), 8)
        received = []
        for task in self.fetching.values():
            if task.done() and not task.cancelled() and (part := task.result()) is not None:
                part.listed = self.listed.get(part.key)
                received.append(part)
            elif not task.done():
                task.cancel()
        received.sort(key=lambda p: p.key)
        return Listening(received, init, self.part_hold_back, self.errors)
