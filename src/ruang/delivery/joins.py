"""`POST /api/spaces/{id}/join`: the one dynamic request every listener makes, answered
straight from the delivery worker's protocol when it can be (no framework on the path).

A join is a space lookup, an admission decision and, when admitted, an HMAC: a few tens of
microseconds. The answer is a ticketed `listen_url`, or a place in the waiting room (202 with
`Retry-After`). With a shared (Redis) line the decision is a round trip, so such joins take
the awaited path; the rules are the same.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from typing import Any

import redis

from ruang.config import Config
from ruang.delivery.gate import Ask, Gate
from ruang.delivery.guard import Guard
from ruang.delivery.hls import HlsResponse, encode_headers, error_answer, gone_error
from ruang.errors import ApiError, not_found, store_unavailable
from ruang.guard.admission import Waiting
from ruang.guard.network import network_of
from ruang.guard.pow import REQUIRED
from ruang.guard.shedding import Shedder
from ruang.guard.tickets import TicketError
from ruang.spaces.model import ID_PATTERN, Space, State
from ruang.web.common import json_object, link_base

_HEADERS = [
    ("Content-Type", "application/json"),
    ("Cache-Control", "no-store"),
    ("Access-Control-Allow-Origin", "*"),
    ("Access-Control-Expose-Headers", "Location, Retry-After, Link"),
]
_ADMITTED = encode_headers(_HEADERS)
log = logging.getLogger(__name__)
DRAIN_RETRY_AFTER_S = 2  # a join refused while the node stops: come back after this, seconds
INTERNAL = error_answer(ApiError(500, "internal", "The server hit an unexpected error."))


def _puzzle(code: str, challenge: dict[str, Any]) -> HlsResponse:
    message = (
        "This server is busy: solve the proof-of-work in `pow` and join again with "
        '{"pow": {"challenge": …, "nonce": …}} (docs/GUARD.md).'
        if code == REQUIRED
        else "That proof-of-work was wrong, expired or already used: solve this new one."
    )
    body = {"error": code, "message": message, "pow": challenge}
    return HlsResponse(428, json.dumps(body).encode(), _ADMITTED, code)


@dataclass(frozen=True, slots=True)
class _Join:
    """A join as read: its space, body, and who asks."""

    space: Space
    data: dict[str, Any]
    known: bool  # in line, or renewing a valid ticket: not a newcomer
    budget: str  # the per-source budget it is charged to: "join" or "poll"
    network: str
    now: float
    base: str  # the links' prefix, JSON-quoted without its closing quote: '"http://…'


def check_fields(data: dict[str, Any]) -> None:
    """Refuse a join whose fields have the wrong types (422), rather than ignore them."""
    for name in ("ticket", "queue"):
        if name in data and not isinstance(data[name], str):
            raise ApiError(422, "invalid_field", f"{name} must be a string.")
    pow = data.get("pow")
    if pow is not None and not (
        isinstance(pow, dict)
        and all(isinstance(pow.get(k, ""), str) for k in ("challenge", "nonce"))
    ):
        raise ApiError(422, "invalid_field", "pow must be {challenge, nonce}, both strings.")


class JoinService:
    """Decides joins for the spaces this node knows."""

    def __init__(
        self,
        config: Config,
        gate: Gate,
        find_space: Callable[[str], Space | None],
        shedder: Shedder,
        guard: Guard,
    ) -> None:
        self.config = config
        self.gate = gate
        self.find_space = find_space
        self.shedder = shedder
        self.guard = guard
        self._bases: dict[str, str] = {}  # link prefix -> JSON-quoted, without the closing quote
        self.draining = False  # the node is stopping: new joins are refused, listening goes on

    def handle_now(
        self,
        space_id: str,
        body: bytes,
        content_type: str | None,
        client: str,
        host: bytes | str | None = None,
        later: Callable[[HlsResponse], None] | None = None,
    ) -> HlsResponse | bool:
        """The answer at once; or True when the decision is on its way from Redis (a shared
        line, shared budgets) and `later` will be called with the answer, exactly once, from
        the event loop; or False when only the awaited `handle` can answer (a shared budget
        checked before a puzzle, then the line: two round trips)."""
        shared = self.gate.admission.shared or self.guard.shares("join")
        if shared and later is None:
            return False
        try:
            r = self._read(space_id, body, content_type, client, host)
        except Exception as exc:  # the space from Redis
            return self._failed(space_id, exc)
        if isinstance(r, HlsResponse):
            return r
        if not shared:
            decided = self._decide(r, self.guard.limit(r.budget, client, r.network, r.now))
            assert isinstance(decided, HlsResponse)  # the line is this node's: decided at once
            return decided
        assert later is not None
        try:
            sent = self._send(r, client)
        except Exception as exc:
            return self._failed(space_id, exc)
        if sent is None:
            return False
        if isinstance(sent, HlsResponse):
            return sent
        ask, limited, pending = sent
        pending.add_done_callback(partial(self._settle, r, ask, limited, later))
        return True

    async def handle(
        self,
        space_id: str,
        body: bytes,
        content_type: str | None,
        client: str,
        host: bytes | str | None = None,
    ) -> HlsResponse:
        """The answer to one join; its links follow `host` (the request's Host header) unless
        a public URL is configured (ruang.web.common.link_base)."""
        try:
            r = self._read(space_id, body, content_type, client, host)
            if isinstance(r, HlsResponse):
                return r
            sent = self._send(r, client) if self.gate.admission.shared else None
            if isinstance(sent, HlsResponse):
                return sent
            if sent is not None:
                ask, limited, pending = sent
                return self._settled(r, ask, limited, await pending)
            limited_by = await self.guard.limit_async(r.budget, client, r.network, r.now)
            decided = self._decide(r, limited_by)
            if isinstance(decided, HlsResponse):
                return decided
            decision = await self.gate.admit(self._ask(r))
        except Exception as exc:
            return self._failed(space_id, exc)
        return self._answer(r, decision)

    def _send(
        self, r: _Join, client: str
    ) -> HlsResponse | tuple[Ask, bool, asyncio.Future[str]] | None:
        """A join against the shared line, up to its round trip: the answer if it needs none
        (a refusal, a renewal), else what it asked and the batch's pending answer (`limited`:
        the shared join budget is checked in the same entry); None when its budget must be
        checked in Redis first (under proof-of-work: the puzzle is verified between)."""
        if self._one_trip(r):
            limit = self.guard.shared_request(r.budget, client, r.network, r.now)
        elif self.guard.shares(r.budget):
            return None
        else:  # someone in line or renewing: the poll budget is the node's
            decided = self._decide(r, self.guard.limit(r.budget, client, r.network, r.now))
            if isinstance(decided, HlsResponse):
                return decided
            limit = None
        ask = self._ask(r)
        pending = self.gate.admit_shared(ask, limit)
        if isinstance(pending, str):  # a renewal: no line to ask
            return self._answer(r, pending)
        return ask, limit is not None, pending

    def _settle(
        self,
        r: _Join,
        ask: Ask,
        limited: bool,
        later: Callable[[HlsResponse], None],
        pending: asyncio.Future[str],
    ) -> None:
        try:
            if pending.cancelled():  # the batch never ran: as if the shared state were away
                raise redis.ConnectionError("the join batch was cancelled")
            answer = self._settled(r, ask, limited, pending.result())
        except Exception as exc:
            answer = self._failed(r.space.id, exc)
        later(answer)

    def _settled(self, r: _Join, ask: Ask, limited: bool, line: str) -> HlsResponse:
        """The answer to a join once the batch decided it (`line`: its part of the reply)."""
        decision = self.gate.shared_answer(ask, line)
        if limited:  # its join budget was checked in the same entry
            wait = decision if isinstance(decision, float) else 0.0
            refused = self.guard.shared_result(r.budget, wait)
            if refused is not None:
                return refused
            self.guard.joins_passed += 1
        assert not isinstance(decision, float)
        return self._answer(r, decision)

    def _failed(self, space_id: str, exc: Exception) -> HlsResponse:
        """503 when the shared state is unreachable; anything else is a bug, logged (500)."""
        unavailable = store_unavailable(exc)
        if unavailable is None:
            log.error("join %s failed", space_id, exc_info=exc)
            return INTERNAL
        log.warning("join %s: shared state unreachable: %s", space_id, exc)
        return error_answer(unavailable, "no-store")

    def _read(
        self,
        space_id: str,
        body: bytes,
        content_type: str | None,
        client: str,
        host: bytes | str | None,
    ) -> HlsResponse | _Join:
        """The join as asked, or a 4xx. Someone in line or renewing a valid ticket is
        charged to the (wider) poll budget, a newcomer to the join budget."""
        now = time.time()
        limit = self.config.max_body_bytes
        try:
            if self.draining:
                raise ApiError(
                    503,
                    "draining",
                    "This server is restarting; join again in a moment.",
                    {"Retry-After": str(DRAIN_RETRY_AFTER_S)},
                )
            if len(body) > limit:
                raise ApiError(413, "too_large", f"The body is over {limit} bytes.")
            space = self.find_space(space_id) if ID_PATTERN.match(space_id) else None
            if space is None:
                raise not_found(f"Space {space_id!r}")
            if space.recording_deleted:
                raise gone_error()
            data = json_object(body, content_type)
            check_fields(data)
        except ApiError as err:
            return error_answer(err, "no-store")
        known = self._known(space.id, data, now)
        base = link_base(self.config, host)
        quoted = self._bases.get(base)
        if quoted is None:
            if len(self._bases) > 1024:  # bounded: Host headers are the client's to choose
                self._bases.clear()
            quoted = self._bases[base] = json.dumps(base)[:-1]
        budget = "poll" if known else "join"
        return _Join(space, data, known, budget, network_of(client), now, quoted)

    def _one_trip(self, r: _Join) -> bool:
        """A newcomer with no puzzle to check, whose budget and line are both in Redis: one
        script checks the budget and takes the place (a puzzle, when asked for, is verified
        between the two, so then they stay two round trips)."""
        return (
            self.gate.limits_in_line()
            and self.guard.shares(r.budget)
            and not r.known  # a renewal keeps its listener id; a place in line: its poll budget
            and self.guard.pow.difficulty == 0
        )

    def _decide(self, r: _Join, limited: HlsResponse | None) -> HlsResponse | _Join:
        """The answer, unless only the shared line can give it (then `r` back). Under
        pressure a newcomer must bring a solved puzzle (428 with a challenge if not)."""
        if limited is not None:
            return limited
        pow = self.guard.pow
        if pow.difficulty > 0 and not r.known:
            code = pow.verify(r.space.id, r.data.get("pow"), r.now)
            if code is not None:
                return _puzzle(code, pow.challenge(r.space.id, r.now))
        self.guard.joins_passed += 1
        decision = self.gate.admit_now(self._ask(r))
        return r if decision is None else self._answer(r, decision)

    def _ask(self, r: _Join) -> Ask:
        return Ask(
            r.space.id,
            r.space.state,
            r.network,
            r.now,
            r.data.get("ticket"),
            r.data.get("queue"),
            self.shedder.joins_wait,
        )

    def _known(self, space_id: str, data: dict[str, Any], now: float) -> bool:
        if self.gate.admission.holds_place(space_id, data.get("queue")):
            return True
        renew = data.get("ticket")
        if not isinstance(renew, str):
            return False
        try:
            self.gate.signer.verify(renew, space_id, now)
        except TicketError:
            return False
        return True

    def _answer(self, r: _Join, decision: str | Waiting) -> HlsResponse:
        space = r.space
        if isinstance(decision, Waiting):
            waiting = {
                "space_id": space.id,
                "state": space.state.value,
                "position": decision.position,
                "estimated_wait_s": decision.estimated_wait_s,
                "queue": decision.token,
                "retry_after": decision.retry_after_s,
            }
            headers = encode_headers([*_HEADERS, ("Retry-After", str(decision.retry_after_s))])
            return HlsResponse(202, json.dumps(waiting).encode(), headers)
        # formatted, not json.dumps'd: every value is URL-safe text or a number, except the
        # configured base URL, which is JSON-encoded once
        base = f"{r.base}/hls/{space.id}/t/{decision}"
        if space.state is State.ENDED:  # the replay is public VOD: the same URL for everyone
            listen = replay = f"{r.base}/hls/{space.id}/replay.m3u8"
        else:
            listen, replay = f"{base}/live.m3u8", f"{base}/replay.m3u8"
        ttl = self.gate.signer.ttl_s
        body = (
            f'{{"space_id": "{space.id}", "state": "{space.state.value}", '
            f'"listen_url": {listen}", "replay_url": {replay}", '
            f'"ticket": "{decision}", "expires_in_s": {ttl}, "renew_after_s": {ttl // 2}}}'
        )
        listener = decision.split(".", 1)[0]
        return HlsResponse(200, body.encode(), _ADMITTED, listener=listener)
