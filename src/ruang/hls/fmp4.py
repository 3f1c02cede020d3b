"""Hand-written CMAF / fragmented-MP4 muxer for AAC-LC audio (ISO/IEC 14496-12, 14496-14, 23000-19).

Pure functions: bytes in, bytes out, no I/O. The output is one init segment
(``ftyp`` + ``moov``) and any number of fragments (``moof`` + ``mdat``); an init
segment followed by fragments with contiguous decode times is a playable MP4, and
a run of fragments is a valid CMAF segment (or LL-HLS partial segment).

Samples are raw AAC access units (no ADTS header) as produced by an encoder,
together with the codec's AudioSpecificConfig (its "extradata"). The media
timescale equals the sample rate, so one AAC-LC frame lasts 1024 ticks. No edit
list is written: the encoder's priming samples are presented, not trimmed.
"""

from __future__ import annotations

import struct
from collections.abc import Sequence

__all__ = ["AAC_FRAME_SAMPLES", "TIMESCALE", "fragment", "init_segment"]

TIMESCALE = 48_000  # ticks per second (= sample rate)
AAC_FRAME_SAMPLES = 1024  # samples per AAC-LC frame

_U32_MAX = 0xFFFF_FFFF  # largest value of a 32-bit box field
_U64_MAX = 0xFFFF_FFFF_FFFF_FFFF  # largest value of a 64-bit box field
_MAX_BOX_SIZE = _U32_MAX  # bytes; larger boxes would need a 64-bit largesize
_MAX_AAC_FRAME_BITS_PER_CHANNEL = 6144  # bits, decoder input buffer per channel (14496-3)

_IDENTITY_MATRIX = struct.pack(">9i", 0x0001_0000, 0, 0, 0, 0x0001_0000, 0, 0, 0, 0x4000_0000)
_LANGUAGE_UND = ((ord("u") - 0x60) << 10) | ((ord("n") - 0x60) << 5) | (ord("d") - 0x60)

# tfhd flags
_TFHD_DEFAULT_SAMPLE_DURATION = 0x00_0008
_TFHD_DEFAULT_SAMPLE_FLAGS = 0x00_0020
_TFHD_DEFAULT_BASE_IS_MOOF = 0x02_0000
# trun flags
_TRUN_DATA_OFFSET = 0x00_0001
_TRUN_SAMPLE_SIZE = 0x00_0200
# sample_flags: sample_depends_on = 2 (independent), is_non_sync_sample = 0 -> a sync sample
_SYNC_SAMPLE_FLAGS = 0x0200_0000

# MPEG-4 Systems (14496-1) descriptor tags and codes used by esds
_ES_DESCR_TAG = 0x03
_DECODER_CONFIG_DESCR_TAG = 0x04
_DECODER_SPECIFIC_INFO_TAG = 0x05
_SL_CONFIG_DESCR_TAG = 0x06
_OBJECT_TYPE_AAC = 0x40  # objectTypeIndication: Audio ISO/IEC 14496-3
_STREAM_TYPE_AUDIO = 0x05  # streamType: AudioStream
_SL_PREDEFINED_MP4 = 0x02  # SLConfigDescriptor predefined value for MP4 files


def _box(kind: bytes, *payloads: bytes) -> bytes:
    """Return an ISO-BMFF box: 32-bit size, 4-character type, then the payloads."""
    if len(kind) != 4:
        raise ValueError(f"box type must be 4 bytes, got {kind!r}")
    body = b"".join(payloads)
    size = 8 + len(body)
    if size > _MAX_BOX_SIZE:
        raise ValueError(f"{kind.decode('latin-1')} box of {size} bytes exceeds 32-bit size")
    return struct.pack(">I4s", size, kind) + body


def _full_box(kind: bytes, version: int, flags: int, *payloads: bytes) -> bytes:
    """Return a FullBox: a box whose payload starts with 8-bit version and 24-bit flags."""
    return _box(kind, struct.pack(">I", (version << 24) | flags), *payloads)


def _descriptor(tag: int, payload: bytes) -> bytes:
    """Return an MPEG-4 descriptor: tag byte, expandable (7 bits per byte) size, payload."""
    size = len(payload)
    if size >= 1 << 28:
        raise ValueError(f"descriptor payload of {size} bytes is too large")
    groups = [size & 0x7F]
    size >>= 7
    while size:
        groups.append(0x80 | (size & 0x7F))
        size >>= 7
    return bytes([tag, *reversed(groups)]) + payload


def _check_range(name: str, value: int, low: int, high: int) -> None:
    """Raise ValueError unless low <= value <= high."""
    if not low <= value <= high:
        raise ValueError(f"{name} must be in [{low}, {high}], got {value}")


