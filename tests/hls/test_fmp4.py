"""Tests for ruang.hls.fmp4: box structure, plus real decoders (PyAV, ffprobe, ffmpeg)."""

from __future__ import annotations

import json
import struct
import subprocess
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from fractions import Fraction
from pathlib import Path

import pytest

from ruang.hls import fmp4
from ruang.hls.playlist import Part, Segment, render_live, render_replay

SAMPLE_RATE = 48_000  # Hz
TONE_HZ = 440.0  # Hz
SECONDS = 3.0  # s of encoded audio
FRAMES_PER_PART = 24  # AAC frames per fragment
PARTS_PER_SEGMENT = 4
TONE_AMPLITUDE = 0.25  # linear full scale (-12 dBFS)
ASC = bytes.fromhex("118856e500")  # AAC-LC, 48 kHz, mono


# --------------------------------------------------------------------------- box reading


def boxes(data: bytes, start: int = 0, end: int | None = None) -> Iterator[tuple[bytes, int, int]]:
    """Yield (type, payload_start, box_end) for the boxes laid out in data[start:end]."""
    end = len(data) if end is None else end
    pos = start
    while pos < end:
        size, kind = struct.unpack_from(">I4s", data, pos)
        assert size >= 8, f"bad box size {size} at {pos}"
        assert pos + size <= end, f"{kind!r} overruns its parent"
        yield kind, pos + 8, pos + size
        pos += size
    assert pos == end


def find(data: bytes, path: str, start: int = 0, end: int | None = None) -> tuple[int, int]:
    """Return (payload_start, box_end) of the first box at a '/'-separated path."""
    head, _, rest = path.partition("/")
    for kind, p_start, p_end in boxes(data, start, end):
        if kind == head.encode():
            return find(data, rest, p_start, p_end) if rest else (p_start, p_end)
    raise AssertionError(f"box {path} not found")


def children(data: bytes, start: int, end: int) -> list[bytes]:
    return [kind for kind, _, _ in boxes(data, start, end)]


def test_init_segment_structure() -> None:
    init = fmp4.init_segment(ASC)
    assert [k for k, _, _ in boxes(init)] == [b"ftyp", b"moov"]
    s, e = find(init, "ftyp")
    assert init[s : s + 4] == b"iso6"
    brands = {init[i : i + 4] for i in range(s + 8, e, 4)}
    assert {b"iso6", b"cmfc", b"mp41"} <= brands
    assert children(init, *find(init, "moov")) == [b"mvhd", b"trak", b"mvex"]
    s, _ = find(init, "moov/trak/mdia/mdhd")
    _, _, _, timescale, duration = struct.unpack_from(">IIIII", init, s)
    assert (timescale, duration) == (fmp4.TIMESCALE, 0)
    s, _ = find(init, "moov/trak/mdia/hdlr")
    assert init[s + 8 : s + 12] == b"soun"
    stbl = find(init, "moov/trak/mdia/minf/stbl")
    assert children(init, *stbl) == [b"stsd", b"stts", b"stsc", b"stsz", b"stco"]
    s, e = find(init, "moov/trak/mdia/minf/stbl/stsd")
    mp4a_start = s + 8  # skip version/flags and entry_count
    assert init[mp4a_start + 4 : mp4a_start + 8] == b"mp4a"
    channels, bits = struct.unpack_from(">HH", init, mp4a_start + 8 + 16)
    rate = struct.unpack_from(">I", init, mp4a_start + 8 + 24)[0] >> 16
    assert (channels, bits, rate) == (1, 16, 48_000)
    esds = init[mp4a_start + 8 + 28 : e]
    assert esds[4:8] == b"esds"
    # objectTypeIndication 0x40, streamType 0x05 (audio), DecoderSpecificInfo = ASC
    assert bytes([0x04]) in esds and b"\x40\x15" in esds
    assert bytes([0x05, len(ASC)]) + ASC in esds
    assert struct.pack(">II", 64_000, 64_000) in esds
    s, _ = find(init, "moov/mvex/trex")
    assert struct.unpack_from(">I", init, s + 4)[0] == 1  # track_ID


