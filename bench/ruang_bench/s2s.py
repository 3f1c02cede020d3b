"""`ruang bench s2s`: speaker-to-speaker delay through the server.

Speaker A publishes silence with 1 kHz bursts; speaker B (sendrecv, silent) records the return
audio the server sends it, each 20 ms frame stamped with its arrival time. For every burst,
delay = (arrival of B's frame holding the onset + the onset's offset in that frame) − the
onset's capture time at A (when A's track released the frame starting with it). It includes
Opus encode/decode on both legs, aiortc's receive jitter buffer at the server and at B, the
server's input buffer and its 20 ms tick.

To isolate what the server adds, the same two aiortc clients are also connected directly
(A sendonly → B recvonly, no server, same process, same signal): the server's added delay is
the through-server delay minus that direct delay.
"""

from __future__ import annotations

import argparse
import asyncio
import time
from typing import Any

import av
import httpx
import numpy as np
from aiortc import RTCConfiguration, RTCPeerConnection
from aiortc.mediastreams import MediaStreamError, MediaStreamTrack

from ruang.rtc.ice import configure_host_addresses
from ruang_bench.common import (
    MachineLoad,
    add_server_arguments,
    create_space,
    emit,
    end_space,
    percentiles,
    server_for,
)
from ruang_bench.signals import Bursts, find_onsets, highpass
from ruang_bench.tools.tones import SAMPLE_RATE, Samples
from ruang_bench.tools.whip_client import SignalTrack, WhipPublisher

GOAL_ADDED_S = 0.150
ONSET_THRESHOLD = 0.03
SETTLE_S = 1.0  # after connecting, before the first burst


def add_arguments(p: argparse.ArgumentParser) -> None:
    """Options of this benchmark."""
    add_server_arguments(p)
    p.add_argument("--bursts", type=int, default=15, help="tone bursts to time")
    p.add_argument("--period", type=float, default=1.5, help="seconds between bursts")
    p.add_argument("--no-baseline", action="store_true", help="skip the direct aiortc run")


def _silence(start: int, n: int) -> Samples:
    return np.zeros(n, dtype=np.float32)


def heard_onsets(
    received: list[tuple[float, Samples]], freq: float, min_gap_s: float, highpass_hz: float = 0.0
) -> list[float]:
    """When (time.time()) each onset of `freq` was heard in frames stamped on arrival: the
    arrival of the frame holding it plus its offset in that frame. With `highpass_hz`, what
    lies below it (other people talking on the same stage) is filtered out first."""
    if not received:
        return []
    audio = np.concatenate([s for _, s in received])
    if highpass_hz:
        audio = highpass(audio, highpass_hz)
    ends = np.cumsum([s.size for _, s in received])
    heard: list[float] = []
    for onset in find_onsets(audio, freq, ONSET_THRESHOLD, min_gap_s):
        i = int(np.searchsorted(ends, onset, side="right"))
        frame_start = int(ends[i - 1]) if i else 0
        heard.append(received[i][0] + (onset - frame_start) / SAMPLE_RATE)
    return heard


def burst_delays(
    bursts: Bursts, started_at: float, heard: list[float], period: float
) -> list[tuple[float, float]]:
    """(capture time, heard − capture) of every burst heard within 0.9 period of its capture.
    The capture time is when the track released the frame starting the burst (its real time,
    unless the sender's event loop was late)."""
    out: list[tuple[float, float]] = []
    for onset in bursts.onsets:
        captured = bursts.released_at.get(onset, started_at + onset / SAMPLE_RATE)
        match = [h - captured for h in heard if 0.0 <= h - captured < period * 0.9]
        if match:
            out.append((captured, min(match)))
    return out


def delays(
    bursts: Bursts,
    started_at: float,
    received: list[tuple[float, Samples]],
    period: float,
    highpass_hz: float = 0.0,
) -> list[float]:
    """Per burst found in the received frames: heard time − capture time, seconds."""
    heard = heard_onsets(received, bursts.freq, period / 2, highpass_hz)
    return [d for _, d in burst_delays(bursts, started_at, heard, period)]


class Probe:
    """The two speakers of this benchmark on someone else's busy stage: A publishes `bursts`
    (sendrecv, as a real speaker), B publishes `b_track` and records what the server returns.
    Windows of B's return audio are kept, and timed afterwards (`window_delays`), so that the
    analysis never stalls A's pacing while it is measured."""

    def __init__(self, bursts: Bursts, b_track: MediaStreamTrack, highpass_hz: float = 0.0) -> None:
        self.bursts = bursts
        self.track = SignalTrack(bursts)
        self.b_track = b_track
        self.highpass_hz = highpass_hz
        self.windows: list[tuple[float, float, list[tuple[float, Samples]]]] = []
        self.a: WhipPublisher | None = None
        self.b: WhipPublisher | None = None

    async def connect(self, a: tuple[str, str], b: tuple[str, str]) -> None:
        """Put B then A on stage, each given as (whip_url, token)."""
        self.b = WhipPublisher(b[0], b[1], self.b_track, direction="sendrecv")
        await self.b.start()
        await self.b.wait_connected()
        self.a = WhipPublisher(a[0], a[1], self.track, direction="sendrecv")
        await self.a.start()
        await self.a.wait_connected()

    def open_window(self) -> None:
        """Forget what was heard so far (A's return audio is never analysed)."""
        for pub in (self.a, self.b):
            if pub is not None:
                pub.received.clear()

    def close_window(self, t0: float, t1: float) -> None:
        """Keep B's return audio since open_window for the bursts captured in [t0, t1]; call it
        once the last one has had time to arrive."""
        self.windows.append((t0, t1, list(self.b.received) if self.b else []))

    def window_delays(self, index: int) -> tuple[int, list[float]]:
        """(bursts captured, delay of each one heard) in the index-th window."""
        t0, t1, frames = self.windows[index]
        period = self.bursts.period_s
        heard = heard_onsets(frames, self.bursts.freq, period / 2, self.highpass_hz)
        timed = burst_delays(self.bursts, self.track.started_at, heard, period)
        sent = sum(1 for c in self.bursts.released_at.values() if t0 <= c <= t1)
        return sent, [d for c, d in timed if t0 <= c <= t1]

    async def stop(self) -> None:
        """Both off stage."""
        for pub in (self.a, self.b):
            if pub is not None:
                await pub.stop()


