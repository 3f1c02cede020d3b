"""Offer validation and loopback candidate filtering, before any WebRTC work is done."""

from __future__ import annotations

import pytest

from ruang.errors import ApiError
from ruang.rtc.ice import is_loopback_only, keep_loopback_candidates
from ruang.rtc.whip import audio_direction

BASE = "v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\n"


@pytest.mark.parametrize(
    ("extra", "direction"),
    [
        ("a=sendonly\r\n", "sendonly"),
        ("a=sendrecv\r\n", "sendrecv"),
        ("", "sendrecv"),
    ],
)
def test_direction(extra: str, direction: str) -> None:
    offer = BASE + "m=audio 9 UDP/TLS/RTP/SAVPF 111\r\na=rtpmap:111 opus/48000/2\r\n" + extra
    assert audio_direction(offer) == direction


def test_direction_is_read_from_the_audio_section() -> None:
    offer = (
        BASE + "m=audio 9 UDP/TLS/RTP/SAVPF 111\r\na=rtpmap:111 opus/48000/2\r\n"
        "a=sendonly\r\nm=video 9 UDP/TLS/RTP/SAVPF 96\r\na=recvonly\r\n"
    )
    assert audio_direction(offer) == "sendonly"


@pytest.mark.parametrize(
    ("offer", "code"),
    [
        ("", "malformed_sdp"),
        ("hello", "malformed_sdp"),
        (BASE, "no_audio"),
        (BASE + "m=audio 9 RTP/AVP 0\r\na=rtpmap:0 PCMU/8000\r\n", "no_opus"),
    ],
)
def test_refusals(offer: str, code: str) -> None:
    with pytest.raises(ApiError) as e:
        audio_direction(offer)
    assert e.value.status == 400 and e.value.code == code


def test_loopback_filter() -> None:
    sdp = (
        "v=0\r\na=candidate:1 1 udp 2113937151 127.0.0.1 5000 typ host\r\n"
        "a=candidate:2 1 udp 2113937151 192.0.2.2 5001 typ host\r\n"
        "a=candidate:3 1 udp 2113937151 abcd.local 5002 typ host\r\n"
    )
    out = keep_loopback_candidates(sdp)
    assert "127.0.0.1" in out and "192.0.2.2" not in out and ".local" not in out
    assert is_loopback_only(("127.0.0.1",)) and not is_loopback_only(("127.0.0.1", "10.0.0.1"))
    assert not is_loopback_only(())


def test_the_answer_asks_for_opus_dtx() -> None:
    from ruang.rtc.whip import with_opus_dtx

    bare = "v=0\r\nm=audio 9 UDP/TLS/RTP/SAVPF 111\r\na=rtpmap:111 opus/48000/2\r\na=sendrecv\r\n"
    assert "a=rtpmap:111 opus/48000/2\r\na=fmtp:111 usedtx=1\r\n" in with_opus_dtx(bare)
    fmtp = bare.replace("a=sendrecv", "a=fmtp:111 minptime=10;useinbandfec=1\r\na=sendrecv")
    assert "a=fmtp:111 minptime=10;useinbandfec=1;usedtx=1\r\n" in with_opus_dtx(fmtp)
    assert with_opus_dtx(with_opus_dtx(fmtp)) == with_opus_dtx(fmtp)
    no_opus = bare.replace("opus", "PCMU")
    assert with_opus_dtx(no_opus) == no_opus