def test_fragment_structure_and_offsets() -> None:
    samples = [bytes([i]) * (10 + i) for i in range(5)]
    frag = fmp4.fragment(7, 123_456_789_012, samples)
    assert [k for k, _, _ in boxes(frag)] == [b"moof", b"mdat"]
    assert children(frag, *find(frag, "moof")) == [b"mfhd", b"traf"]
    assert children(frag, *find(frag, "moof/traf")) == [b"tfhd", b"tfdt", b"trun"]
    s, _ = find(frag, "moof/mfhd")
    assert struct.unpack_from(">I", frag, s + 4)[0] == 7
    s, _ = find(frag, "moof/traf/tfhd")
    flags, track, duration, sample_flags = struct.unpack_from(">IIII", frag, s)
    assert flags & 0x020000 and track == 1 and duration == fmp4.AAC_FRAME_SAMPLES
    assert not sample_flags & 0x0001_0000  # sync sample
    s, _ = find(frag, "moof/traf/tfdt")
    version_flags, bmdt = struct.unpack_from(">IQ", frag, s)
    assert version_flags >> 24 == 1 and bmdt == 123_456_789_012
    s, _ = find(frag, "moof/traf/trun")
    _, count, offset = struct.unpack_from(">IIi", frag, s)
    sizes = struct.unpack_from(f">{count}I", frag, s + 12)
    assert list(sizes) == [len(x) for x in samples]
    # data_offset is relative to the moof start (default-base-is-moof) and hits the mdat payload
    mdat_payload, mdat_end = find(frag, "mdat")
    assert offset == mdat_payload
    assert frag[offset:mdat_end] == b"".join(samples)


def test_fragment_rejects_bad_input() -> None:
    with pytest.raises(ValueError, match="at least one sample"):
        fmp4.fragment(1, 0, [])
    with pytest.raises(ValueError, match="base_media_decode_time must be >= 0"):
        fmp4.fragment(1, -1024, [b"\x01"])
    with pytest.raises(ValueError, match="sample 1 is empty"):
        fmp4.fragment(1, 0, [b"\x01", b""])
    with pytest.raises(ValueError, match="sequence_number"):
        fmp4.fragment(2**32, 0, [b"\x01"])
    with pytest.raises(ValueError, match="audio_specific_config"):
        fmp4.init_segment(b"\x11")


# --------------------------------------------------------------------------- real decoders


def encode_sine() -> tuple[bytes, list[bytes]]:
    """Encode SECONDS of a TONE_HZ sine to AAC-LC; return (AudioSpecificConfig, packets)."""
    av = pytest.importorskip("av")
    np = pytest.importorskip("numpy")
    ctx = av.CodecContext.create("aac", "w")
    ctx.sample_rate = SAMPLE_RATE
    ctx.layout = "mono"
    ctx.format = "fltp"
    ctx.bit_rate = 64_000
    ctx.time_base = Fraction(1, SAMPLE_RATE)
    t = np.arange(int(SECONDS * SAMPLE_RATE)) / SAMPLE_RATE
    # FFmpeg's default ("twoloop") AAC coder clicks now and then on a loud (-6 dBFS) pure
    # tone at 64 kb/s, which costs ~12 dB of tone-to-rest ratio whatever the container;
    # -12 dBFS is a realistic level and encodes cleanly.
    signal = (TONE_AMPLITUDE * np.sin(2 * np.pi * TONE_HZ * t)).astype(np.float32)
    packets = []
    for start in range(0, len(signal), 960):
        frame = av.AudioFrame.from_ndarray(
            signal[None, start : start + 960], format="fltp", layout="mono"
        )
        frame.sample_rate = SAMPLE_RATE
        frame.time_base = Fraction(1, SAMPLE_RATE)
        frame.pts = start
        packets.extend(ctx.encode(frame))
    packets.extend(ctx.encode(None))
    assert ctx.extradata
    return bytes(ctx.extradata), [bytes(p) for p in packets]


def chunked(packets: list[bytes]) -> list[tuple[int, list[bytes]]]:
    """Split packets into (base decode time, FRAMES_PER_PART packets) groups from t = 0."""
    groups = []
    for i in range(0, len(packets), FRAMES_PER_PART):
        groups.append((i * fmp4.AAC_FRAME_SAMPLES, packets[i : i + FRAMES_PER_PART]))
    return groups


@pytest.fixture(scope="module")
def encoded() -> tuple[bytes, list[bytes]]:
    return encode_sine()


@pytest.fixture(scope="module")
def mp4_file(encoded: tuple[bytes, list[bytes]], tmp_path_factory: pytest.TempPathFactory) -> Path:
    asc, packets = encoded
    out = fmp4.init_segment(asc)
    for seq, (bmdt, group) in enumerate(chunked(packets), start=1):
        out += fmp4.fragment(seq, bmdt, group)
    path = tmp_path_factory.mktemp("fmp4") / "sine.mp4"
    path.write_bytes(out)
    return path


def test_encoder_gives_expected_asc(encoded: tuple[bytes, list[bytes]]) -> None:
    asc, packets = encoded
    assert asc == ASC
    assert len(packets) * fmp4.AAC_FRAME_SAMPLES >= SECONDS * SAMPLE_RATE


def test_ffprobe_reads_stream(mp4_file: Path, encoded: tuple[bytes, list[bytes]]) -> None:
    result = subprocess.run(
        ["ffprobe", "-v", "error", "-show_streams", "-show_format", "-of", "json", str(mp4_file)],
        capture_output=True,
        text=True,
        check=True,
    )
    assert result.stderr == ""
    info = json.loads(result.stdout)
    (stream,) = info["streams"]
    assert stream["codec_name"] == "aac"
    assert stream["profile"] == "LC"
    assert int(stream["sample_rate"]) == SAMPLE_RATE
    assert stream["channels"] == 1
    expected = len(encoded[1]) * fmp4.AAC_FRAME_SAMPLES / SAMPLE_RATE
    assert float(info["format"]["duration"]) == pytest.approx(expected, abs=0.03)


