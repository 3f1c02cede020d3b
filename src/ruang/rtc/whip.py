"""WHIP (RFC 9725) publishing sessions: one aiortc peer connection per speaker on stage."""

from __future__ import annotations

import logging
import re
import secrets
from collections.abc import Awaitable, Callable

from aiortc import RTCConfiguration, RTCPeerConnection, RTCSessionDescription
from aiortc.rtcrtpsender import RTCRtpSender

from ruang.errors import bad_request
from ruang.media.buffer import InputBuffer
from ruang.rtc.ice import keep_loopback_candidates
from ruang.rtc.receive import PacketInbox, receive_into
from ruang.rtc.tracks import ReturnTrack

log = logging.getLogger(__name__)

SDP_MAX_BYTES = 64 * 1024
_AUDIO_SECTION = re.compile(r"^m=audio ", re.MULTILINE)


def audio_direction(sdp: str) -> str:
    """The direction of the offer's first audio section, validating the offer on the way.

    Raises ApiError 400 for text that is not SDP, SDP without audio, or audio without Opus."""
    if not sdp.startswith("v=0"):
        raise bad_request("malformed_sdp", "The body is not an SDP offer (it must start with v=0).")
    m = _AUDIO_SECTION.search(sdp)
    if m is None:
        raise bad_request("no_audio", "The SDP offer has no audio section (m=audio).")
    section = sdp[m.start() :]
    nxt = re.search(r"^m=", section[2:], re.MULTILINE)
    if nxt is not None:
        section = section[: nxt.start() + 2]
    if not re.search(r"^a=rtpmap:\d+ opus/48000", section, re.MULTILINE | re.IGNORECASE):
        raise bad_request("no_opus", "The audio section does not offer Opus/48000.")
    for d in ("sendrecv", "sendonly", "recvonly", "inactive"):
        if re.search(rf"^a={d}\s*$", section, re.MULTILINE):
            return d
    return "sendrecv"


def with_opus_dtx(answer: str) -> str:
    """The answer with `usedtx=1` on its Opus format (RFC 7587): a browser then sends almost
    nothing while its speaker is silent (one packet per 400 ms instead of 50 a second), which
    the server neither receives nor decodes; the gaps are underruns of the input buffer."""
    m = re.search(r"^a=rtpmap:(\d+) opus/48000", answer, re.MULTILINE | re.IGNORECASE)
    if m is None or "usedtx=" in answer:
        return answer
    pt = m.group(1)
    fmtp = re.search(rf"^a=fmtp:{pt} [^\r\n]*", answer, re.MULTILINE)
    if fmtp is not None:
        return answer[: fmtp.end()] + ";usedtx=1" + answer[fmtp.end() :]
    line_end = answer.index("\n", m.end()) + 1
    return answer[:line_end] + f"a=fmtp:{pt} usedtx=1\r\n" + answer[line_end:]


class PeerSession:
    """A speaker's WebRTC connection: their audio goes into `buffer`; with a sendrecv offer
    they hear the mix-minus on the same connection."""

    def __init__(
        self,
        space_id: str,
        speaker_id: str,
        on_closed: Callable[[PeerSession], Awaitable[None]],
    ) -> None:
        self.id = secrets.token_urlsafe(12)
        self.space_id = space_id
        self.speaker_id = speaker_id
        self.return_track: ReturnTrack | None = None
        self.answer = ""
        self._pc = RTCPeerConnection(RTCConfiguration(iceServers=[]))
        self._on_closed = on_closed
        self.inbox: PacketInbox | None = None
        self._closed = False

    @property
    def label(self) -> str:
        """For logs."""
        return f"space {self.space_id} speaker {self.speaker_id} session {self.id}"

    async def accept(self, offer: str, buffer: InputBuffer, loopback_only: bool) -> str:
        """Answer the offer; returns the SDP answer (ICE gathered, no trickle needed)."""
        direction = audio_direction(offer)
        if direction in ("recvonly", "inactive"):
            raise bad_request(
                "not_publishing", f"The audio section is {direction}; WHIP publishes."
            )
        if loopback_only:
            offer = keep_loopback_candidates(offer)
        pc = self._pc

        @pc.on("connectionstatechange")
        async def on_state() -> None:
            log.info("%s: connection %s", self.label, pc.connectionState)
            if pc.connectionState in ("failed", "closed"):
                await self.close()

        try:
            await pc.setRemoteDescription(RTCSessionDescription(offer, "offer"))
        except Exception as exc:  # aiortc raises ValueError and others on bad SDP
            raise bad_request("malformed_sdp", f"The SDP offer could not be used: {exc}") from exc
        opus = [c for c in RTCRtpSender.getCapabilities("audio").codecs if c.name == "opus"]
        audio_seen = False
        for t in pc.getTransceivers():
            if t.kind != "audio" or audio_seen:
                # Video (OBS sends some) and extra audio sections are declined: nothing is
                # received on them, so nothing piles up in a queue nobody reads.
                t.direction = "inactive"
                continue
            audio_seen = True
            # the speaker's packets go straight to the buffer, decoded at the mixer's tick
            self.inbox = receive_into(t.receiver, buffer)
            t.setCodecPreferences(opus)
            if direction == "sendrecv":
                self.return_track = ReturnTrack()
                t.sender.replaceTrack(self.return_track)
                t.direction = "sendrecv"
            else:
                t.direction = "recvonly"
        try:
            await pc.setLocalDescription(await pc.createAnswer())
        except Exception as exc:
            raise bad_request("sdp_negotiation_failed", f"No usable answer: {exc}") from exc
        return with_opus_dtx(pc.localDescription.sdp)

    async def close(self) -> None:
        """Hang up (idempotent) and tell the owner."""
        if self._closed:
            return
        self._closed = True
        if self.return_track is not None:
            self.return_track.stop()
        await self._pc.close()
        await self._on_closed(self)
