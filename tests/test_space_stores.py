"""The two space stores behind one interface: SQLite (one node) and Redis (several nodes)
answer the same calls the same way; Redis adds which node runs a space."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from ruang.spaces.model import Role, State, utcnow
from ruang.store.base import CreationCounts, Store
from ruang.store.redisstore import RedisSpaceStore
from ruang.store.sqlite import SpaceStore


@pytest.fixture(params=["sqlite", "redis"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Store]:
    if request.param == "sqlite":
        s: Store = SpaceStore(tmp_path / "db.sqlite3")
    else:
        s = RedisSpaceStore(request.getfixturevalue("redis_url"), "http://node-a")
    yield s
    s.close()


def test_spaces_and_speakers(store: Store) -> None:
    space, host, token = store.create_space("Talk", None)
    assert space.state is State.LIVE and store.get_space(space.id) == space
    assert store.get_space("nosuchspace") is None
    assert store.speaker_by_token(space.id, token) == host and host.role is Role.HOST
    assert store.speaker_by_token(space.id, "wrong") is None
    ana, ana_token = store.add_speaker(space.id, "Ana", Role.SPEAKER)
    bo, _ = store.add_speaker(space.id, "Bo", Role.SPEAKER)
    assert [s.name for s in store.speakers(space.id)] == ["Host", "Ana", "Bo"]
    store.update_speaker(space.id, ana.id, muted=True, on_stage=True)
    got = store.get_speaker(space.id, ana.id)
    assert got is not None and got.muted and got.on_stage and not got.removed
    store.update_speaker(space.id, bo.id, removed=True)
    assert store.count_speakers(space.id) == 2
    removed = store.speaker_by_token(space.id, ana_token)
    assert removed is not None and removed.id == ana.id
    store.clear_on_stage()
    got = store.get_speaker(space.id, ana.id)
    assert got is not None and not got.on_stage

    later, _, _ = store.create_space("Later", datetime(2030, 1, 1, tzinfo=UTC))
    assert later.state is State.SCHEDULED
    assert later.id in {s.id for s in store.spaces_in_state(State.SCHEDULED)}
    ended = store.set_state(space.id, State.ENDED, utcnow())
    assert ended.state is State.ENDED and ended.ended_at is not None
    assert space.id in {s.id for s in store.spaces_in_state(State.ENDED)}
    assert space.id not in {s.id for s in store.spaces_in_state(State.LIVE)}
    assert store.owner(space.id) is None  # this node runs it


def test_redis_knows_which_node_runs_a_space(redis_url: str) -> None:
    a = RedisSpaceStore(redis_url, "http://node-a")
    b = RedisSpaceStore(redis_url, "http://node-b")
    space, _, _ = a.create_space("On A", None)
    assert b.get_space(space.id) == space
    assert a.owner(space.id) is None and b.owner(space.id) == "http://node-a"
    assert space.id not in {s.id for s in b.spaces_in_state(State.LIVE)}  # B resumes its own
    a.r.delete(f"ruang:owner:{space.id}")  # the claim lapsed: the creating node is still named
    assert b.owner(space.id) == "http://node-a"
    b.claim([space.id])  # B took it over
    assert a.owner(space.id) == "http://node-b" and b.owner(space.id) is None
    a.close()
    b.close()


def test_creation_counts_follow_open_spaces_and_recent_creations(store: Store) -> None:
    since = utcnow() - timedelta(seconds=60)
    assert store.creation_counts("10.0.0.1", "10.0.0.0/24", since) == CreationCounts()
    a, _, _ = store.create_space("A", None, "10.0.0.1", "10.0.0.0/24")
    store.create_space("B", datetime(2030, 1, 1, tzinfo=UTC), "10.0.0.2", "10.0.0.0/24")
    store.create_space("C", None, "192.0.2.9", "192.0.2.0/24")
    c = store.creation_counts("10.0.0.1", "10.0.0.0/24", since)
    assert (c.open_by_address, c.open_by_network, c.open_on_node) == (1, 2, 3)
    assert (c.recent_by_network, c.recent_on_node) == (2, 3)
    assert c.oldest_recent_by_network is not None and c.oldest_recent_on_node is not None
    assert abs(c.oldest_recent_by_network - a.created_at.timestamp()) < 0.01
    store.set_state(a.id, State.ENDED, utcnow())  # ended: off the caps, still a recent creation
    c = store.creation_counts("10.0.0.1", "10.0.0.0/24", since)
    assert (c.open_by_address, c.open_by_network, c.open_on_node) == (0, 1, 2)
    assert (c.recent_by_network, c.recent_on_node) == (2, 3)
    later = store.creation_counts("10.0.0.1", "10.0.0.0/24", utcnow() + timedelta(seconds=1))
    assert (later.recent_by_network, later.recent_on_node) == (0, 0)
    assert later.oldest_recent_on_node is None


def test_redis_counts_open_spaces_per_node_and_sources_across_nodes(redis_url: str) -> None:
    a = RedisSpaceStore(redis_url, "http://node-a")
    b = RedisSpaceStore(redis_url, "http://node-b")
    a.create_space("On A", None, "10.0.0.1", "10.0.0.0/24")
    since = utcnow() - timedelta(seconds=60)
    c = b.creation_counts("10.0.0.1", "10.0.0.0/24", since)
    # the source's caps hold whichever node it asks; the node's are the node's own
    assert (c.open_by_address, c.open_by_network, c.recent_by_network) == (1, 1, 1)
    assert (c.open_on_node, c.recent_on_node) == (0, 0)
    a.close()
    b.close()


def test_sqlite_adds_the_creator_columns_to_an_older_database(tmp_path: Path) -> None:
    path = tmp_path / "old.sqlite3"
    old = sqlite3.connect(path)
    old.executescript(
        "CREATE TABLE spaces (id TEXT PRIMARY KEY, title TEXT NOT NULL, state TEXT NOT NULL,"
        " created_at TEXT NOT NULL, starts_at TEXT, started_at TEXT, ended_at TEXT);"
        "INSERT INTO spaces VALUES ('oldspace01', 'Old', 'live', '2026-01-01T10:00:00+00:00',"
        " NULL, '2026-01-01T10:00:00+00:00', NULL);"
    )
    old.commit()
    old.close()
    store = SpaceStore(path)
    old_space = store.get_space("oldspace01")
    assert old_space is not None and old_space.state is State.LIVE
    store.create_space("New", None, "10.0.0.1", "10.0.0.0/24")
    c = store.creation_counts("10.0.0.1", "10.0.0.0/24", utcnow() - timedelta(seconds=60))
    assert (c.open_by_address, c.open_on_node, c.recent_on_node) == (1, 2, 1)
    store.close()
    SpaceStore(path).close()  # and opening it again changes nothing
