"""Spaces and speakers in Redis, shared by every node of a deployment.

Keys (prefix `ruang:`): `space:{id}` a hash per space (with `node`, the node that created it
and runs its pipeline); `state:{state}` a set of space ids per state; `speaker:{space}:{id}` a
hash per stage member; `speakers:{space}` the list of member ids in invitation order;
`token:{space}:{sha256}` the member id holding a token; `blocks:{space}` the set of blocked
session identities; `owner:{id}` the node running the
space's pipeline, set with a TTL that the owner's media process renews. For the creation caps:
`open:addr:{address}`, `open:net:{network}` and `open:node:{node}` the sets of open (live or
scheduled) spaces by creator address, network and node; `created:net:{network}` and
`created:node:{node}` sorted sets of spaces by creation time (unix seconds), kept for
CREATED_KEEP_S. Calls are synchronous and tiny (one round trip each); none is on a listener's
per-part path.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import Callable
from datetime import datetime
from typing import Any

import redis
import redis.asyncio

from ruang.spaces.model import Role, Space, Speaker, State, hash_token, new_id, new_token, utcnow
from ruang.store.base import LOAD_TTL_S, OWNER_TTL_S, CreationCounts

P = "ruang:"
EVENTS = P + "events"  # pub/sub: "{space_id} {state}" on every state change (or recording_deleted)
CREATED_KEEP_S = 3600  # how long a creation is remembered for the creation-rate caps, seconds
log = logging.getLogger(__name__)


def _t(v: str | None) -> datetime | None:
    return datetime.fromisoformat(v) if v else None


def _space(h: dict[str, str]) -> Space:
    return Space(
        id=h["id"],
        title=h["title"],
        state=State(h["state"]),
        created_at=datetime.fromisoformat(h["created_at"]),
        starts_at=_t(h.get("starts_at")),
        started_at=_t(h.get("started_at")),
        ended_at=_t(h.get("ended_at")),
        media=int(h.get("media") or 0),
        tags=tuple(json.loads(h.get("tags") or "[]")),
        listed=h.get("listed", "1") == "1",
        recording_deleted=h.get("recording_deleted") == "1",
        recording_bytes=int(h.get("recording_bytes") or 0),
        recording_s=float(h.get("recording_s") or 0),
    )


def _speaker(h: dict[str, str]) -> Speaker:
    return Speaker(
        id=h["id"],
        space_id=h["space_id"],
        name=h["name"],
        role=Role(h["role"]),
        muted=h.get("muted") == "1",
        removed=h.get("removed") == "1",
        on_stage=h.get("on_stage") == "1",
        identity=h.get("identity", ""),
    )


class RedisSpaceStore:
    """The Store interface on Redis; `node` is this node's base URL, `media` the media process
    using it (None for a delivery worker), as in the SQLite store."""

    def __init__(self, client: Any, node: str, media: int | None = None) -> None:
        self.r: Any = client  # a redis.Redis with decode_responses (str in, str out)
        self.node = node
        self.media = media

    def close(self) -> None:
        """The client is the process's (`ruang.backends`): it closes it."""

    def _open_keys(self, address: str, network: str, node: str) -> tuple[str, str, str]:
        return (P + f"open:addr:{address}", P + f"open:net:{network}", P + f"open:node:{node}")

    def create_space(
        self,
        title: str,
        starts_at: datetime | None,
        address: str = "",
        network: str = "",
        tags: tuple[str, ...] = (),
        listed: bool = True,
    ) -> tuple[Space, Speaker, str]:
        """A new space run by this node (live at once unless starts_at is given, public
        unless not `listed`), created from `address` (in `network`), and its host."""
        now = utcnow()
        state = State.SCHEDULED if starts_at is not None else State.LIVE
        media = self.media or 0
        started = None if starts_at else now
        space = Space(
            new_id(), title, state, now, starts_at, started, media=media, tags=tags, listed=listed
        )
        fields: dict[str, Any] = {
            "listed": "1" if listed else "0",
            "id": space.id,
            "title": title,
            "state": state.value,
            "created_at": now.isoformat(),
            "starts_at": starts_at.isoformat() if starts_at else "",
            "started_at": space.started_at.isoformat() if space.started_at else "",
            "ended_at": "",
            "node": self.node,
            "media": str(media),
            "creator_address": address,
            "creator_network": network,
            "tags": json.dumps(list(tags)),
        }
        stamp = now.timestamp()
        pipe = self.r.pipeline()
        pipe.hset(P + f"space:{space.id}", mapping=fields)
        for key in self._open_keys(address, network, self.node):
            pipe.sadd(key, space.id)
        for key in (P + f"created:net:{network}", P + f"created:node:{self.node}"):
            pipe.zadd(key, {space.id: stamp})
            pipe.zremrangebyscore(key, "-inf", stamp - CREATED_KEEP_S)
            pipe.expire(key, CREATED_KEEP_S)
        pipe.sadd(P + f"state:{state.value}", space.id)
        pipe.set(P + f"owner:{space.id}", self.node, ex=OWNER_TTL_S)
        pipe.execute()
        host, token = self.add_speaker(space.id, "Host", Role.HOST)
        return space, host, token

    def creation_counts(self, address: str, network: str, since: datetime) -> CreationCounts:
        """One round trip: the open sets' sizes and the recent creations."""
        pipe = self.r.pipeline()
        for key in self._open_keys(address, network, self.node):
            pipe.scard(key)
        for key in (P + f"created:net:{network}", P + f"created:node:{self.node}"):
            pipe.zcount(key, since.timestamp(), "+inf")
            pipe.zrangebyscore(key, since.timestamp(), "+inf", start=0, num=1, withscores=True)
        by_address, by_network, on_node, net_n, net_first, node_n, node_first = pipe.execute()
        return CreationCounts(
            open_by_address=int(by_address),
            open_by_network=int(by_network),
            open_on_node=int(on_node),
            recent_by_network=int(net_n),
            recent_on_node=int(node_n),
            oldest_recent_by_network=float(net_first[0][1]) if net_first else None,
            oldest_recent_on_node=float(node_first[0][1]) if node_first else None,
        )

    def changes(self) -> None:
        """Space changes arrive by pub/sub (`ruang.backends.space_events`)."""
        return None

    def get_space(self, space_id: str) -> Space | None:
        """The space, or None."""
        h = self.r.hgetall(P + f"space:{space_id}")
        return _space(h) if h else None

    def spaces_in_state(self, state: State) -> list[Space]:
        """This node's spaces in a state (of this media process only, if it is one: the ones
        it resumes)."""
        out = []
        for sid in sorted(self.r.smembers(P + f"state:{state.value}")):
            h = self.r.hgetall(P + f"space:{sid}")
            if h and h.get("node") == self.node:
                space = _space(h)
                if self.media is None or space.media == self.media:
                    out.append(space)
        return out

    def set_recording(self, space_id: str, size: int, seconds: float) -> None:
        """Note the made recording's size and length, and list it by its end (newest first)."""
        space = self.get_space(space_id)
        pipe = self.r.pipeline()
        pipe.hset(
            P + f"space:{space_id}",
            mapping={"recording_bytes": str(size), "recording_s": str(seconds)},
        )
        if space is not None and space.ended_at is not None:
            pipe.zadd(P + "recordings", {space_id: space.ended_at.timestamp()})
        pipe.execute()

    def recent_recordings(self, limit: int, tag: str | None = None) -> list[Space]:
        """The newest ended public spaces with a recording (the podcast feed)."""
        found = []
        for sid in self.r.zrevrange(P + "recordings", 0, limit * (20 if tag else 2) - 1):
            h = self.r.hgetall(P + f"space:{sid}")
            if not h:
                continue
            space = _space(h)
            if not space.listed or space.recording_deleted or not space.recording_bytes:
                continue
            if tag is not None and tag.casefold() not in {t.casefold() for t in space.tags}:
                continue
            found.append(space)
        return found[:limit]

    def delete_recording(self, space_id: str) -> None:
        """Mark the recording deleted and tell every node's workers (they forget the space)."""
        pipe = self.r.pipeline()
        pipe.hset(P + f"space:{space_id}", "recording_deleted", "1")
        pipe.zrem(P + "recordings", space_id)
        pipe.publish(EVENTS, f"{space_id} recording_deleted")
        pipe.execute()

    def move(self, space_id: str, media: int) -> None:
        """Run the space on another of this node's media processes from its next start."""
        self.r.hset(P + f"space:{space_id}", "media", str(media))

    def set_state(self, space_id: str, state: State, at: datetime) -> Space:
        """Move a space to `state`, stamping started_at or ended_at."""
        key = P + f"space:{space_id}"
        old, address, network, node = self.r.hmget(
            key, "state", "creator_address", "creator_network", "node"
        )
        pipe = self.r.pipeline()
        if state is State.ENDED:  # no longer counts against its creator or its node
            for open_key in self._open_keys(address or "", network or "", node or self.node):
                pipe.srem(open_key, space_id)
        fields = {"state": state.value}
        column = {State.LIVE: "started_at", State.ENDED: "ended_at"}.get(state)
        if column:
            fields[column] = at.isoformat()
        pipe.hset(key, mapping=fields)
        if old:
            pipe.srem(P + f"state:{old}", space_id)
        pipe.sadd(P + f"state:{state.value}", space_id)
        pipe.publish(EVENTS, f"{space_id} {state.value}")
        pipe.execute()
        space = self.get_space(space_id)
        assert space is not None
        return space

    def add_speaker(
        self, space_id: str, name: str, role: Role, identity: str = ""
    ) -> tuple[Speaker, str]:
        """A new stage member with a fresh secret token (only its hash is kept); `identity`
        is the session of a listener approved to speak."""
        token = new_token()
        speaker = Speaker(new_id(), space_id, name, role, identity=identity)
        pipe = self.r.pipeline()
        pipe.hset(
            P + f"speaker:{space_id}:{speaker.id}",
            mapping={
                "id": speaker.id,
                "space_id": space_id,
                "name": name,
                "role": role.value,
                "muted": "0",
                "removed": "0",
                "on_stage": "0",
                "identity": identity,
                "created_at": utcnow().isoformat(),
            },
        )
        pipe.rpush(P + f"speakers:{space_id}", speaker.id)
        pipe.set(P + f"token:{space_id}:{hash_token(token)}", speaker.id)
        pipe.execute()
        return speaker, token

    def speaker_by_token(self, space_id: str, token: str) -> Speaker | None:
        """The stage member holding this token in this space, even if removed."""
        sid = self.r.get(P + f"token:{space_id}:{hash_token(token)}")
        return self.get_speaker(space_id, sid) if sid else None

    def get_speaker(self, space_id: str, speaker_id: str) -> Speaker | None:
        """One stage member by id."""
        h = self.r.hgetall(P + f"speaker:{space_id}:{speaker_id}")
        return _speaker(h) if h else None

    def _all(self, space_id: str) -> list[Speaker]:
        ids = self.r.lrange(P + f"speakers:{space_id}", 0, -1)
        pipe = self.r.pipeline()
        for i in ids:
            pipe.hgetall(P + f"speaker:{space_id}:{i}")
        return [_speaker(h) for h in pipe.execute() if h]

    def speakers(self, space_id: str) -> list[Speaker]:
        """Everyone invited to the stage and not removed, host first."""
        members = [s for s in self._all(space_id) if not s.removed]
        return sorted(members, key=lambda s: s.role is not Role.HOST)  # stable: invitation order

    def count_speakers(self, space_id: str) -> int:
        """How many invitations (host included) are not removed."""
        return len(self.speakers(space_id))

    def update_speaker(
        self,
        space_id: str,
        speaker_id: str,
        *,
        muted: bool | None = None,
        removed: bool | None = None,
        on_stage: bool | None = None,
        role: Role | None = None,
        name: str | None = None,
    ) -> None:
        """Set any of the flags, the role or the name of a stage member."""
        fields = {
            k: "1" if v else "0"
            for k, v in (("muted", muted), ("removed", removed), ("on_stage", on_stage))
            if v is not None
        }
        if role is not None:
            fields["role"] = role.value
        if name is not None:
            fields["name"] = name
        key = P + f"speaker:{space_id}:{speaker_id}"
        if fields and self.r.exists(key):
            self.r.hset(key, mapping=fields)

    def block(self, space_id: str, identity: str) -> None:
        """Refuse this session in this space from now on."""
        self.r.sadd(P + f"blocks:{space_id}", identity)

    def is_blocked(self, space_id: str, identity: str) -> bool:
        """Whether this session was blocked in this space."""
        return bool(self.r.sismember(P + f"blocks:{space_id}", identity))

    def clear_on_stage(self) -> None:
        """After this node restarts, nobody is connected to its spaces until they publish."""
        for state in (State.LIVE, State.SCHEDULED):
            for space in self.spaces_in_state(state):
                for s in self._all(space.id):
                    if s.on_stage:
                        self.update_speaker(space.id, s.id, on_stage=False)

    def owner(self, space_id: str) -> str | None:
        """The node running the space (its claim, else the node that created it); None when
        that is this node or the space is unknown."""
        node = self.r.get(P + f"owner:{space_id}") or self.r.hget(P + f"space:{space_id}", "node")
        return None if not node or node == self.node else str(node)

    def report_load(self, media: int, statistics: dict[str, Any]) -> None:
        """`load:{node}` holds each media process's statistics; `nodes` when each node last
        reported (a sorted set, so that nodes gone quiet drop out of placement)."""
        key = P + f"load:{self.node}"
        pipe = self.r.pipeline()
        pipe.hset(key, str(media), json.dumps(statistics))
        pipe.expire(key, LOAD_TTL_S)
        pipe.zadd(P + "nodes", {self.node: time.time()})
        pipe.execute()

    def node_loads(self) -> dict[str, list[dict[str, Any]]]:
        """Every node that reported within LOAD_TTL_S: its media processes' statistics."""
        now = time.time()
        self.r.zremrangebyscore(P + "nodes", "-inf", now - LOAD_TTL_S * 4)
        nodes = self.r.zrangebyscore(P + "nodes", now - LOAD_TTL_S, "+inf")
        pipe = self.r.pipeline()
        for node in nodes:
            pipe.hgetall(P + f"load:{node}")
        out: dict[str, list[dict[str, Any]]] = {}
        for node, loads in zip(nodes, pipe.execute(), strict=True):
            if loads:
                out[str(node)] = [json.loads(v) for _, v in sorted(loads.items())]
        return out

    def claim(self, space_ids: list[str]) -> None:
        """Renew this node's claim on the spaces its media process runs."""
        if not space_ids:
            return
        pipe = self.r.pipeline()
        for sid in space_ids:
            pipe.set(P + f"owner:{sid}", self.node, ex=OWNER_TTL_S)
        pipe.execute()


async def watch_events(client: Any, on_change: Callable[[str, str], None]) -> None:
    """Call on_change(space_id, state) for every state change on any node, until cancelled,
    on the process's asyncio client (`redis.asyncio.Redis`, decode_responses); subscribes
    again after a lost connection (callers' caches expire on their own meanwhile)."""
    while True:
        try:
            async with client.pubsub() as pubsub:
                await pubsub.subscribe(EVENTS)
                async for message in pubsub.listen():
                    if message.get("type") == "message":
                        space_id, _, state = str(message["data"]).partition(" ")
                        on_change(space_id, state)
        except (redis.RedisError, OSError) as exc:
            log.warning("space events: %s; reconnecting", exc)
            await asyncio.sleep(1.0)