async def _record(track: MediaStreamTrack, into: list[tuple[float, Samples]]) -> None:
    while True:
        try:
            frame = await track.recv()
        except MediaStreamError:
            return
        assert isinstance(frame, av.AudioFrame)
        data = frame.to_ndarray().astype(np.float32) / 32768.0
        mono = data.reshape(-1, len(frame.layout.channels)).mean(axis=1)
        into.append((time.time(), mono.astype(np.float32)))


async def direct(bursts: Bursts, highpass_hz: float = 0.0) -> list[float]:
    """A → B over a direct aiortc connection on loopback (no server)."""
    a = RTCPeerConnection(RTCConfiguration(iceServers=[]))
    b = RTCPeerConnection(RTCConfiguration(iceServers=[]))
    received: list[tuple[float, Samples]] = []
    tasks: list[asyncio.Task[None]] = []

    @b.on("track")
    def on_track(track: MediaStreamTrack) -> None:
        tasks.append(asyncio.create_task(_record(track, received)))

    track = SignalTrack(bursts)
    a.addTransceiver(track, direction="sendonly")
    await a.setLocalDescription(await a.createOffer())
    await b.setRemoteDescription(a.localDescription)
    await b.setLocalDescription(await b.createAnswer())
    await a.setRemoteDescription(b.localDescription)
    deadline = time.monotonic() + 10
    while a.connectionState != "connected" or b.connectionState != "connected":
        if time.monotonic() > deadline:
            raise RuntimeError(f"direct connection is {a.connectionState}/{b.connectionState}")
        await asyncio.sleep(0.02)
    await asyncio.sleep(bursts.duration_s + 1.0)
    await a.close()
    await b.close()
    for t in tasks:
        t.cancel()
    return delays(bursts, track.started_at, received, bursts.period_s, highpass_hz)


async def through_server(url: str, bursts: Bursts) -> tuple[list[float], dict[str, Any]]:
    """A → server → B, both on WHIP (A sendrecv too, as a real speaker)."""
    async with httpx.AsyncClient(verify=False, base_url=url, timeout=20) as api:
        space = await create_space(api, "bench s2s", speakers=1)
        token, whip = space.speakers[0]
        probe = Probe(bursts, SignalTrack(_silence))
        await probe.connect((space.whip_url, space.host_token), (whip, token))
        await asyncio.sleep(bursts.duration_s + 1.0)
        probe.close_window(0.0, float("inf"))
        await probe.stop()
        await end_space(api, space)
    return probe.window_delays(0)[1], {"b_frames_received": len(probe.windows[0][2])}


async def measure(args: argparse.Namespace) -> tuple[dict[str, Any], str]:
    """Direct baseline, then through the server."""
    configure_host_addresses(("127.0.0.1",))

    def make() -> Bursts:
        return Bursts(1000.0, args.period, 0.2, SETTLE_S + 1.0, args.bursts)

    load = MachineLoad()
    load.start()
    base: list[float] = [] if args.no_baseline else await direct(make())
    with server_for(args) as server:
        via, info = await through_server(server.url, make())
    machine = load.read()
    via_p = percentiles(via)
    base_p = percentiles(base)
    result: dict[str, Any] = {
        "through_server_s": via_p,
        "direct_aiortc_s": base_p,
        "bursts_sent": args.bursts,
        **info,
        "goal_added_s": GOAL_ADDED_S,
        "machine_load": machine,
        "through_server_each_s": [round(d, 4) for d in via],
        "direct_each_s": [round(d, 4) for d in base],
    }
    if base and via:
        added = {
            "p50": round(via_p["p50"] - base_p["p50"], 4),
            "p95": round(via_p["p95"] - base_p["p95"], 4),
        }
        result["added_by_server_s"] = added
        verdict = "met" if added["p50"] <= GOAL_ADDED_S else "MISSED"
        extra = (
            f"; added by the server p50 {added['p50'] * 1000:.0f} ms "
            f"p95 {added['p95'] * 1000:.0f} ms (goal <= {GOAL_ADDED_S * 1000:.0f} ms: {verdict})"
        )
    else:
        extra = ""
    summary = (
        f"s2s: A→server→B p50 {via_p.get('p50', 0) * 1000:.0f} ms "
        f"p95 {via_p.get('p95', 0) * 1000:.0f} ms ({len(via)}/{args.bursts} bursts); "
        f"direct aiortc A→B p50 {base_p.get('p50', 0) * 1000:.0f} ms" + extra
    )
    return result, summary


def run(args: argparse.Namespace) -> None:
    """Entry point."""
    result, summary = asyncio.run(measure(args))
    emit("s2s", args, result, summary)
