"""The gate between a listener and the media: admission decides, tickets carry the decision."""

from __future__ import annotations

from ruang.guard.admission import Admission, Limits, Waiting
from ruang.guard.tickets import TicketError, TicketSigner
from ruang.spaces.model import State


class Gate:
    """Admits listeners to spaces on this node and issues their tickets."""

    def __init__(
        self, key: bytes, ttl_s: int, limits: Limits, now: float, admission: Admission | None = None
    ) -> None:
        self.signer = TicketSigner(key, ttl_s)
        self.admission = admission or Admission(limits, key, now)

    def admit_now(
        self,
        space_id: str,
        state: State,
        network: str,
        now: float,
        *,
        renew: object = None,
        queue: object = None,
        crowded: bool = False,
    ) -> str | Waiting | None:
        """`admit` when it needs no round trip (the node's own line); None when the line is
        shared (Redis): then await `admit`."""
        if self.admission.shared:
            return None
        listener = self._renewing(renew, space_id, now)
        if listener is None:
            self._open_line(space_id, state)
            token = queue if isinstance(queue, str) else None
            decision = self.admission.join(space_id, network, token, now, crowded)
            if isinstance(decision, Waiting):
                return decision
        return self._ticket(space_id, now, listener)

    async def admit(
        self,
        space_id: str,
        state: State,
        network: str,
        now: float,
        *,
        renew: object = None,
        queue: object = None,
        crowded: bool = False,
    ) -> str | Waiting:
        """A ticket, or a place in line. A still-valid ticket being renewed skips the line and
        keeps its listener identity."""
        listener = self._renewing(renew, space_id, now)
        if listener is None:
            self._open_line(space_id, state)
            token = queue if isinstance(queue, str) else None
            decision = await self.admission.join_async(space_id, network, token, now, crowded)
            if isinstance(decision, Waiting):
                return decision
        return self._ticket(space_id, now, listener)

    def _renewing(self, renew: object, space_id: str, now: float) -> str | None:
        if not isinstance(renew, str):
            return None
        try:
            return self.signer.verify(renew, space_id, now).listener
        except TicketError:
            return None

    def _open_line(self, space_id: str, state: State) -> None:
        if state is State.SCHEDULED:
            self.admission.schedule(space_id)
        else:
            self.admission.start(space_id)

    def _ticket(self, space_id: str, now: float, listener: str | None) -> str:
        ticket = self.signer.issue(space_id, now, listener)
        self.admission.seen(space_id, ticket.split(".", 1)[0], now)
        return ticket
