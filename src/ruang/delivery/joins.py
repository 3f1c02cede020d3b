"""`POST /api/spaces/{id}/join`: the one dynamic request every listener makes, answered
straight from the delivery worker's protocol when it can be (no framework on the path).

A join is a space lookup, an admission decision and, when admitted, an HMAC: a few tens of
microseconds. The answer is a ticketed `listen_url`, or a place in the waiting room (202 with
`Retry-After`). With a shared (Redis) line the decision is a round trip, so such joins take
the awaited path; the rules are the same.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from ruang.config import Config
from ruang.delivery.gate import Gate
from ruang.delivery.guard import Guard
from ruang.delivery.hls import HlsResponse, encode_headers, error_answer
from ruang.errors import ApiError, not_found, store_unavailable
from ruang.guard.admission import Waiting
from ruang.guard.network import network_of
from ruang.guard.pow import REQUIRED
from ruang.guard.shedding import Shedder
from ruang.guard.tickets import TicketError
from ruang.spaces.model import ID_PATTERN, Space, State
from ruang.web.common import json_object

_HEADERS = [
    ("Content-Type", "application/json"),
    ("Cache-Control", "no-store"),
    ("Access-Control-Allow-Origin", "*"),
    ("Access-Control-Expose-Headers", "Location, Retry-After, Link"),
]
_ADMITTED = encode_headers(_HEADERS)
log = logging.getLogger(__name__)


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
class _Pending:
    """A join that passed the guard, waiting for the shared line's decision."""

    space: Space
    network: str
    now: float
    renew: object  # a ticket to renew, if the body held one
    queue: object  # a place in line, if the body held one
    crowded: bool  # the node is under pressure: newcomers wait even with capacity left


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
        self._base = json.dumps(config.base_url)[:-1]  # '"http://…' without the closing quote

    def handle_now(
        self, space_id: str, body: bytes, content_type: str | None, client: str
    ) -> HlsResponse | None:
        """The answer, unless the decision needs a round trip (shared line): then None and
        `handle` is awaited instead."""
        if self.gate.admission.shared:
            return None
        r = self._begin(space_id, body, content_type, client)
        assert isinstance(r, HlsResponse)  # the line is this node's: decided at once
        return r

    async def handle(
        self, space_id: str, body: bytes, content_type: str | None, client: str
    ) -> HlsResponse:
        """The answer to one join."""
        try:
            r = self._begin(space_id, body, content_type, client)
            if isinstance(r, HlsResponse):
                return r
            decision = await self.gate.admit(
                r.space.id,
                r.space.state,
                r.network,
                r.now,
                renew=r.renew,
                queue=r.queue,
                crowded=r.crowded,
            )
        except Exception as exc:
            unavailable = store_unavailable(exc)
            if unavailable is None:
                raise
            log.warning("join %s: shared state unreachable: %s", space_id, exc)
            return error_answer(unavailable, "no-store")
        return self._answer(r.space, decision)

    def _begin(
        self, space_id: str, body: bytes, content_type: str | None, client: str
    ) -> HlsResponse | _Pending:
        """Read the join, apply the guard, and decide it if the line is this node's; a
        pending decision if it is shared."""
        now = time.time()
        try:
            space, data = self._read(space_id, body, content_type)
            refusal = self._guarded(space.id, data, client, now)
        except ApiError as err:
            return error_answer(err, "no-store")
        if refusal is not None:
            return refusal
        r = _Pending(
            space, network_of(client), now, data.get("ticket"), data.get("queue"),
            self.shedder.joins_wait,
        )  # fmt: skip
        decision = self.gate.admit_now(
            space.id, space.state, r.network, now, renew=r.renew, queue=r.queue, crowded=r.crowded
        )
        return r if decision is None else self._answer(space, decision)

    def _read(
        self, space_id: str, body: bytes, content_type: str | None
    ) -> tuple[Space, dict[str, Any]]:
        limit = self.config.max_body_bytes
        if len(body) > limit:
            raise ApiError(413, "too_large", f"The body is over {limit} bytes.")
        space = self.find_space(space_id) if ID_PATTERN.match(space_id) else None
        if space is None:
            raise not_found(f"Space {space_id!r}")
        return space, json_object(body, content_type)

    def _guarded(
        self, space_id: str, data: dict[str, Any], client: str, now: float
    ) -> HlsResponse | None:
        """A 429 or a 428, or None to go on. A newcomer spends its source's join budget and,
        under pressure, must bring a solved puzzle (a 428 with a challenge if it does not);
        someone in line or renewing a valid ticket spends the wider poll budget and is not
        asked for work again."""
        known = self._known(space_id, data, now)
        refusal = self.guard.limit("poll" if known else "join", client, network_of(client), now)
        if refusal is not None:
            return refusal
        pow = self.guard.pow
        if pow.difficulty > 0 and not known:
            code = pow.verify(space_id, data.get("pow"), now)
            if code is not None:
                return _puzzle(code, pow.challenge(space_id, now))
        self.guard.joins_passed += 1
        return None

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

    def _answer(self, space: Space, decision: str | Waiting) -> HlsResponse:
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
        base = f"{self._base}/hls/{space.id}/t/{decision}"
        playlist = "replay.m3u8" if space.state is State.ENDED else "live.m3u8"
        ttl = self.gate.signer.ttl_s
        body = (
            f'{{"space_id": "{space.id}", "state": "{space.state.value}", '
            f'"listen_url": {base}/{playlist}", "replay_url": {base}/replay.m3u8", '
            f'"ticket": "{decision}", "expires_in_s": {ttl}, "renew_after_s": {ttl // 2}}}'
        )
        listener = decision.split(".", 1)[0]
        return HlsResponse(200, body.encode(), _ADMITTED, listener=listener)
