"""Roles and the stage (issue #9): requests to speak, co-hosts, mutes, moving people back to
the audience, removing and blocking, each checked against `ruang.spaces.permissions` first.

Owned by the media process's Studio (it runs the stage); every change is published on the
studio's event log (`request` for requests to speak and their outcome, `stage` for the stage,
its mutes and roles). Requests to speak live in this process's memory: a restarted media
process forgets pending requests (people ask again), never an approved seat (in the store).
"""

from __future__ import annotations

import time
from collections import OrderedDict
from dataclasses import dataclass
from typing import TYPE_CHECKING

from ruang.errors import ApiError, conflict, not_found
from ruang.guard.sessions import Session
from ruang.spaces.model import Role, Speaker, State, new_id
from ruang.spaces.permissions import (
    MAX_COHOSTS,
    Action,
    Actor,
    Refusal,
    actor_of,
    check,
    may_try,
)

if TYPE_CHECKING:
    from ruang.live.studio import Studio

MAX_PENDING_PER_SPACE = 50  # requests to speak waiting for an answer, per space
MAX_ASKS_PER_PERSON = 3  # requests to speak one session may make in a space per ASK_WINDOW_S
ASK_WINDOW_S = 3600.0  # seconds
MAX_TRACKED_PER_SPACE = 2000  # people whose requests a space remembers (oldest forgotten)
ASK_RETRY_AFTER_S = 30  # seconds a refused asker is told to wait


@dataclass
class SpeakRequest:
    """One person's request to speak in a space, and what became of it."""

    id: str
    identity: str
    name: str
    state: str  # "pending", "approved", "denied"
    asked: list[float]  # when they asked (unix seconds), within the window
    speaker_id: str = ""
    token: str = ""  # their stage token once approved, handed to their session only

    def view(self) -> dict[str, object]:
        """As the host's studio lists it."""
        return {"id": self.id, "name": self.name, "state": self.state, "asked_at": self.asked[-1]}


def _raise(refusal: Refusal | None) -> None:
    if refusal is not None:
        raise ApiError(refusal.status, refusal.code, refusal.message)


