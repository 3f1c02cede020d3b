"""`POST /api/spaces/{id}/reactions`: listeners' reactions, limited per person, counted per
second and handed to the media process running the space, which publishes one `reaction`
event a second with the counts (so the stream does not grow with the audience).

Who reacts is one function (`Who`): today the listener of a valid ticket; sessions with a
display name (issue #9, items 1–2) can replace it without touching the rest.
"""

from __future__ import annotations

import json
import time
from collections import OrderedDict
from collections.abc import Callable

from ruang.delivery.hls import HlsResponse, encode_headers, error_answer
from ruang.errors import ApiError, not_found
from ruang.guard.tickets import TicketError, TicketSigner
from ruang.live.eventfeed import REACTION_KINDS
from ruang.spaces.model import ID_PATTERN, Space

REACTION_EVERY_S = 0.5  # a person's sustained pace, one reaction per this, seconds
REACTION_BURST = 5  # reactions a person may send at once before the pace applies
MAX_PEOPLE = 200_000  # people remembered per worker; the least recent are forgotten first
MAX_COUNT = 1_000_000  # one kind's count from another node's worker in one second, at most
MAX_SPACES = 10_000  # spaces with counts waiting for the next report, per worker

Who = Callable[[str, str | None], str | None]  # (space, credential) → a person, or None
_ACCEPTED = HlsResponse(
    202,
    b'{"accepted":true}',
    encode_headers([("Content-Type", "application/json"), ("Cache-Control", "no-store")]),
)


def ticket_holder(signer: TicketSigner) -> Who:
    """Who reacts: the listener named by a valid ticket for the space (None otherwise)."""

    def who(space_id: str, credential: str | None) -> str | None:
        if not credential:
            return None
        try:
            return signer.verify_cached(credential, space_id, time.time()).listener
        except TicketError:
            return None

    return who


class Reactions:
    """One worker's reactions: who may react now, and the counts since the last report."""

    def __init__(self, who: Who, find_space: Callable[[str], Space | None]) -> None:
        self.who = who
        self.find_space = find_space
        self.counts: dict[str, dict[str, int]] = {}
        self.refused = 0  # reactions over a person's pace (statistics)
        self._tat: OrderedDict[str, float] = OrderedDict()  # GCRA per person

    def react(self, space_id: str, credential: str | None, body: bytes, now: float) -> HlsResponse:
        """Take one reaction (202), or refuse it (401, 404, 422, 429) before counting it."""
        try:
            if not ID_PATTERN.match(space_id) or self.find_space(space_id) is None:
                raise not_found(f"Space {space_id!r}")
            kind = _kind(body)
            person = self.who(space_id, credential)
            if person is None:
                raise ApiError(
                    401, "ticket_missing", "Reacting needs your listener ticket: join first."
                )
            wait = self._charge(f"{space_id}/{person}", now)
            if wait > 0:
                self.refused += 1
                raise ApiError(
                    429,
                    "rate_limited",
                    "You are reacting faster than the room can show; slow down.",
                    {"Retry-After": "1"},
                )
        except ApiError as err:
            return error_answer(err, "no-store")
        mine = self.counts.get(space_id)
        if mine is None:
            if len(self.counts) >= MAX_SPACES:
                return _ACCEPTED  # an absurd number of spaces this second: not counted
            mine = self.counts[space_id] = {}
        mine[kind] = mine.get(kind, 0) + 1
        return _ACCEPTED

    def _charge(self, key: str, now: float) -> float:
        """GCRA: 0 if the person may react now (and it is counted), else the wait, seconds."""
        tat = max(self._tat.get(key, now), now)
        if tat - now > REACTION_EVERY_S * (REACTION_BURST - 1):
            return tat - now - REACTION_EVERY_S * (REACTION_BURST - 1)
        self._tat[key] = tat + REACTION_EVERY_S
        self._tat.move_to_end(key)
        while len(self._tat) > MAX_PEOPLE:
            self._tat.popitem(last=False)
        return 0.0

    def add_counts(self, space_id: str, body: bytes) -> None:
        """Add counts another node's worker took for a space this node runs (`{"counts":
        {kind: n}}`; unknown kinds and bad numbers are ignored here and again by the media
        process)."""
        try:
            counts = json.loads(body).get("counts")
        except (ValueError, UnicodeDecodeError, AttributeError):
            return
        if not isinstance(counts, dict) or not ID_PATTERN.match(space_id):
            return
        mine = self.counts.setdefault(space_id, {})
        for kind, n in counts.items():
            if kind in REACTION_KINDS and isinstance(n, int) and 0 < n <= MAX_COUNT:
                mine[kind] = mine.get(kind, 0) + n

    def take(self) -> dict[str, dict[str, int]]:
        """The counts since the last take, per space and kind."""
        counts, self.counts = self.counts, {}
        return counts


def _kind(body: bytes) -> str:
    try:
        data = json.loads(body or b"{}")
    except (ValueError, UnicodeDecodeError, RecursionError):  # too deep is bad input too
        raise ApiError(400, "malformed_json", "The body is not JSON.") from None
    kind = data.get("kind") if isinstance(data, dict) else None
    if kind not in REACTION_KINDS:
        raise ApiError(
            422, "invalid_field", f"kind must be one of {' '.join(REACTION_KINDS)}, not {kind!r}."
        )
    return str(kind)
