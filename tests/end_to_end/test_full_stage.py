"""A full stage: 13 aiortc sendrecv speakers, each with a tone of their own; everyone hears the
twelve others and not themselves (FFT), and a muted speaker is heard by nobody."""

from __future__ import annotations

import asyncio
import time
from fractions import Fraction

import av
import httpx
from aiortc.mediastreams import MediaStreamError, MediaStreamTrack

from ruang.codecs.opus import OpusEncoder
from ruang_bench.tools.tones import sine, tone_levels_db
from ruang_bench.tools.whip_client import WhipPublisher

STAGE = 13
# Multiples of 50 Hz loop seamlessly; prime multiples never sit on another tone's 2nd or 3rd
# harmonic, and 300 Hz or more apart they stay clear of each other's coding noise.
TONES = [50.0 * p for p in (5, 11, 17, 23, 29, 37, 43, 53, 59, 67, 73, 79, 89)]
PRESENT_DB = 10.0  # a heard tone stands this far above the rest (12 tones at 32 kb/s: coding noise)
ABSENT_DB = 25.0  # a tone nobody should hear stays this far below the weakest heard one
MUTED = 4  # the speaker the host mutes
AMPLITUDE = 0.06  # twelve of them sum below full scale: the limiter stays out of the way
FRAME = 960  # samples, 20 ms


class PacketToneTrack(MediaStreamTrack):
    """One second of a tone as Opus packets, encoded once and sent in a loop in real time
    (cheap enough for 13 peers in the test process)."""

    kind = "audio"

    def __init__(self, freq: float) -> None:
        super().__init__()
        encoder = OpusEncoder()
        self._packets = [
            encoder.encode(sine(freq, FRAME / 48_000, AMPLITUDE, i * FRAME)) for i in range(50)
        ]
        self._n = 0
        self._t0: float | None = None

    async def recv(self) -> av.Packet:  # type: ignore[type-arg]
        if self.readyState != "live":
            raise MediaStreamError
        if self._t0 is None:
            self._t0 = time.monotonic()
        delay = self._t0 + self._n * FRAME / 48_000 - time.monotonic()
        if delay > 0:
            await asyncio.sleep(delay)
        packet = av.Packet(self._packets[self._n % len(self._packets)])
        packet.pts = self._n * FRAME
        packet.time_base = Fraction(1, 48_000)
        self._n += 1
        return packet


def check(pub: WhipPublisher, me: int, silent: set[int], seconds: float = 2.0) -> None:
    now = time.time()
    audio = pub.heard(now - seconds, now)
    assert audio.size >= 0.8 * seconds * 48_000, f"speaker {me} got {audio.size} samples"
    levels, rest = tone_levels_db(audio, TONES, guard_hz=20.0)
    heard = [f for i, f in enumerate(TONES) if i != me and i not in silent]
    weakest = min(levels[f] for f in heard)
    for f in heard:
        assert levels[f] - rest >= PRESENT_DB, (
            f"speaker {me} hears {f} Hz only {levels[f] - rest:.1f} dB above the rest"
        )
    for i in {me} | silent:
        assert weakest - levels[TONES[i]] >= ABSENT_DB, (
            f"speaker {me} hears {TONES[i]} Hz (speaker {i}) at {levels[TONES[i]]:.1f} dB, "
            f"the weakest other tone at {weakest:.1f} dB"
        )


async def test_thirteen_speakers_hear_everyone_but_themselves(server) -> None:
    async with httpx.AsyncClient(base_url=server.url, timeout=20) as api:
        space = (await api.post("/api/spaces", json={"title": "Full stage"})).json()
        auth = {"Authorization": f"Bearer {space['host_token']}"}
        people = [(space["host_token"], space["whip_url"], "")]
        for i in range(1, STAGE):
            r = await api.post(
                f"/api/spaces/{space['id']}/speakers", json={"name": f"S{i}"}, headers=auth
            )
            assert r.status_code == 201, r.text
            d = r.json()
            people.append((d["token"], d["whip_url"], d["id"]))
        pubs = [
            WhipPublisher(url, token, PacketToneTrack(TONES[i]))
            for i, (token, url, _) in enumerate(people)
        ]
        try:
            await asyncio.gather(*(p.start(timeout=20) for p in pubs))
            await asyncio.gather(*(p.wait_connected(timeout=20) for p in pubs))
            await asyncio.sleep(3.0)
            for i, pub in enumerate(pubs):
                check(pub, i, set())

            r = await api.post(
                f"/api/spaces/{space['id']}/speakers/{people[MUTED][2]}/mute",
                json={"muted": True},
                headers=auth,
            )
            assert r.status_code == 200, r.text
            await asyncio.sleep(2.5)
            for i, pub in enumerate(pubs):
                # the muted speaker still hears the twelve others
                check(pub, i, {MUTED} - {i})

            # what /metrics says of the stage: every speaker got their return; the muted
            # one is not decoded, so fewer packets are decoded than the 13 send
            text = (await api.get("/metrics")).text
            sid = space["id"]
            figures = {
                name: float(line.rsplit(" ", 1)[1])
                for line in text.splitlines()
                for name in ("ruang_opus_encoded_total", "ruang_opus_decoded_total",
                             "ruang_return_packets_total", "ruang_mixer_ticks_total")
                if line.startswith(f'{name}{{space="{sid}"}}')
            }  # fmt: skip
            ticks = figures["ruang_mixer_ticks_total"]
            assert figures["ruang_return_packets_total"] >= 0.8 * STAGE * ticks * 0.5
            assert figures["ruang_opus_encoded_total"] <= (STAGE + 1) * ticks
            assert figures["ruang_opus_decoded_total"] < STAGE * ticks
        finally:
            await asyncio.gather(*(p.stop() for p in pubs), return_exceptions=True)
            await api.post(f"/api/spaces/{space['id']}/end", headers=auth)