class Moderation:
    """The stage rules of one media process's spaces."""

    def __init__(self, studio: Studio) -> None:
        self.studio = studio
        self._requests: dict[str, OrderedDict[str, SpeakRequest]] = {}  # space → identity → …
        self._no_requests: dict[str, set[str]] = {}  # identities removed from a space's stage

    # -- who asks ----------------------------------------------------------------------------
    async def caller(
        self, space_id: str, token: str | None, session: Session | None, by_session: bool = False
    ) -> tuple[Actor, Speaker | None]:
        """The caller's standing: from a stage token (401/403 if bad), else a listener with
        a session, else anonymous. Only with `by_session` (asking to speak, reading one's
        standing) does a session holding a seat count as that seat: a cookie never acts from
        the stage, so no cross-site request can."""
        studio = self.studio
        if token:
            member = await studio.member(space_id, token)
            return Actor(member.role.value), member
        await studio.space(space_id)
        if session is None:
            return Actor.ANONYMOUS, None
        if not by_session:
            return Actor.LISTENER, None
        seat = await self.seat_of(space_id, session.identity)
        return actor_of(seat.role if seat else None, True), seat

    async def seat_of(self, space_id: str, identity: str) -> Speaker | None:
        """The stage seat (not removed) held by a session in a space, if any."""
        members = await self.studio.off_loop(self.studio.db.speakers, space_id)
        return next((m for m in members if identity and m.identity == identity), None)

    async def allowed(
        self,
        space_id: str,
        token: str | None,
        action: Action,
        session: Session | None = None,
        target_id: str | None = None,
    ) -> tuple[Speaker | None, Speaker | None]:
        """The caller and the target of `action`, once the permission table allows it (the
        ApiError of its refusal otherwise; 404 for an unknown target)."""
        actor, caller = await self.caller(space_id, token, session, action is Action.REQUEST)
        target = None
        if target_id is not None:
            _raise(may_try(actor, action))
            target = await self.studio.off_loop(self.studio.db.get_speaker, space_id, target_id)
            if target is None or target.removed:
                raise not_found(f"Speaker {target_id!r}")
            _raise(check(actor, action, target.role))
            if caller is not None and target.id == caller.id:
                raise conflict("not_yourself", f"You cannot {action.value} yourself.")
        else:
            _raise(check(actor, action))
        return caller, target

    # -- requests to speak -------------------------------------------------------------------
    async def ask(
        self, space_id: str, session: Session | None, token: str | None = None
    ) -> tuple[SpeakRequest, bool]:
        """A listener's request to speak (and True if new); the same pending request if they
        ask again. 409 from the stage (a token, or a session holding a seat), 403 if blocked
        or removed, 429 beyond the caps."""
        await self.allowed(space_id, token, Action.REQUEST, session)
        assert session is not None
        studio = self.studio
        space = await studio.space(space_id)
        if space.state is State.ENDED:
            raise conflict("space_ended", "This space has ended.")
        who = session.identity
        if await studio.off_loop(studio.db.is_blocked, space_id, who):
            raise ApiError(
                403, "blocked", "You are blocked in this space (by its host or a co-host)."
            )
        if who in self._no_requests.get(space_id, set()):
            raise ApiError(403, "removed", "You were removed from this space's stage.")
        book = self._requests.setdefault(space_id, OrderedDict())
        now = time.time()
        held = book.get(who)
        if held is not None and held.state == "pending":
            return held, False
        asked = [t for t in (held.asked if held else []) if t > now - ASK_WINDOW_S]
        if len(asked) >= MAX_ASKS_PER_PERSON:
            raise ApiError(
                429,
                "too_many_requests",
                f"You asked to speak {len(asked)} times in the last hour; wait for the host.",
                {"Retry-After": str(int(asked[0] + ASK_WINDOW_S - now) + 1)},
            )
        if sum(r.state == "pending" for r in book.values()) >= MAX_PENDING_PER_SPACE:
            raise ApiError(
                429,
                "too_many_requests",
                f"{MAX_PENDING_PER_SPACE} people are already waiting to speak; try again later.",
                {"Retry-After": str(ASK_RETRY_AFTER_S)},
            )
        request = SpeakRequest(new_id(), who, session.name, "pending", [*asked, now])
        book.pop(who, None)
        book[who] = request
        while len(book) > MAX_TRACKED_PER_SPACE:
            oldest = next(k for k, r in book.items() if r.state != "pending")
            del book[oldest]
        studio.events.publish(space_id, "request", request.view())
        return request, True

    def mine(self, space_id: str, identity: str) -> SpeakRequest | None:
        """A session's request to speak in a space, if it made one lately."""
        book = self._requests.get(space_id)
        return None if book is None else book.get(identity)

    def pending(self, space_id: str) -> list[SpeakRequest]:
        """The requests waiting for an answer, oldest first."""
        return [r for r in self._requests.get(space_id, {}).values() if r.state == "pending"]

    def _find(self, space_id: str, request_id: str) -> SpeakRequest:
        for r in self._requests.get(space_id, {}).values():
            if r.id == request_id and r.state == "pending":
                return r
        raise not_found(f"Pending request {request_id!r}")

    async def withdraw(self, space_id: str, session: Session | None) -> None:
        """A listener takes back their pending request."""
        await self.allowed(space_id, None, Action.REQUEST, session)
        assert session is not None
        held = self.mine(space_id, session.identity)
        if held is None or held.state != "pending":
            raise not_found("Your pending request")
        held.state = "withdrawn"
        self.studio.events.publish(space_id, "request", {"id": held.id, "state": held.state})

    async def approve(self, space_id: str, request_id: str) -> SpeakRequest:
        """The request's asker gets a stage seat (a speaker token, fetched by their session
        from `GET …/me`); 409 when the stage is full."""
        request = self._find(space_id, request_id)
        request.state = "approving"  # two moderators approving at once make one seat
        studio = self.studio
        try:
            seats = await studio.off_loop(studio.db.count_speakers, space_id)
            if seats >= studio.config.max_on_stage:
                raise conflict(
                    "stage_full",
                    f"The stage holds {studio.config.max_on_stage} people; move someone back "
                    "to the audience first.",
                )
            speaker, token = await studio.off_loop(
                studio.db.add_speaker, space_id, request.name, Role.SPEAKER, request.identity
            )
        except BaseException:
            request.state = "pending"
            raise
        request.state, request.speaker_id, request.token = "approved", speaker.id, token
        studio.events.publish(
            space_id, "request", {"id": request.id, "state": "approved", "speaker": speaker.id}
        )
        return request

    async def deny(self, space_id: str, request_id: str) -> SpeakRequest:
        """The request is turned down (the asker may ask again, within their cap)."""
        request = self._find(space_id, request_id)
        request.state = "denied"
        self.studio.events.publish(space_id, "request", {"id": request.id, "state": "denied"})
        return request

    # -- the stage ---------------------------------------------------------------------------
    async def mute_all(self, space_id: str, caller: Speaker) -> list[str]:
        """Mute everyone on the stage the caller may mute; the ids muted."""
        studio = self.studio
        actor = Actor(caller.role.value)
        muted = []
        for m in await studio.off_loop(studio.db.speakers, space_id):
            if (
                m.id != caller.id
                and not m.muted
                and check(actor, Action.MUTE_OTHER, m.role) is None
            ):
                await studio.set_muted(space_id, m.id, True)
                muted.append(m.id)
        return muted

    async def off_stage(self, space_id: str, target: Speaker, how: Action) -> None:
        """Take someone off the stage: back to the audience (they may ask again), removed
        (they may not) or blocked (nor join again with their session)."""
        studio = self.studio
        await studio.remove(space_id, target.id)
        book = self._requests.get(space_id)
        if target.identity:
            if how is Action.TO_AUDIENCE:
                if book is not None:
                    book.pop(target.identity, None)
            else:
                self._no_requests.setdefault(space_id, set()).add(target.identity)
            if how is Action.BLOCK:
                await studio.off_loop(studio.db.block, space_id, target.identity)
        outcome = {Action.TO_AUDIENCE: "audience", Action.REMOVE: "removed"}.get(how, "blocked")
        studio.events.publish(space_id, "stage", {"speaker": target.id, "left": outcome})

    async def set_role(self, space_id: str, target: Speaker, role: Role) -> Speaker:
        """A speaker made co-host (409 beyond MAX_COHOSTS) or a co-host made speaker."""
        studio = self.studio
        if role is Role.COHOST:
            members = await studio.off_loop(studio.db.speakers, space_id)
            if sum(m.role is Role.COHOST for m in members) >= MAX_COHOSTS:
                raise conflict("cohosts_full", f"A space has at most {MAX_COHOSTS} co-hosts.")
        await studio.off_loop(studio.db.update_speaker, space_id, target.id, role=role)
        studio.events.publish(space_id, "stage", {"speaker": target.id, "role": role.value})
        return await self._reread(space_id, target.id)

    async def hand_over(self, space_id: str, host: Speaker, cohost: Speaker) -> Speaker:
        """The co-host becomes the host and the host a co-host; each keeps their token."""
        studio = self.studio
        await studio.off_loop(studio.db.update_speaker, space_id, cohost.id, role=Role.HOST)
        await studio.off_loop(studio.db.update_speaker, space_id, host.id, role=Role.COHOST)
        studio.events.publish(space_id, "stage", {"speaker": cohost.id, "role": "host"})
        studio.events.publish(space_id, "stage", {"speaker": host.id, "role": "cohost"})
        return await self._reread(space_id, cohost.id)

    async def rename(self, space_id: str, member: Speaker, name: str) -> Speaker:
        """A stage member (the host too) names themselves."""
        studio = self.studio
        await studio.off_loop(studio.db.update_speaker, space_id, member.id, name=name)
        studio.events.publish(space_id, "stage", {"speaker": member.id, "name": name})
        return await self._reread(space_id, member.id)

    async def _reread(self, space_id: str, speaker_id: str) -> Speaker:
        speaker = await self.studio.off_loop(self.studio.db.get_speaker, space_id, speaker_id)
        assert speaker is not None
        return speaker

    def forget(self, space_id: str) -> None:
        """A space ended: its requests go."""
        self._requests.pop(space_id, None)
        self._no_requests.pop(space_id, None)
