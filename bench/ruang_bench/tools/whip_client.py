"""A WHIP publisher built on aiortc: publishes a generated signal and records what it hears."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from fractions import Fraction

import av
import httpx
import numpy as np
from aiortc import RTCConfiguration, RTCPeerConnection, RTCSessionDescription
from aiortc.mediastreams import MediaStreamError, MediaStreamTrack

from ruang_bench.tools.tones import SAMPLE_RATE, Samples

FRAME_SAMPLES = 960  # 20 ms


class SignalTrack(MediaStreamTrack):
    """Audio from a function of the sample index, paced in real time like a microphone.

    `signal(start, count)` returns `count` float samples starting at sample `start`; the wall
    clock time of sample 0 is `started_at` (time.time()), so onsets can be timed end to end."""

    kind = "audio"

    def __init__(self, signal: Callable[[int, int], Samples]) -> None:
        super().__init__()
        self._signal = signal
        self._sample = 0
        self._t0: float | None = None
        self.started_at = 0.0

    async def recv(self) -> av.AudioFrame:
        """The next 20 ms, released no earlier than its real time."""
        if self.readyState != "live":
            raise MediaStreamError
        if self._t0 is None:
            self._t0 = time.monotonic()
            self.started_at = time.time()
        due = self._t0 + self._sample / SAMPLE_RATE
        delay = due - time.monotonic()
        if delay > 0:
            await asyncio.sleep(delay)
        pcm = self._signal(self._sample, FRAME_SAMPLES)
        s16 = (np.clip(pcm, -1, 1) * 32767).astype(np.int16).reshape(1, -1)
        frame = av.AudioFrame.from_ndarray(s16, format="s16", layout="mono")
        frame.sample_rate = SAMPLE_RATE
        frame.pts = self._sample
        frame.time_base = Fraction(1, SAMPLE_RATE)
        self._sample += FRAME_SAMPLES
        return frame


class WhipPublisher:
    """One WHIP session: POST offer, keep the Location, record the return audio, DELETE."""

    def __init__(
        self, whip_url: str, token: str, track: MediaStreamTrack, direction: str = "sendrecv"
    ) -> None:
        self.whip_url = whip_url
        self.token = token
        self.track = track
        self.direction = direction
        self.location: str | None = None
        self.received: list[tuple[float, Samples]] = []  # (arrival time.time(), mono samples)
        self._pc = RTCPeerConnection(RTCConfiguration(iceServers=[]))
        self._reader: asyncio.Task[None] | None = None

    async def start(self, timeout: float = 10.0) -> httpx.Response:
        """Publish; returns the WHIP response (raises if it is not 201)."""
        pc = self._pc
        pc.addTransceiver(self.track, direction=self.direction)

        @pc.on("track")
        def on_track(track: MediaStreamTrack) -> None:
            self._reader = asyncio.create_task(self._record(track))

        await pc.setLocalDescription(await pc.createOffer())
        async with httpx.AsyncClient(timeout=timeout) as client:
            r = await client.post(
                self.whip_url,
                content=pc.localDescription.sdp,
                headers={
                    "Content-Type": "application/sdp",
                    "Authorization": f"Bearer {self.token}",
                },
            )
        if r.status_code != 201:
            await pc.close()
            raise RuntimeError(f"WHIP POST answered {r.status_code}: {r.text}")
        self.location = str(httpx.URL(self.whip_url).join(r.headers["location"]))
        await pc.setRemoteDescription(RTCSessionDescription(r.text, "answer"))
        return r

    async def wait_connected(self, timeout: float = 10.0) -> None:
        """Until ICE+DTLS are up."""
        deadline = time.monotonic() + timeout
        while self._pc.connectionState != "connected":
            if time.monotonic() > deadline or self._pc.connectionState in ("failed", "closed"):
                raise RuntimeError(f"connection is {self._pc.connectionState}")
            await asyncio.sleep(0.05)

    async def _record(self, track: MediaStreamTrack) -> None:
        while True:
            try:
                frame = await track.recv()
            except MediaStreamError:
                return
            assert isinstance(frame, av.AudioFrame)
            data = frame.to_ndarray().astype(np.float32) / 32768.0
            mono = data.reshape(-1, len(frame.layout.channels)).mean(axis=1)
            self.received.append((time.time(), mono.astype(np.float32)))

    def heard(self, since: float = 0.0, until: float = float("inf")) -> Samples:
        """Return audio that arrived between two wall-clock times."""
        blocks = [s for t, s in self.received if since <= t <= until]
        return np.concatenate(blocks) if blocks else np.zeros(0, dtype=np.float32)

    async def stop(self) -> int | None:
        """DELETE the session (returns its status) and close the connection."""
        status = None
        if self.location:
            async with httpx.AsyncClient(timeout=10) as client:
                r = await client.delete(
                    self.location, headers={"Authorization": f"Bearer {self.token}"}
                )
                status = r.status_code
        if self._reader is not None:
            self._reader.cancel()
        await self._pc.close()
        return status
