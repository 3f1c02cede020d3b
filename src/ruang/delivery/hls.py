"""LL-HLS delivery without a web framework: the hot path of every listener request.

`HlsService.handle` takes the parts of a request it needs and returns status, headers and
body, so any HTTP server can call it (Starlette routes today, a leaner server tomorrow).
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING

from ruang.config import Config
from ruang.delivery.files import SpaceFiles
from ruang.delivery.gate import Ask, Gate
from ruang.errors import ApiError, not_found, store_unavailable
from ruang.guard.network import network_of
from ruang.guard.shedding import Shedder
from ruang.guard.tickets import TicketError
from ruang.spaces.model import ID_PATTERN, Space, State

if TYPE_CHECKING:
    from ruang.delivery.remote import RemoteOrigin

IMMUTABLE = "public, max-age=31536000, immutable"
LIVE_PLAYLIST = "public, max-age=1"  # about one part
BLOCKING_PLAYLIST = "public, max-age=6"  # a blocking answer never changes; edges may keep it
# An ended space's replay (VOD playlist, segments, init) never changes: long-lived and public.
# Deletion is the one exception; the shipped edge keeps it at most a minute (deploy/nginx).
ENDED_PLAYLIST = IMMUTABLE
ERROR_CACHE = "public, max-age=1"
GONE_CACHE = "public, max-age=60"
PLAYLIST_TYPE = "application/vnd.apple.mpegurl"
_MEDIA_NAME = re.compile(r"^(?:init\.mp4|\d{1,9}(?:\.\d{1,2})?\.m4s)$")
_PART_NAME = re.compile(r"^(\d{1,9})\.(\d{1,2})\.m4s$")
NODE_PARAM = "ruang_node"  # marks a request another node makes for its listeners (not counted)
HLS_PARAMS = frozenset({"_HLS_msn", "_HLS_part", "_HLS_skip", NODE_PARAM})  # any other: refused
_CORS = [("Access-Control-Allow-Origin", "*"), ("Access-Control-Expose-Headers", "Location")]


def gone_error() -> ApiError:
    """410 for anything recorded of a space whose host deleted the recording."""
    return ApiError(
        410,
        "recording_deleted",
        "The host deleted this space's recording: its replay, download and clips are gone.",
    )


def encode_headers(headers: list[tuple[str, str]]) -> bytes:
    """Header lines as sent on the wire (each ending in CRLF)."""
    return b"".join(f"{k}: {v}\r\n".encode("latin-1") for k, v in headers)


@dataclass(slots=True)
class HlsResponse:
    """What to send back; `headers` are pre-encoded lines (the hot path reuses them)."""

    status: int
    body: bytes
    headers: bytes = b""
    code: str = ""  # the error code of a refusal (for the traffic recorder)
    listener: str = ""  # the listener a join admitted (for the traffic recorder)

    def header_dict(self) -> dict[str, str]:
        """The headers as a dict (for frameworks)."""
        lines = self.headers.decode("latin-1").split("\r\n")
        return dict(line.split(": ", 1) for line in lines if line)


_OK_HEADERS: dict[tuple[str, str], bytes] = {}


def error_answer(err: ApiError, cache: str = ERROR_CACHE) -> HlsResponse:
    """A JSON refusal, pre-encoded."""
    headers = [("Content-Type", "application/json"), ("Cache-Control", cache), *_CORS]
    headers += list(err.headers.items())
    body = json.dumps(err.body()).encode()
    return HlsResponse(err.status, body, encode_headers(headers), err.code)


_TICKET_REFUSALS: dict[tuple[str, str], HlsResponse] = {}
GONE = error_answer(gone_error(), GONE_CACHE)


def ticket_refusal(exc: TicketError) -> HlsResponse:
    """401 (missing, expired: join again) or 403 (forged, malformed), built once per kind."""
    r = _TICKET_REFUSALS.get((exc.code, exc.message))
    if r is None:
        status = 401 if exc.code in ("missing", "expired") else 403
        err = ApiError(status, f"ticket_{exc.code}", exc.message)
        r = _TICKET_REFUSALS[(exc.code, exc.message)] = error_answer(err, "no-store")
    return r


def _ok(body: bytes, ctype: str, cache: str) -> HlsResponse:
    headers = _OK_HEADERS.get((ctype, cache))
    if headers is None:
        headers = _OK_HEADERS[(ctype, cache)] = encode_headers(
            [("Content-Type", ctype), ("Cache-Control", cache), *_CORS]
        )
    return HlsResponse(200, body, headers)


def _redirect(location: str) -> HlsResponse:
    return HlsResponse(
        302,
        b"",
        encode_headers([("Location", location), ("Cache-Control", "no-store"), *_CORS]),
    )


def _int_param(query: Mapping[str, str], name: str) -> int | None:
    raw = query.get(name)
    if raw is None:
        return None
    if not raw.isdigit() or len(raw) > 9:
        raise ApiError(400, "bad_query", f"{name}={raw!r} is not a non-negative integer.")
    return int(raw)


class HlsService:
    """Serves live and replay playlists, parts and segments of every space on this node."""

    def __init__(
        self,
        config: Config,
        files: SpaceFiles,
        gate: Gate,
        find_space: Callable[[str], Space | None],
        shedder: Shedder,
        remote: RemoteOrigin | None = None,
    ) -> None:
        self.remote = remote  # set when other nodes run spaces too (Redis)
        self.shedder = shedder
        self.config = config
        self.files = files
        self.gate = gate
        self.find_space = find_space

    def handle_now(
        self, space_id: str, ticket: str | None, name: str, query: Mapping[str, str]
    ) -> HlsResponse | None:
        """The answer when it is ready without waiting or refusing — what nearly every
        listener request is — else None (then `handle` decides, and may wait)."""
        if not ID_PATTERN.match(space_id):
            return None
        if ticket is None:
            return self._public_now(space_id, name)
        now = time.time()
        try:
            held = self.gate.signer.verify_cached(ticket, space_id, now)
        except TicketError as exc:  # refused here, without a task: floods of bad tickets are cheap
            return ticket_refusal(exc)
        space = self._held_space(space_id)  # cached: a dict lookup nearly always
        if space is not None and space.recording_deleted:
            return GONE
        if name == "live.m3u8":
            try:
                msn, part = _int_param(query, "_HLS_msn"), _int_param(query, "_HLS_part")
            except ApiError:
                return None
            pl = self.files.live(space_id)
            if not pl.text or (msn is None and part is not None):
                return None
            if msn is None:
                ready, cache = pl.next_part is None or pl.next_part[0] > 0, LIVE_PLAYLIST
            else:
                ready, cache = pl.has(msn, part), BLOCKING_PLAYLIST
            if not ready:
                return None
            if NODE_PARAM not in query:
                self.gate.admission.seen(space_id, held.listener, now)
            return _ok(pl.text, PLAYLIST_TYPE, cache)
        if name != "replay.m3u8" and _MEDIA_NAME.match(name):
            data = self.remote.cached(space_id, name) if self.remote is not None else None
            if data is None:
                data = self.files.media(space_id, name)
            if data is not None:
                return _ok(data, "audio/mp4", IMMUTABLE)
        return None

    def _held_space(self, space_id: str) -> Space | None:
        """The space a valid ticket names, for its deletion flag; None when the shared store
        cannot say (Redis down): a listener already admitted keeps listening, and a deletion
        is seen again once the store answers."""
        try:
            return self.find_space(space_id)
        except Exception as exc:
            if store_unavailable(exc) is None:
                raise
            return None

    def _public_now(self, space_id: str, name: str) -> HlsResponse | None:
        """An ended space's replay without a ticket, from this node's disk or memory (the
        VOD every client may fetch as fast as it likes), else None."""
        space = self.find_space(space_id)
        if space is None or space.state is not State.ENDED:
            return None
        if space.recording_deleted:
            return GONE
        try:
            if self.remote is not None and self.remote.owner(space_id) is not None:
                return None  # another node has its files
        except ApiError:
            return None  # the shared store is unreachable: `handle` answers
        if name == "replay.m3u8":
            data = self.files.final_replay(space_id)
            return None if data is None else _ok(data, PLAYLIST_TYPE, ENDED_PLAYLIST)
        if _MEDIA_NAME.match(name):
            data = self.files.media(space_id, name)
            return None if data is None else _ok(data, "audio/mp4", IMMUTABLE)
        return None

    async def handle(
        self, space_id: str, ticket: str | None, name: str, query: Mapping[str, str], client: str
    ) -> HlsResponse:
        """Answer GET /hls/{space}[/t/{ticket}]/{name}?{query}."""
        try:
            if not ID_PATTERN.match(space_id):
                raise not_found(f"Space {space_id!r}")
            if ticket is None:
                return await self._bare(space_id, name, query, network_of(client))
            now = time.time()
            try:
                held = self.gate.signer.verify_cached(ticket, space_id, now)
            except TicketError as exc:
                return ticket_refusal(exc)
            space = self._held_space(space_id)
            if space is not None and space.recording_deleted:
                return GONE
            if space is not None and space.state is State.ENDED and name == "replay.m3u8":
                # the ended replay is public: the same URL for everyone (and every cache),
                # its segments fetched without a ticket, so without a player's pace
                return _redirect(f"/hls/{space_id}/replay.m3u8")
            node = self.remote.owner(space_id) if self.remote is not None else None
            if node is not None:
                return await self._from_node(node, space_id, ticket, name, query, held.listener)
            counted = NODE_PARAM not in query  # the other node counts its own listeners
            if name == "live.m3u8":
                if counted:
                    self.gate.admission.seen(space_id, held.listener, now)
                return await self._live(space_id, query)
            if name == "replay.m3u8":
                if counted:
                    self.gate.admission.seen(space_id, held.listener, now)
                return self._replay(space_id)
            if not _MEDIA_NAME.match(name):
                raise not_found(f"{name!r}")
            return await self._media(space_id, name)
        except ApiError as err:
            return error_answer(err)

    async def _from_node(
        self,
        node: str,
        space_id: str,
        ticket: str | None,
        name: str,
        query: Mapping[str, str],
        listener: str | None,
    ) -> HlsResponse:
        """A space another node runs: that node's answer, through this one."""
        assert self.remote is not None
        playlist = name in ("live.m3u8", "replay.m3u8")
        if not playlist and not _MEDIA_NAME.match(name):
            raise not_found(f"{name!r}")
        if playlist and listener is not None:
            self.gate.admission.seen(space_id, listener, time.time())
        return await self.remote.fetch(node, space_id, ticket, name, query, not playlist)

    async def _bare(
        self, space_id: str, name: str, query: Mapping[str, str], network: str
    ) -> HlsResponse:
        """A playlist URL without a ticket (a replay_url, a player given a plain link): join on
        the caller's behalf and redirect to the ticketed URL. Media needs a ticket."""
        space = self.find_space(space_id)
        if space is None:
            raise not_found(f"Space {space_id!r}")
        if space.recording_deleted:
            return GONE
        if space.state is State.ENDED and name != "live.m3u8":
            # the replay of an ended space is public VOD: no ticket, no join, no pace
            node = self.remote.owner(space_id) if self.remote is not None else None
            if node is not None:
                return await self._from_node(node, space_id, None, name, query, None)
            if name == "replay.m3u8":
                return self._replay(space_id, ended=True)
            if not _MEDIA_NAME.match(name):
                raise not_found(f"{name!r}")
            return await self._media(space_id, name)
        if space.state is State.SCHEDULED and name != "replay.m3u8":
            node = self.remote.owner(space_id) if self.remote is not None else None
            if node is not None:
                return await self._from_node(node, space_id, None, name, query, None)
            # before the start it is silence: public, so players and caches can warm up
            return (
                await self._live(space_id, query)
                if name == "live.m3u8"
                else (
                    await self._media(space_id, name)
                    if _MEDIA_NAME.match(name)
                    else error_answer(not_found(f"{name!r}"))
                )
            )
        if name not in ("live.m3u8", "replay.m3u8"):
            raise ApiError(401, "ticket_missing", "Media needs a listener ticket: join first.")
        ask = Ask(space_id, space.state, network, time.time(), crowded=self.shedder.joins_wait)
        decision = await self.gate.admit(ask)
        if not isinstance(decision, str):
            wait = str(decision.retry_after_s)
            raise ApiError(
                503,
                "waiting_room",
                f"The space is full right now; you are number {decision.position} "
                "in line. Try again soon, or use the listener page to keep your place.",
                {"Retry-After": wait},
            )
        qs = "&".join(f"{k}={v}" for k, v in query.items() if k.startswith("_HLS_"))
        return _redirect(f"/hls/{space_id}/t/{decision}/{name}" + (f"?{qs}" if qs else ""))

    def _replay(self, space_id: str, ended: bool = False) -> HlsResponse:
        data = self.files.final_replay(space_id) if ended else self.files.replay(space_id)
        if data is None:
            raise not_found(f"The replay of space {space_id!r}")
        final = b"#EXT-X-ENDLIST" in data
        return _ok(data, PLAYLIST_TYPE, ENDED_PLAYLIST if final else LIVE_PLAYLIST)

    async def _live(self, space_id: str, query: Mapping[str, str]) -> HlsResponse:
        msn, part = _int_param(query, "_HLS_msn"), _int_param(query, "_HLS_part")
        pl = self.files.live(space_id)
        if not pl.text:
            raise not_found(f"A live playlist for space {space_id!r}")
        timeout = self.config.blocking_timeout_s
        if msn is None:
            if part is not None:
                raise ApiError(400, "bad_query", "_HLS_part needs _HLS_msn.")
            if pl.next_part is not None and pl.next_part[0] == 0:
                # Not one whole segment yet (the space has just started): hold the request
                # until there is, so that players that do not know parts (ffmpeg, VLC) can start.
                await self.files.wait_for(pl, 0, None, timeout)
            return _ok(pl.text, PLAYLIST_TYPE, LIVE_PLAYLIST)
        if pl.next_part is not None and msn > pl.next_part[0] + 2:
            raise ApiError(
                400,
                "too_far_ahead",
                f"_HLS_msn={msn} is more than two segments beyond the live edge.",
            )
        if not await self.files.wait_for(pl, msn, part, timeout):
            raise ApiError(
                503, "part_late", "The requested part did not arrive in time.", {"Retry-After": "1"}
            )
        return _ok(pl.text, PLAYLIST_TYPE, BLOCKING_PLAYLIST)

    async def _media(self, space_id: str, name: str) -> HlsResponse:
        data = self.files.media(space_id, name)
        if data is None:
            m = _PART_NAME.match(name)
            pl = self.files.live(space_id)
            if m and pl.next_part is not None:
                # The preload hint names the next part: hold the request until it exists.
                wanted = (int(m.group(1)), int(m.group(2)))
                if wanted <= pl.next_part and await self.files.wait_for(
                    pl, wanted[0], wanted[1], self.config.blocking_timeout_s
                ):
                    data = self.files.media(space_id, name)
            if data is None:
                raise not_found(f"{name!r} of space {space_id!r}")
        return _ok(data, "audio/mp4", IMMUTABLE)
