"""Spaces and speakers in SQLite (WAL), shared by the media process and the delivery workers."""

from __future__ import annotations

import contextlib
import json
import sqlite3
from datetime import datetime
from pathlib import Path
from typing import Any

from ruang.spaces.model import (
    Role,
    Space,
    Speaker,
    State,
    hash_token,
    new_id,
    new_token,
    utcnow,
)
from ruang.store.base import CreationCounts

_SCHEMA = """
CREATE TABLE IF NOT EXISTS spaces (
  id TEXT PRIMARY KEY, title TEXT NOT NULL, state TEXT NOT NULL,
  created_at TEXT NOT NULL, starts_at TEXT, started_at TEXT, ended_at TEXT,
  media INTEGER NOT NULL DEFAULT 0,
  creator_address TEXT NOT NULL DEFAULT '', creator_network TEXT NOT NULL DEFAULT '',
  tags TEXT NOT NULL DEFAULT '[]'
);
CREATE TABLE IF NOT EXISTS speakers (
  id TEXT PRIMARY KEY, space_id TEXT NOT NULL REFERENCES spaces(id), name TEXT NOT NULL,
  role TEXT NOT NULL, token_hash TEXT NOT NULL UNIQUE, muted INTEGER NOT NULL DEFAULT 0,
  removed INTEGER NOT NULL DEFAULT 0, on_stage INTEGER NOT NULL DEFAULT 0, created_at TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS speakers_space ON speakers(space_id);
CREATE TABLE IF NOT EXISTS blocks (
  space_id TEXT NOT NULL, identity TEXT NOT NULL, PRIMARY KEY (space_id, identity)
);
"""
# Columns added since the first schema, with their definitions: added to older databases.
_ADDED_COLUMNS = {
    "spaces": {
        "media": "INTEGER NOT NULL DEFAULT 0",  # from before several media processes
        "creator_address": "TEXT NOT NULL DEFAULT ''",
        "creator_network": "TEXT NOT NULL DEFAULT ''",
        "tags": "TEXT NOT NULL DEFAULT '[]'",  # a JSON list of strings, from issue #9
        "listed": "INTEGER NOT NULL DEFAULT 1",  # issue #9: public or unlisted
        "recording_deleted": "INTEGER NOT NULL DEFAULT 0",  # issue #10: the host deleted it
        "recording_bytes": "INTEGER NOT NULL DEFAULT 0",  # issue #10: its size once made
        "recording_s": "REAL NOT NULL DEFAULT 0",  # and its length, seconds
    },
    "speakers": {
        "identity": "TEXT NOT NULL DEFAULT ''",  # issue #9: an approved listener's session
    },
}
# Indexes over the added columns' queries (created once the columns exist): the creation caps
# read only open spaces and the last minute's creations, never the whole history.
_INDEXES = """
CREATE INDEX IF NOT EXISTS spaces_state ON spaces(state);
CREATE INDEX IF NOT EXISTS spaces_created ON spaces(created_at);
CREATE INDEX IF NOT EXISTS spaces_ended ON spaces(state, ended_at);
"""
_OPEN = f"('{State.LIVE.value}', '{State.SCHEDULED.value}')"


def _t(v: str | None) -> datetime | None:
    return None if v is None else datetime.fromisoformat(v)


def _unix(v: str | None) -> float | None:
    return None if v is None else datetime.fromisoformat(v).timestamp()


def _space(row: sqlite3.Row) -> Space:
    return Space(
        id=row["id"],
        title=row["title"],
        state=State(row["state"]),
        created_at=datetime.fromisoformat(row["created_at"]),
        starts_at=_t(row["starts_at"]),
        started_at=_t(row["started_at"]),
        ended_at=_t(row["ended_at"]),
        media=int(row["media"]),
        tags=tuple(json.loads(row["tags"])),
        listed=bool(row["listed"]),
        recording_deleted=bool(row["recording_deleted"]),
        recording_bytes=int(row["recording_bytes"]),
        recording_s=float(row["recording_s"]),
    )


def _speaker(row: sqlite3.Row) -> Speaker:
    return Speaker(
        id=row["id"],
        space_id=row["space_id"],
        name=row["name"],
        role=Role(row["role"]),
        muted=bool(row["muted"]),
        removed=bool(row["removed"]),
        on_stage=bool(row["on_stage"]),
        identity=row["identity"],
    )


