"""The speakers of one space at the mixer's tick: decode, gate, mix, encode once per distinct mix.

Per tick, for each speaker on stage: their queued Opus packets are decoded (a muted speaker's
are dropped undecoded: nobody may hear them), one tick is taken from their input buffer, and
their voice gate decides whether they are heard. The mixer then makes the program and a
mix-minus only for listening speakers who are heard; everyone else hears the program, which
is encoded to Opus once for all of them. So a stage of 13 where two people talk costs three
Opus encodes a tick, not thirteen.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from ruang.codecs.opus import OpusDecoder, OpusEncoder
from ruang.media.activity import VoiceGate
from ruang.media.buffer import InputBuffer, Pcm
from ruang.media.mixer import Mixer, Mixes

Sink = Callable[[bytes], None]  # takes one tick's Opus packet of what a speaker hears


@dataclass
class StageStats:
    """Counters since the stage was made (for /metrics and benchmarks)."""

    decoded: int = 0  # Opus packets decoded
    dropped_muted: int = 0  # packets of muted speakers, dropped undecoded
    encoded: int = 0  # Opus packets encoded (one per distinct mix per tick)
    sent: int = 0  # packets handed to speakers' return tracks


@dataclass
class _Speaker:
    buffer: InputBuffer
    sink: Sink | None
    decoder: OpusDecoder
    gate: VoiceGate


class Stage:
    """Who is on stage and what each of them hears."""

    def __init__(self) -> None:
        self.muted: set[str] = set()
        self.stats = StageStats()
        self._speakers: dict[str, _Speaker] = {}
        self._mixer = Mixer()
        self._program_opus = OpusEncoder()
        self._own_opus: dict[str, OpusEncoder] = {}

    def __len__(self) -> int:
        return len(self._speakers)

    def speaking(self) -> list[str]:
        """The speakers heard now: their voice gate is open (for the `speaking` event)."""
        return [sid for sid, s in self._speakers.items() if s.gate.is_open]

    def add(self, speaker_id: str, buffer: InputBuffer, sink: Sink | None) -> None:
        """Put a speaker on stage (replacing a previous session of theirs)."""
        self._speakers[speaker_id] = _Speaker(buffer, sink, OpusDecoder(), VoiceGate())
        self._own_opus.pop(speaker_id, None)

    def remove(self, speaker_id: str) -> None:
        """Take a speaker off stage."""
        self._speakers.pop(speaker_id, None)
        self._own_opus.pop(speaker_id, None)

    def set_muted(self, speaker_id: str, muted: bool) -> None:
        """Muted speakers are heard by nobody from the next tick on."""
        if muted:
            self.muted.add(speaker_id)
            speaker = self._speakers.get(speaker_id)
            if speaker is not None:
                speaker.gate.close()
                speaker.buffer.reset()
        else:
            self.muted.discard(speaker_id)

    def tick(self) -> Mixes:
        """One tick: every listening speaker is sent their packet; returns the mixes."""
        inputs: dict[str, Pcm | None] = {}
        for sid, speaker in self._speakers.items():
            inputs[sid] = self._take_tick(sid, speaker)
        listening = [sid for sid, s in self._speakers.items() if s.sink is not None]
        mixes = self._mixer.mix(inputs, self.muted, listening)
        self._send(mixes)
        return mixes

    def _take_tick(self, sid: str, speaker: _Speaker) -> Pcm | None:
        packets = speaker.buffer.take_packets()
        if sid in self.muted:
            self.stats.dropped_muted += len(packets)
            return None
        for packet in packets:
            speaker.buffer.push(speaker.decoder.decode(packet))
        self.stats.decoded += len(packets)
        pcm = speaker.buffer.pop()
        return pcm if speaker.gate.update(pcm) else None

    def _send(self, mixes: Mixes) -> None:
        for gone in self._own_opus.keys() - mixes.own.keys():
            del self._own_opus[gone]  # back on the program; a new encoder when heard again
        program_packet: bytes | None = None
        for sid, speaker in self._speakers.items():
            if speaker.sink is None:
                continue
            own = mixes.own.get(sid)
            if own is not None:
                encoder = self._own_opus.get(sid)
                if encoder is None:
                    encoder = self._own_opus[sid] = OpusEncoder()
                packet = encoder.encode(own)
                self.stats.encoded += 1
            else:
                if program_packet is None:
                    program_packet = self._program_opus.encode(mixes.program)
                    self.stats.encoded += 1
                packet = program_packet
            speaker.sink(packet)
            self.stats.sent += 1
