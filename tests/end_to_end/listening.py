"""How the tests listen: the real ffmpeg binary, and PyAV for single parts."""

from __future__ import annotations

import asyncio
import io
from datetime import datetime, timedelta

import av
import httpx
import m3u8
import numpy as np

from ruang_bench.tools.tones import SAMPLE_RATE, Samples


async def ffmpeg_decode(url: str, seconds: float | None = None, timeout: float = 60) -> Samples:
    """What the ffmpeg binary decodes from an HLS URL, as mono float32 at 48 kHz."""
    args = ["ffmpeg", "-nostdin", "-loglevel", "error", "-i", url]
    if seconds is not None:
        args += ["-t", str(seconds)]
    args += ["-f", "f32le", "-ac", "1", "-ar", str(SAMPLE_RATE), "-"]
    proc = await asyncio.create_subprocess_exec(
        *args, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE
    )
    out, err = await asyncio.wait_for(proc.communicate(), timeout)
    assert proc.returncode == 0, f"ffmpeg failed on {url}: {err.decode()[-2000:]}"
    return np.frombuffer(out, dtype=np.float32)


def decode_mp4(data: bytes) -> Samples:
    """Decode init+fragments held in memory with PyAV."""
    with av.open(io.BytesIO(data), format="mp4") as container:
        frames = [f.to_ndarray().mean(axis=0) for f in container.decode(audio=0)]
    return np.concatenate(frames).astype(np.float32) if frames else np.zeros(0, np.float32)


async def parts_with_times(
    client: httpx.AsyncClient, playlist_url: str
) -> list[tuple[datetime, str]]:
    """(wall-clock start, absolute URL) of every part in a live playlist, from its PDTs."""
    text = (await client.get(playlist_url)).text
    pl = m3u8.loads(text, uri=playlist_url)
    out: list[tuple[datetime, str]] = []
    clock: datetime | None = None
    for seg in pl.segments:
        # m3u8 leaves the PDT of the trailing, still-growing segment unset: it follows the last
        start = seg.program_date_time or clock
        assert start is not None, "a live playlist must carry PROGRAM-DATE-TIME"
        for p in seg.parts:
            out.append((start, p.absolute_uri))
            start = start + timedelta(seconds=p.duration)
        clock = (seg.program_date_time or start) + timedelta(seconds=seg.duration or 0)
        if not seg.uri:
            clock = start
    return out