class SpaceStore:
    """Synchronous SQLite access; each call is one short transaction (well under a millisecond).

    A media process opens it with its `media` number: the spaces it creates are stamped with
    it, and it resumes only those; delivery workers open it with None and see every space."""

    def __init__(self, path: Path, media: int | None = None):
        self.media = media
        path.parent.mkdir(parents=True, exist_ok=True)
        self._db = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
        self._db.row_factory = sqlite3.Row
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=NORMAL")
        self._db.execute("PRAGMA busy_timeout=2000")
        self._db.executescript(_SCHEMA)
        self._migrate()
        self._db.executescript(_INDEXES)

    def _migrate(self) -> None:
        """Bring a database made by an older version up to the current schema."""
        for table, columns in _ADDED_COLUMNS.items():
            have = {row["name"] for row in self._db.execute(f"PRAGMA table_info({table})")}
            for name, definition in columns.items():
                if name not in have:
                    with contextlib.suppress(sqlite3.OperationalError):  # another process did
                        self._db.execute(f"ALTER TABLE {table} ADD COLUMN {name} {definition}")

    def close(self) -> None:
        """Close the connection."""
        self._db.close()

    def create_space(
        self,
        title: str,
        starts_at: datetime | None,
        address: str = "",
        network: str = "",
        tags: tuple[str, ...] = (),
        listed: bool = True,
    ) -> tuple[Space, Speaker, str]:
        """A new space (live at once unless starts_at is given, public unless not `listed`)
        created from `address` (in `network`), and its host; returns the token."""
        now = utcnow()
        state = State.SCHEDULED if starts_at is not None else State.LIVE
        media = self.media or 0
        started = None if starts_at else now
        space = Space(
            new_id(), title, state, now, starts_at, started, media=media, tags=tags, listed=listed
        )
        with self._db:
            self._db.execute(
                "INSERT INTO spaces (id, title, state, created_at, starts_at, started_at, media,"
                " creator_address, creator_network, tags, listed) VALUES (?,?,?,?,?,?,?,?,?,?,?)",
                (
                    space.id,
                    title,
                    state.value,
                    now.isoformat(),
                    starts_at.isoformat() if starts_at else None,
                    space.started_at.isoformat() if space.started_at else None,
                    media,
                    address,
                    network,
                    json.dumps(list(tags)),
                    int(listed),
                ),
            )
        host, token = self.add_speaker(space.id, "Host", Role.HOST)
        return space, host, token

    def get_space(self, space_id: str) -> Space | None:
        """The space, or None."""
        row = self._db.execute("SELECT * FROM spaces WHERE id=?", (space_id,)).fetchone()
        return None if row is None else _space(row)

    def creation_counts(self, address: str, network: str, since: datetime) -> CreationCounts:
        """Two indexed reads: the open spaces, and the spaces created since `since` (created_at
        is ISO 8601 in UTC throughout, so text order is time order)."""
        total, by_address, by_network = self._db.execute(
            "SELECT COUNT(*), TOTAL(creator_address=?), TOTAL(creator_network=?)"
            f" FROM spaces WHERE state IN {_OPEN}",
            (address, network),
        ).fetchone()
        recent, oldest, recent_net, oldest_net = self._db.execute(
            "SELECT COUNT(*), MIN(created_at), TOTAL(creator_network=?),"
            " MIN(CASE WHEN creator_network=? THEN created_at END)"
            " FROM spaces WHERE created_at >= ?",
            (network, network, since.isoformat()),
        ).fetchone()
        return CreationCounts(
            open_by_address=int(by_address),
            open_by_network=int(by_network),
            open_on_node=int(total),
            recent_by_network=int(recent_net),
            recent_on_node=int(recent),
            oldest_recent_by_network=_unix(oldest_net),
            oldest_recent_on_node=_unix(oldest),
        )

    def changes(self) -> int:
        """SQLite's data_version: it moves when another connection commits."""
        return int(self._db.execute("PRAGMA data_version").fetchone()[0])

    def spaces_in_state(self, state: State) -> list[Space]:
        """The spaces in a state that this media process runs (all of them for a delivery
        worker): live ones are resumed after a restart."""
        query, args = "SELECT * FROM spaces WHERE state=?", [state.value]
        if self.media is not None:
            query, args = query + " AND media=?", [*args, str(self.media)]
        return [_space(r) for r in self._db.execute(query, args).fetchall()]

    def set_recording(self, space_id: str, size: int, seconds: float) -> None:
        """Note the made recording's size and length."""
        with self._db:
            self._db.execute(
                "UPDATE spaces SET recording_bytes=?, recording_s=? WHERE id=?",
                (size, seconds, space_id),
            )

    def recent_recordings(self, limit: int, tag: str | None = None) -> list[Space]:
        """The newest ended public spaces with a recording (the podcast feed)."""
        rows = self._db.execute(
            "SELECT * FROM spaces WHERE state='ended' AND listed=1 AND recording_deleted=0"
            " AND recording_bytes>0 ORDER BY ended_at DESC LIMIT ?",
            (limit if tag is None else limit * 20,),
        ).fetchall()
        found = [_space(r) for r in rows]
        if tag is not None:
            found = [s for s in found if tag.casefold() in {t.casefold() for t in s.tags}]
        return found[:limit]

    def delete_recording(self, space_id: str) -> None:
        """Mark the recording deleted (workers see it at their next data_version check)."""
        with self._db:
            self._db.execute("UPDATE spaces SET recording_deleted=1 WHERE id=?", (space_id,))

    def move(self, space_id: str, media: int) -> None:
        """Run the space on another media process from its next start (after the node was
        restarted with fewer media processes)."""
        with self._db:
            self._db.execute("UPDATE spaces SET media=? WHERE id=?", (media, space_id))

    def set_state(self, space_id: str, state: State, at: datetime) -> Space:
        """Move a space to `state`, stamping started_at or ended_at."""
        column = {State.LIVE: "started_at", State.ENDED: "ended_at"}.get(state)
        with self._db:
            if column:
                self._db.execute(
                    f"UPDATE spaces SET state=?, {column}=? WHERE id=?",
                    (state.value, at.isoformat(), space_id),
                )
            else:
                self._db.execute("UPDATE spaces SET state=? WHERE id=?", (state.value, space_id))
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
        with self._db:
            self._db.execute(
                "INSERT INTO speakers (id, space_id, name, role, token_hash, created_at,"
                " identity) VALUES (?,?,?,?,?,?,?)",
                (
                    speaker.id,
                    space_id,
                    name,
                    role.value,
                    hash_token(token),
                    utcnow().isoformat(),
                    identity,
                ),
            )
        return speaker, token

    def speaker_by_token(self, space_id: str, token: str) -> Speaker | None:
        """The stage member holding this token in this space, even if removed (callers check)."""
        row = self._db.execute(
            "SELECT * FROM speakers WHERE space_id=? AND token_hash=?",
            (space_id, hash_token(token)),
        ).fetchone()
        return None if row is None else _speaker(row)

    def get_speaker(self, space_id: str, speaker_id: str) -> Speaker | None:
        """One stage member by id."""
        row = self._db.execute(
            "SELECT * FROM speakers WHERE space_id=? AND id=?", (space_id, speaker_id)
        ).fetchone()
        return None if row is None else _speaker(row)

    def speakers(self, space_id: str) -> list[Speaker]:
        """Everyone invited to the stage and not removed, host first."""
        rows = self._db.execute(
            "SELECT * FROM speakers WHERE space_id=? AND removed=0"
            " ORDER BY role='host' DESC, created_at",
            (space_id,),
        ).fetchall()
        return [_speaker(r) for r in rows]

    def count_speakers(self, space_id: str) -> int:
        """How many invitations (host included) are not removed."""
        row = self._db.execute(
            "SELECT COUNT(*) FROM speakers WHERE space_id=? AND removed=0", (space_id,)
        ).fetchone()
        return int(row[0])

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
        changes: list[tuple[str, object]] = [
            (column, int(value))
            for column, value in (("muted", muted), ("removed", removed), ("on_stage", on_stage))
            if value is not None
        ]
        if role is not None:
            changes.append(("role", role.value))
        if name is not None:
            changes.append(("name", name))
        with self._db:
            for column, value in changes:
                self._db.execute(
                    f"UPDATE speakers SET {column}=? WHERE space_id=? AND id=?",
                    (value, space_id, speaker_id),
                )

    def block(self, space_id: str, identity: str) -> None:
        """Refuse this session in this space from now on."""
        with self._db:
            self._db.execute(
                "INSERT OR IGNORE INTO blocks (space_id, identity) VALUES (?,?)",
                (space_id, identity),
            )

    def is_blocked(self, space_id: str, identity: str) -> bool:
        """Whether this session was blocked in this space."""
        row = self._db.execute(
            "SELECT 1 FROM blocks WHERE space_id=? AND identity=?", (space_id, identity)
        ).fetchone()
        return row is not None

    def clear_on_stage(self) -> None:
        """After a restart nobody is connected until they publish again (to this media
        process's spaces: the others' speakers are still on stage)."""
        with self._db:
            if self.media is None:
                self._db.execute("UPDATE speakers SET on_stage=0")
            else:
                self._db.execute(
                    "UPDATE speakers SET on_stage=0"
                    " WHERE space_id IN (SELECT id FROM spaces WHERE media=?)",
                    (self.media,),
                )

    def owner(self, space_id: str) -> str | None:
        """One node runs every space."""
        return None

    def claim(self, space_ids: list[str]) -> None:
        """Nothing to record on one node."""

    def report_load(self, media: int, statistics: dict[str, Any]) -> None:
        """One node: its workers ask its media processes directly."""

    def node_loads(self) -> dict[str, list[dict[str, Any]]]:
        """One node: no other node to place a space on."""
        return {}
