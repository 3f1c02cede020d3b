"""The gate between a listener and the media: admission decides, tickets carry the decision."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

from ruang.guard.admission import Admission, Limits, Waiting
from ruang.guard.shared import SharedAdmission
from ruang.guard.tickets import TicketError, TicketSigner
from ruang.spaces.model import State


@dataclass(frozen=True, slots=True)
class Ask:
    """One request to listen: where, from which network, when, and what it brings."""

    space_id: str
    state: State
    network: str
    now: float
    renew: object = None  # a ticket to renew (keeps the listener's identity, skips the line)
    queue: object = None  # a place in line handed out earlier
    crowded: bool = False  # the node is under pressure: newcomers wait even with capacity left


class Gate:
    """Admits listeners to spaces on this node and issues their tickets."""

    def __init__(
        self, key: bytes, ttl_s: int, limits: Limits, now: float, admission: Admission | None = None
    ) -> None:
        self.signer = TicketSigner(key, ttl_s)
        self.admission = admission or Admission(limits, key, now)

    def admit_now(self, ask: Ask) -> str | Waiting | None:
        """`admit` when it needs no round trip (the node's own line); None when the line is
        shared (Redis): then await `admit`."""
        if self.admission.shared:
            return None
        listener = self._renewing(ask)
        if listener is None:
            decision = self.admission.join(*self._line(ask))
            if isinstance(decision, Waiting):
                return decision
        return self._ticket(ask, listener)

    async def admit(self, ask: Ask) -> str | Waiting:
        """A ticket, or a place in line. A still-valid ticket being renewed skips the line and
        keeps its listener identity."""
        listener = self._renewing(ask)
        if listener is None:
            decision = await self.admission.join_async(*self._line(ask))
            if isinstance(decision, Waiting):
                return decision
        return self._ticket(ask, listener)

    def limits_in_line(self) -> bool:
        """True if the line can check a shared per-source budget in its own round trip."""
        return isinstance(self.admission, SharedAdmission)

    def admit_shared(
        self, ask: Ask, limit: tuple[list[str], list[str]] | None = None
    ) -> str | asyncio.Future[str]:
        """`admit` on the shared line without awaiting: a renewal's ticket at once, else the
        join queued in the next batch (`shared_answer` reads its outcome). With `limit` (a
        newcomer, nothing to renew), its shared per-source budget is checked in the same
        entry (`limits_in_line`)."""
        admission = self.admission
        assert isinstance(admission, SharedAdmission)
        if limit is None:
            listener = self._renewing(ask)
            if listener is not None:
                return self._ticket(ask, listener)
        space_id, network, token, now, crowded = self._line(ask)
        return admission.submit(space_id, network, token, now, crowded, limit)

    def shared_answer(self, ask: Ask, line: str) -> str | Waiting | float:
        """What the batch decided for an `admit_shared` join: a ticket, a place in line, or
        (over its budget) the seconds to wait."""
        admission = self.admission
        assert isinstance(admission, SharedAdmission)
        decision = admission.decide(ask.space_id, line, ask.now)
        if isinstance(decision, float | Waiting):
            return decision
        return self._ticket(ask, None)

    def _renewing(self, ask: Ask) -> str | None:
        if not isinstance(ask.renew, str):
            return None
        try:
            return self.signer.verify(ask.renew, ask.space_id, ask.now).listener
        except TicketError:
            return None

    def _line(self, ask: Ask) -> tuple[str, str, str | None, float, bool]:
        """The space's line opened for its state; the arguments of a join in it."""
        if ask.state is State.SCHEDULED:
            self.admission.schedule(ask.space_id)
        else:
            self.admission.start(ask.space_id)
        token = ask.queue if isinstance(ask.queue, str) else None
        return ask.space_id, ask.network, token, ask.now, ask.crowded

    def _ticket(self, ask: Ask, listener: str | None) -> str:
        ticket = self.signer.issue(ask.space_id, ask.now, listener)
        self.admission.seen(ask.space_id, ticket.split(".", 1)[0], ask.now)
        return ticket