def _esds(audio_specific_config: bytes, channels: int, bitrate: int) -> bytes:
    """Return the esds box that carries the AAC AudioSpecificConfig."""
    decoder_config = _descriptor(
        _DECODER_CONFIG_DESCR_TAG,
        struct.pack(
            ">BB3sII",
            _OBJECT_TYPE_AAC,
            (_STREAM_TYPE_AUDIO << 2) | 0x01,  # upStream = 0, reserved = 1
            ((_MAX_AAC_FRAME_BITS_PER_CHANNEL // 8) * channels).to_bytes(3, "big"),
            bitrate,  # maxBitrate, bit/s
            bitrate,  # avgBitrate, bit/s
        )
        + _descriptor(_DECODER_SPECIFIC_INFO_TAG, audio_specific_config),
    )
    es = _descriptor(
        _ES_DESCR_TAG,
        struct.pack(">HB", 0, 0)  # ES_ID 0 (as stored in MP4), no optional fields
        + decoder_config
        + _descriptor(_SL_CONFIG_DESCR_TAG, bytes([_SL_PREDEFINED_MP4])),
    )
    return _full_box(b"esds", 0, 0, es)


def _mp4a(audio_specific_config: bytes, sample_rate: int, channels: int, bitrate: int) -> bytes:
    """Return the mp4a AudioSampleEntry."""
    return _box(
        b"mp4a",
        bytes(6),  # reserved
        struct.pack(">H", 1),  # data_reference_index
        bytes(8),  # reserved
        struct.pack(">HHHH", channels, 16, 0, 0),  # channelcount, samplesize (bits), reserved
        struct.pack(">I", sample_rate << 16),  # samplerate, 16.16 fixed point
        _esds(audio_specific_config, channels, bitrate),
    )


def init_segment(
    audio_specific_config: bytes,
    *,
    sample_rate: int = 48_000,
    channels: int = 1,
    bitrate: int = 64_000,
    track_id: int = 1,
) -> bytes:
    """Build the CMAF init segment (``ftyp`` + ``moov``) for one AAC audio track.

    Promises: ``ftyp`` has major brand ``iso6`` and compatible brands iso6, cmfc,
    caac, mp41; ``moov`` holds ``mvhd``, one ``trak`` (``tkhd``, ``mdia`` with
    ``mdhd`` at timescale = ``sample_rate``, ``hdlr`` 'soun', ``minf`` with
    ``smhd``, ``dinf/dref`` and an ``stbl`` whose ``stsd`` is an ``mp4a`` entry
    carrying ``esds`` with the AudioSpecificConfig, plus empty ``stts``, ``stsc``,
    ``stsz`` and ``stco``) and ``mvex/trex``. All durations are 0 (fragmented).
    ``bitrate`` (bit/s) is declared as both average and maximum in ``esds``.

    Raises ValueError if the AudioSpecificConfig is shorter than 2 bytes or a
    numeric argument is out of range for its field.
    """
    if len(audio_specific_config) < 2:
        raise ValueError(
            f"audio_specific_config must be at least 2 bytes, got {len(audio_specific_config)}"
        )
    _check_range("sample_rate", sample_rate, 1, 0xFFFF)
    _check_range("channels", channels, 1, 0xFF)
    _check_range("bitrate", bitrate, 0, _U32_MAX)
    _check_range("track_id", track_id, 1, _U32_MAX - 1)

    ftyp = _box(b"ftyp", b"iso6", struct.pack(">I", 0), b"iso6", b"cmfc", b"caac", b"mp41")
    mvhd = _full_box(
        b"mvhd",
        0,
        0,
        struct.pack(">IIII", 0, 0, sample_rate, 0),  # creation, modification, timescale, duration
        struct.pack(">iH", 0x0001_0000, 0x0100),  # rate 1.0, volume 1.0
        bytes(10),  # reserved
        _IDENTITY_MATRIX,
        bytes(24),  # pre_defined
        struct.pack(">I", track_id + 1),  # next_track_ID
    )
    tkhd = _full_box(
        b"tkhd",
        0,
        0x000003,  # track_enabled | track_in_movie
        struct.pack(">IIIII", 0, 0, track_id, 0, 0),  # creation, modification, id, reserved, dur
        bytes(8),  # reserved
        struct.pack(">hhhH", 0, 1, 0x0100, 0),  # layer, alternate_group, volume 1.0, reserved
        _IDENTITY_MATRIX,
        struct.pack(">II", 0, 0),  # width, height
    )
    mdhd = _full_box(
        b"mdhd",
        0,
        0,
        struct.pack(">IIIIHH", 0, 0, sample_rate, 0, _LANGUAGE_UND, 0),
    )
    hdlr = _full_box(b"hdlr", 0, 0, struct.pack(">I4s", 0, b"soun"), bytes(12), b"SoundHandler\0")
    dinf = _box(b"dinf", _full_box(b"dref", 0, 0, struct.pack(">I", 1), _full_box(b"url ", 0, 1)))
    stbl = _box(
        b"stbl",
        _full_box(
            b"stsd",
            0,
            0,
            struct.pack(">I", 1),
            _mp4a(audio_specific_config, sample_rate, channels, bitrate),
        ),
        _full_box(b"stts", 0, 0, struct.pack(">I", 0)),
        _full_box(b"stsc", 0, 0, struct.pack(">I", 0)),
        _full_box(b"stsz", 0, 0, struct.pack(">II", 0, 0)),
        _full_box(b"stco", 0, 0, struct.pack(">I", 0)),
    )
    smhd = _full_box(b"smhd", 0, 0, struct.pack(">hH", 0, 0))  # balance, reserved
    minf = _box(b"minf", smhd, dinf, stbl)
    trak = _box(b"trak", tkhd, _box(b"mdia", mdhd, hdlr, minf))
    trex = _full_box(b"trex", 0, 0, struct.pack(">IIIII", track_id, 1, 0, 0, 0))
    moov = _box(b"moov", mvhd, trak, _box(b"mvex", trex))
    return ftyp + moov


def _moof(
    sequence_number: int,
    base_media_decode_time: int,
    sizes: Sequence[int],
    sample_duration: int,
    track_id: int,
    data_offset: int,
) -> bytes:
    """Return a moof box for one track run; ``data_offset`` is relative to the moof start."""
    tfhd = _full_box(
        b"tfhd",
        0,
        _TFHD_DEFAULT_BASE_IS_MOOF | _TFHD_DEFAULT_SAMPLE_DURATION | _TFHD_DEFAULT_SAMPLE_FLAGS,
        struct.pack(">III", track_id, sample_duration, _SYNC_SAMPLE_FLAGS),
    )
    tfdt = _full_box(b"tfdt", 1, 0, struct.pack(">Q", base_media_decode_time))
    trun = _full_box(
        b"trun",
        0,
        _TRUN_DATA_OFFSET | _TRUN_SAMPLE_SIZE,
        struct.pack(">Ii", len(sizes), data_offset),
        struct.pack(f">{len(sizes)}I", *sizes),
    )
    mfhd = _full_box(b"mfhd", 0, 0, struct.pack(">I", sequence_number))
    return _box(b"moof", mfhd, _box(b"traf", tfhd, tfdt, trun))


def fragment(
    sequence_number: int,
    base_media_decode_time: int,
    samples: Sequence[bytes],
    *,
    sample_duration: int = AAC_FRAME_SAMPLES,
    track_id: int = 1,
) -> bytes:
    """Build one CMAF chunk (``moof`` + ``mdat``) holding ``samples`` in order.

    Promises: ``mfhd`` carries ``sequence_number``; ``traf`` has ``tfhd`` with
    default-base-is-moof, the default sample duration (``sample_duration`` ticks)
    and sync-sample flags; ``tfdt`` version 1 carries ``base_media_decode_time``
    (ticks of the init segment's timescale); ``trun`` carries a data offset that
    points at the first byte of the ``mdat`` payload and one size per sample. The
    ``mdat`` holds the samples back to back. Concatenating fragments whose decode
    times are contiguous gives a valid CMAF segment.

    Raises ValueError if ``samples`` is empty or holds an empty sample, if the
    decode time is negative, or if a number does not fit its box field.
    """
    if not samples:
        raise ValueError("fragment needs at least one sample, got none")
    for i, sample in enumerate(samples):
        if not sample:
            raise ValueError(f"sample {i} is empty; AAC access units are never 0 bytes")
    if base_media_decode_time < 0:
        raise ValueError(f"base_media_decode_time must be >= 0, got {base_media_decode_time}")
    _check_range("base_media_decode_time", base_media_decode_time, 0, _U64_MAX)
    _check_range("sequence_number", sequence_number, 0, _U32_MAX)
    _check_range("sample_duration", sample_duration, 1, _U32_MAX)
    _check_range("track_id", track_id, 1, _U32_MAX)

    sizes = [len(s) for s in samples]
    mdat = _box(b"mdat", *samples)
    # The moof length does not depend on the offset value, so measure it once.
    moof_len = len(
        _moof(sequence_number, base_media_decode_time, sizes, sample_duration, track_id, 0)
    )
    data_offset = moof_len + 8  # skip the moof and the mdat header
    moof = _moof(
        sequence_number, base_media_decode_time, sizes, sample_duration, track_id, data_offset
    )
    return moof + mdat
