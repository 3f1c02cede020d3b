"""Groups AAC access units into LL-HLS parts (CMAF chunks) with continuous decode times."""

from __future__ import annotations

from dataclasses import dataclass

from ruang.hls.fmp4 import AAC_FRAME_SAMPLES, fragment

UNITS_PER_PART = 24  # 24 × 1024 samples = 0.512 s at 48 kHz
PARTS_PER_SEGMENT = 4  # 2.048 s segments


@dataclass(frozen=True, slots=True)
class PackedPart:
    """One finished part: where it goes in the playlist, where it starts and its bytes."""

    msn: int
    index: int
    start_sample: int  # decode time of its first sample, in 1/48000 s
    samples: int
    data: bytes


class Packager:
    """Cuts the access-unit stream into parts of UNITS_PER_PART and segments of
    PARTS_PER_SEGMENT parts, numbering them from a given position (to resume after a restart)."""

    def __init__(self, msn: int = 0, index: int = 0, decode_time: int = 0, sequence: int = 1):
        self._msn = msn
        self._index = index
        self._decode_time = decode_time
        self._sequence = sequence
        self._pending: list[bytes] = []

    def add(self, units: list[bytes]) -> list[PackedPart]:
        """Take access units; return the parts they completed."""
        self._pending.extend(units)
        parts = []
        while len(self._pending) >= UNITS_PER_PART:
            chunk, self._pending = self._pending[:UNITS_PER_PART], self._pending[UNITS_PER_PART:]
            parts.append(self._pack(chunk))
        return parts

    @property
    def units_to_next_part(self) -> int:
        """Access units still needed to complete the next part."""
        return UNITS_PER_PART - len(self._pending)

    def cut(self) -> int:
        """Start a new segment with the next part (at a scheduled start); returns its msn."""
        if self._index:
            self._msn, self._index = self._msn + 1, 0
        return self._msn

    def flush(self) -> list[PackedPart]:
        """The remaining units as a last, shorter part (at the end of a space)."""
        if not self._pending:
            return []
        chunk, self._pending = self._pending, []
        return [self._pack(chunk)]

    def _pack(self, chunk: list[bytes]) -> PackedPart:
        data = fragment(self._sequence, self._decode_time, chunk)
        part = PackedPart(
            self._msn, self._index, self._decode_time, len(chunk) * AAC_FRAME_SAMPLES, data
        )
        self._sequence += 1
        self._decode_time += part.samples
        self._index += 1
        if self._index == PARTS_PER_SEGMENT:
            self._msn, self._index = self._msn + 1, 0
        return part