def test_ffprobe_packet_timing(mp4_file: Path, encoded: tuple[bytes, list[bytes]]) -> None:
    """Every packet comes back in order, keyframe, at its running-sample-count pts, same size."""
    result = subprocess.run(
        ["ffprobe", "-v", "error", "-show_packets", "-of", "json", str(mp4_file)],
        capture_output=True,
        text=True,
        check=True,
    )
    packets = json.loads(result.stdout)["packets"]
    assert [int(p["pts"]) for p in packets] == [
        i * fmp4.AAC_FRAME_SAMPLES for i in range(len(encoded[1]))
    ]
    assert [int(p["size"]) for p in packets] == [len(p) for p in encoded[1]]
    assert all(p["flags"].startswith("K") for p in packets)  # all sync samples


def test_pyav_decodes_tone(mp4_file: Path, encoded: tuple[bytes, list[bytes]]) -> None:
    av = pytest.importorskip("av")
    np = pytest.importorskip("numpy")
    with av.open(str(mp4_file)) as container:
        chunks = [frame.to_ndarray()[0] for frame in container.decode(audio=0)]
    pcm = np.concatenate(chunks).astype(np.float64)
    assert len(pcm) == len(encoded[1]) * fmp4.AAC_FRAME_SAMPLES
    steady = pcm[SAMPLE_RATE // 4 : -SAMPLE_RATE // 4]  # skip priming and the tail
    spectrum = np.abs(np.fft.rfft(steady * np.hanning(len(steady)))) ** 2
    freqs = np.fft.rfftfreq(len(steady), 1 / SAMPLE_RATE)
    near = np.abs(freqs - TONE_HZ) <= 10.0  # Hz around the tone
    assert freqs[np.argmax(spectrum)] == pytest.approx(TONE_HZ, abs=2.0)
    ratio_db = 10 * np.log10(spectrum[near].sum() / spectrum[~near].sum())
    assert ratio_db >= 20.0, f"tone only {ratio_db:.1f} dB above the rest"


def write_hls(
    directory: Path, asc: bytes, packets: list[bytes]
) -> tuple[list[Segment], dict[str, bytes]]:
    """Write init.mp4, part files and segment files; return the segments and all files."""
    files = {"init.mp4": fmp4.init_segment(asc)}
    start = datetime(2026, 1, 2, 3, 4, 5, 678_000, tzinfo=UTC)
    segments: list[Segment] = []
    for seq, (bmdt, group) in enumerate(chunked(packets)):
        msn, index = divmod(seq, PARTS_PER_SEGMENT)
        if index == 0:
            pdt = start + timedelta(seconds=bmdt / SAMPLE_RATE)
            segments.append(Segment(msn=msn, program_date_time=pdt, parts=[], complete=False))
        part = Part(msn=msn, index=index, duration=len(group) * 1024 / SAMPLE_RATE)
        segments[-1].parts.append(part)
        files[part.uri] = fmp4.fragment(seq + 1, bmdt, group)
    for seg in segments:
        seg.complete = True
        files[seg.uri] = b"".join(files[p.uri] for p in seg.parts)
    for name, data in files.items():
        (directory / name).write_bytes(data)
    return segments, files


def ffmpeg_decoded_seconds(playlist: Path) -> float:
    """Decode a playlist with ffmpeg to the null muxer; return the decoded duration."""
    result = subprocess.run(
        ["ffmpeg", "-nostdin", "-v", "error", "-i", str(playlist), "-progress", "pipe:1"]
        + ["-f", "null", "-"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    assert result.stderr.strip() == "", result.stderr
    times = [
        ln.split("=", 1)[1] for ln in result.stdout.splitlines() if ln.startswith("out_time_us=")
    ]
    return int(times[-1]) / 1e6


@pytest.mark.parametrize("kind", ["replay", "live_ended"])
def test_ffmpeg_plays_hls(encoded: tuple[bytes, list[bytes]], tmp_path: Path, kind: str) -> None:
    asc, packets = encoded
    segments, _ = write_hls(tmp_path, asc, packets)
    if kind == "replay":
        text = render_replay(segments, ended=True)
    else:
        text = render_live(segments, window=len(segments), ended=True)
    playlist = tmp_path / "playlist.m3u8"
    playlist.write_text(text)
    expected = len(packets) * fmp4.AAC_FRAME_SAMPLES / SAMPLE_RATE
    assert ffmpeg_decoded_seconds(playlist) == pytest.approx(expected, abs=0.03)
