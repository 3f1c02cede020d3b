"""Who may do what in a space: one pure table, checked by the studio before every change.

`check(actor, action, target)` answers None (allowed) or a `Refusal` (status, code, message).
The actor is the caller's standing in the space: the host, a co-host, a speaker (anyone else
with a stage token), a listener who has a session (a display name, no stage token) or an
anonymous listener. `target` is the role of the person acted on, for actions on someone else.
No I/O here: the HTTP tests hold the same table, cell by cell, over a real server.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

from ruang.spaces.model import Role

MAX_COHOSTS = 2  # co-hosts beside the host


class Actor(enum.StrEnum):
    """The caller's standing in a space."""

    HOST = "host"
    COHOST = "cohost"
    SPEAKER = "speaker"
    LISTENER = "listener"  # has a session (a display name), no stage token
    ANONYMOUS = "anonymous"  # neither


class Action(enum.StrEnum):
    """Everything a person can ask of a space beyond listening."""

    START = "start"
    END = "end"
    INVITE = "invite"  # a new stage seat with its own token
    LIST_REQUESTS = "list_requests"
    REQUEST = "request"  # ask to speak (a listener with a session)
    APPROVE = "approve"
    DENY = "deny"
    MUTE_SELF = "mute_self"
    UNMUTE_SELF = "unmute_self"
    MUTE_OTHER = "mute_other"
    UNMUTE_OTHER = "unmute_other"  # nobody may: a person unmutes themselves
    MUTE_ALL = "mute_all"
    TO_AUDIENCE = "to_audience"  # off the stage, may ask to speak again
    REMOVE = "remove"  # off the stage, may not ask again
    BLOCK = "block"  # removed, and refused new tickets with the same session
    MAKE_COHOST = "make_cohost"
    MAKE_SPEAKER = "make_speaker"  # a co-host back to speaker
    HAND_OVER = "hand_over"  # the host role to a co-host
    RENAME_SELF = "rename_self"
    DELETE_RECORDING = "delete_recording"  # once ended: the replay, download, clips, captions


@dataclass(frozen=True, slots=True)
class Refusal:
    """Why an action is refused, as the HTTP answer will say it."""

    status: int
    code: str
    message: str


MODERATORS = frozenset({Actor.HOST, Actor.COHOST})
ON_STAGE = frozenset({Actor.HOST, Actor.COHOST, Actor.SPEAKER})
# Who may do each action (before the target is considered).
ALLOWED: dict[Action, frozenset[Actor]] = {
    Action.START: frozenset({Actor.HOST}),
    Action.END: frozenset({Actor.HOST}),
    Action.INVITE: MODERATORS,
    Action.LIST_REQUESTS: MODERATORS,
    Action.REQUEST: frozenset({Actor.LISTENER}),
    Action.APPROVE: MODERATORS,
    Action.DENY: MODERATORS,
    Action.MUTE_SELF: ON_STAGE,
    Action.UNMUTE_SELF: ON_STAGE,
    Action.MUTE_OTHER: MODERATORS,
    Action.UNMUTE_OTHER: frozenset(),
    Action.MUTE_ALL: MODERATORS,
    Action.TO_AUDIENCE: MODERATORS,
    Action.REMOVE: MODERATORS,
    Action.BLOCK: MODERATORS,
    Action.MAKE_COHOST: frozenset({Actor.HOST}),
    Action.MAKE_SPEAKER: frozenset({Actor.HOST}),
    Action.HAND_OVER: frozenset({Actor.HOST}),
    Action.RENAME_SELF: ON_STAGE,
    Action.DELETE_RECORDING: frozenset({Actor.HOST}),
}
# Actions on someone else, and the roles each actor may act on with them: nobody acts on the
# host, and only the host acts on a co-host (a co-host cannot push the other one off stage).
ON_OTHERS = frozenset(
    {
        Action.MUTE_OTHER,
        Action.TO_AUDIENCE,
        Action.REMOVE,
        Action.BLOCK,
        Action.MAKE_COHOST,
        Action.MAKE_SPEAKER,
        Action.HAND_OVER,
    }
)
TARGETS: dict[Action, dict[Actor, frozenset[Role]]] = {
    action: {
        Actor.HOST: frozenset({Role.COHOST, Role.SPEAKER}),
        Actor.COHOST: frozenset({Role.SPEAKER}),
    }
    for action in ON_OTHERS
}
TARGETS[Action.MAKE_COHOST] = {Actor.HOST: frozenset({Role.SPEAKER})}
TARGETS[Action.MAKE_SPEAKER] = {Actor.HOST: frozenset({Role.COHOST})}
TARGETS[Action.HAND_OVER] = {Actor.HOST: frozenset({Role.COHOST})}

_NEEDS = {
    Actor.HOST: "the host",
    Actor.COHOST: "a co-host",
    Actor.SPEAKER: "a speaker",
    Actor.LISTENER: "a listener with a display name",
}


def actor_of(role: Role | None, has_session: bool) -> Actor:
    """The standing of a caller with a stage role (or None) and maybe a session."""
    if role is not None:
        return Actor(role.value)
    return Actor.LISTENER if has_session else Actor.ANONYMOUS


def may_try(actor: Actor, action: Action) -> Refusal | None:
    """None if `actor` may do `action` to someone (whoever the target), else why not: checked
    before the target is even looked up, so a stranger learns nothing of who is on stage."""
    allowed = ALLOWED[action]
    if actor not in allowed:
        if actor is Actor.ANONYMOUS:
            if action is Action.REQUEST:
                return Refusal(401, "session_required", "Choose a display name first.")
            return Refusal(401, "unauthorized", "A valid Bearer token is required.")
        if action is Action.UNMUTE_OTHER:
            return Refusal(
                403, "forbidden", "Nobody can unmute someone else; they unmute themselves."
            )
        if action is Action.REQUEST:
            return Refusal(409, "already_on_stage", "You already have a place on the stage.")
        who = " or ".join(sorted(_NEEDS[a] for a in allowed))
        return Refusal(403, "forbidden", f"Only {who} can do this ({action.value}).")
    return None


def check(actor: Actor, action: Action, target: Role | None = None) -> Refusal | None:
    """None if `actor` may do `action` (to someone of role `target`), else why not."""
    refusal = may_try(actor, action)
    if refusal is not None:
        return refusal
    if action in ON_OTHERS:
        if actor is Actor.HOST and target is Role.HOST:  # there is one host: themselves
            return Refusal(
                409,
                "host_stays",
                "The host stays on stage; hand the host role to a co-host or end the space.",
            )
        may = TARGETS[action].get(actor, frozenset())
        if target is None or target not in may:
            whom = {Role.HOST: "the host", Role.COHOST: "a co-host", Role.SPEAKER: "a speaker"}
            named = whom.get(target, "nobody") if target is not None else "nobody"
            return Refusal(
                403, "forbidden", f"As {_NEEDS[actor]} you cannot {action.value} {named}."
            )
    return None
