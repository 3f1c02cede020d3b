"""`ruang bench replay`: an ended space's replay and recording, long, as clients fetch them.

The bench starts a server (or uses --url with --data-dir), creates a space and ends it, then
puts in its folder a recording of `--minutes` of a 440 Hz tone written part by part through
the media store (`SpaceMediaStore`: every part fsync'd and indexed, as a live space writes
it; the AAC access units are encoded once and repeated, so writing an hour takes under a
minute instead of an encode). Then it measures:

- ffmpeg downloading the whole replay from `replay_url` (`-c copy`, no decode): wall time,
  the seconds of audio it got, and the origin's refusals (none: the ended replay is public VOD,
  not held to a live player's pace);
- the recording (`recording_url`): the first request, which makes it (a remux of every
  segment, no re-encode), and a second one served from disk; its size and duration (ffprobe);
- the remux alone, in this process (`ruang.hls.recording.remux` on the same folder);
- a 60 s clip (15 s of a replay under two minutes) from the middle through `POST …/clips`,
  and the cut alone in this process;
- the podcast feed (`/podcast.xml`), built and then from the worker's copy.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import shutil
import subprocess
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import numpy as np

from ruang.codecs.aac import AacEncoder
from ruang.hls.fmp4 import init_segment
from ruang.hls.packager import UNITS_PER_PART, Packager
from ruang.hls.recording import RECORDING_NAME, cut, remux, replay_segments
from ruang.hls.store import PartRecord, SpaceMediaStore
from ruang_bench.common import (
    add_server_arguments,
    create_space,
    emit,
    end_space,
    need,
    server_for,
)
from ruang_bench.tools.tones import sine

TONE_HZ = 440.0
_ENCODED_S = 4.096  # seconds of tone encoded once, then repeated


def add_arguments(p: argparse.ArgumentParser) -> None:
    """Options of this benchmark."""
    add_server_arguments(p)
    p.add_argument("--minutes", type=float, default=60.0, help="length of the replay")


def synthesize(folder: Path, seconds: float, freq: float = TONE_HZ) -> float:
    """Write `seconds` of a tone into `folder` through the media store, as a space that ran
    that long and ended (VOD replay); returns the seconds stored."""
    store = SpaceMediaStore(folder)
    encoder = AacEncoder()
    store.write_init(init_segment(encoder.audio_specific_config))
    units = encoder.encode(sine(freq, _ENCODED_S).astype(np.float32))
    units = units[: len(units) // UNITS_PER_PART * UNITS_PER_PART]
    packager = Packager()
    began = datetime.now(UTC) - timedelta(seconds=seconds)
    parts = max(1, round(seconds / 0.512))
    for i in range(parts):
        at = (i * UNITS_PER_PART) % len(units)
        for p in packager.add(units[at : at + UNITS_PER_PART]):
            pdt = began + timedelta(seconds=p.start_sample / 48_000)
            store.add_part(PartRecord(p.msn, p.index, p.samples, len(p.data), pdt), p.data)
    store.end()
    return store.duration


def probe_s(path_or_url: str) -> float:
    """The duration ffprobe reads from a file or URL, seconds."""
    out = subprocess.run(
        [need("ffprobe"), "-v", "error", "-show_entries", "format=duration", "-of", "json"]
        + [path_or_url],
        capture_output=True,
        check=True,
        timeout=600,
    )
    return float(json.loads(out.stdout)["format"]["duration"])


def ffmpeg_download(url: str, out: Path) -> tuple[float, str]:
    """ffmpeg fetching a whole HLS playlist into one file without decoding: (seconds, log)."""
    began = time.monotonic()
    done = subprocess.run(
        [need("ffmpeg"), "-nostdin", "-v", "warning", "-y", "-i", url, "-c", "copy", str(out)],
        capture_output=True,
        timeout=3600,
    )
    return time.monotonic() - began, done.stderr.decode(errors="replace")[-2000:]


async def measure(args: argparse.Namespace) -> dict[str, Any]:
    """Everything the module docstring lists, as one result."""
    with server_for(args) as server, tempfile.TemporaryDirectory(prefix="ruang-replay-") as tmp:
        if server.spaces_dir is None:
            raise SystemExit("with --url, give --data-dir too (the bench writes the replay)")
        async with httpx.AsyncClient(base_url=server.url, timeout=600) as api:
            space = await create_space(api, f"bench replay {args.minutes:g} min")
            await end_space(api, space)
            folder = server.spaces_dir / space.id
            staged = Path(tmp) / "staged"
            began = time.monotonic()
            stored_s = synthesize(staged, args.minutes * 60)
            write_s = time.monotonic() - began
            shutil.rmtree(folder, ignore_errors=True)
            shutil.move(staged, folder)
            view = (await api.get(f"/api/spaces/{space.id}")).json()
            replay_url, recording_url = view["replay_url"], view["recording_url"]

            download_s, ffmpeg_log = await asyncio.to_thread(
                ffmpeg_download, replay_url, Path(tmp) / "replay.m4a"
            )
            got_s = probe_s(str(Path(tmp) / "replay.m4a"))

            made_before = (folder / RECORDING_NAME).exists()  # by the end's own making
            timings = []
            for _ in range(2):  # the first makes it, the second is the file on disk
                began = time.monotonic()
                r = await api.get(recording_url)
                r.raise_for_status()
                timings.append(time.monotonic() - began)
            (Path(tmp) / "recording.m4a").write_bytes(r.content)
            recording_s = probe_s(str(Path(tmp) / "recording.m4a"))
            segments = replay_segments((folder / "replay.m3u8").read_text())
            began = time.monotonic()
            remux(folder, segments, Path(tmp) / "again.m4a", {"title": "bench"})
            remux_s = time.monotonic() - began

            # a 60 s clip from the middle, through the API (a session is the person), and the
            # cut alone; then the podcast feed that lists the recording
            assert (await api.post("/api/session", json={"name": "bench"})).status_code == 201
            length = 60.0 if stored_s >= 120 else 15.0  # a short bench replay: a short clip
            middle = round(max(0.0, stored_s / 2 - length / 2), 1)
            began = time.monotonic()
            r = await api.post(
                f"/api/spaces/{space.id}/clips", json={"start_s": middle, "duration_s": length}
            )
            r.raise_for_status()
            clip_api_s = time.monotonic() - began
            playlist = (folder / "replay.m3u8").read_text()
            began = time.monotonic()
            made = cut(folder, playlist, middle, length, Path(tmp) / "clip.m4a", {"title": "b"})
            cut_s = time.monotonic() - began
            feed_s = []
            for _ in range(2):  # the first builds it, the second is the worker's copy
                began = time.monotonic()
                (await api.get("/podcast.xml")).raise_for_status()
                feed_s.append(time.monotonic() - began)
    return {
        "minutes": args.minutes,
        "segments": len(segments),
        "stored_s": round(stored_s, 3),
        "write_through_store_s": round(write_s, 2),
        "ffmpeg_download": {
            "wall_s": round(download_s, 2),
            "audio_s": round(got_s, 3),
            "whole": abs(got_s - stored_s) <= 0.512,
            "segments_per_s": round(len(segments) / download_s, 1),
            "log": ffmpeg_log.strip()[-500:],
        },
        "recording": {
            "first_request_s": round(timings[0], 3),
            "cached_request_s": round(timings[1], 3),
            "bytes": len(r.content),
            "audio_s": round(recording_s, 3),
        },
        "remux_in_process_s": round(remux_s, 3),
        "recording_made_at_end": made_before,
        "clip": {
            "seconds": length,
            "api_s": round(clip_api_s, 3),
            "cut_in_process_s": round(cut_s, 4),
            "units": made.units,
        },
        "podcast_feed": {"first_s": round(feed_s[0], 3), "cached_s": round(feed_s[1], 4)},
    }


def run(args: argparse.Namespace) -> None:
    """Entry point of `ruang bench replay`."""
    result = asyncio.run(measure(args))
    dl, rec = result["ffmpeg_download"], result["recording"]
    summary = (
        f"replay: {result['minutes']:g} min ({result['segments']} segments): ffmpeg fetched "
        f"{dl['audio_s']:.1f} of {result['stored_s']:.1f} s in {dl['wall_s']} s; recording "
        f"made in {rec['first_request_s']} s (remux alone {result['remux_in_process_s']} s), "
        f"then served in {rec['cached_request_s']} s; a {result['clip']['seconds']:g} s clip in "
        f"{result['clip']['api_s']} s (cut alone {result['clip']['cut_in_process_s']} s)"
    )
    emit("replay", args, result, summary)
