"""The two space stores behind one interface: SQLite (one node) and Redis (several nodes)
answer the same calls the same way; Redis adds which node runs a space."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import redis

from ruang.spaces.model import Role, State, utcnow
from ruang.store.base import CreationCounts, Store
from ruang.store.redisstore import RedisSpaceStore
from ruang.store.sqlite import SpaceStore


def client(url: str) -> redis.Redis:
    """A client as `ruang.backends` opens it."""
    return redis.Redis.from_url(url, decode_responses=True)


@pytest.fixture(params=["sqlite", "redis"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Store]:
    if request.param == "sqlite":
        s: Store = SpaceStore(tmp_path / "db.sqlite3")
    else:
        s = RedisSpaceStore(client(request.getfixturevalue("redis_url")), "http://node-a")
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


def test_topic_tags_are_kept_with_the_space(store: Store) -> None:
    when = datetime(2030, 1, 1, tzinfo=UTC)
    space, _, _ = store.create_space("Tagged", when, tags=("jazz", "Bahasa Indonesia"))
    assert space.tags == ("jazz", "Bahasa Indonesia")
    assert store.get_space(space.id) == space
    live = store.set_state(space.id, State.LIVE, utcnow())
    assert live.tags == space.tags
    plain, _, _ = store.create_space("Plain", None)
    got = store.get_space(plain.id)
    assert got is not None and got.tags == ()


def test_roles_identities_blocks_and_visibility(store: Store) -> None:
    """Issue #9: co-hosts and names, an approved listener's identity, blocks per space, and
    unlisted spaces, the same in both stores."""
    space, host, _ = store.create_space("Roles", None, listed=False)
    assert store.get_space(space.id) == space and not space.listed
    assert store.create_space("Open", None)[0].listed
    ana, _ = store.add_speaker(space.id, "Ana", Role.SPEAKER, identity="ana-session-id-1")
    assert store.get_speaker(space.id, ana.id) == ana and ana.identity == "ana-session-id-1"
    store.update_speaker(space.id, ana.id, role=Role.COHOST, name="Ana B")
    store.update_speaker(space.id, host.id, name="Dewi")
    got = store.get_speaker(space.id, ana.id)
    assert got is not None and got.role is Role.COHOST and got.name == "Ana B"
    assert [s.name for s in store.speakers(space.id)] == ["Dewi", "Ana B"]
    assert not store.is_blocked(space.id, "ana-session-id-1")
    store.block(space.id, "ana-session-id-1")
    store.block(space.id, "ana-session-id-1")  # twice is once
    assert store.is_blocked(space.id, "ana-session-id-1")
    assert not store.is_blocked(space.id, "someone-else")
    other, _, _ = store.create_space("Other", None)
    assert not store.is_blocked(other.id, "ana-session-id-1")


def test_the_podcast_lists_made_public_recordings_newest_first(store: Store) -> None:
    made = []
    for i, (listed, tags) in enumerate(
        [(True, ("jazz",)), (False, ("jazz",)), (True, ()), (True, ("Jazz", "kopi")), (True, ())]
    ):
        space, _, _ = store.create_space(f"Talk {i}", None, tags=tags, listed=listed)
        store.set_state(space.id, State.ENDED, utcnow() + timedelta(minutes=i))
        made.append(space.id)
    for sid in made[:4]:  # the last one's recording is not made yet
        store.set_recording(sid, 1000, 62.5)
    store.delete_recording(made[2])
    got = store.recent_recordings(10)
    assert [s.id for s in got] == [made[3], made[0]]  # unlisted, deleted and unmade left out
    assert got[0].recording_bytes == 1000 and got[0].recording_s == 62.5
    assert [s.id for s in store.recent_recordings(10, tag="JAZZ")] == [made[3], made[0]]
    assert [s.id for s in store.recent_recordings(10, tag="kopi")] == [made[3]]
    assert [s.id for s in store.recent_recordings(1)] == [made[3]]


def test_redis_knows_which_node_runs_a_space(redis_url: str) -> None:
    a = RedisSpaceStore(client(redis_url), "http://node-a")
    b = RedisSpaceStore(client(redis_url), "http://node-b")
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


def test_a_media_process_sees_and_resumes_only_its_spaces(tmp_path: Path) -> None:
    path = tmp_path / "db.sqlite3"
    zero, one, worker = SpaceStore(path, 0), SpaceStore(path, 1), SpaceStore(path)
    a, _, _ = zero.create_space("On 0", None)
    b, _, _ = one.create_space("On 1", None)
    assert (worker.get_space(a.id).media, worker.get_space(b.id).media) == (0, 1)
    assert [s.id for s in zero.spaces_in_state(State.LIVE)] == [a.id]
    assert {s.id for s in worker.spaces_in_state(State.LIVE)} == {a.id, b.id}
    speaker, _ = one.add_speaker(b.id, "Guest", Role.SPEAKER)
    one.update_speaker(b.id, speaker.id, on_stage=True)
    zero.clear_on_stage()  # media process 0 restarted: 1's speakers are still on stage
    assert worker.get_speaker(b.id, speaker.id).on_stage
    one.move(b.id, 0)  # the node restarted with one media process
    assert {s.id for s in zero.spaces_in_state(State.LIVE)} == {a.id, b.id}


def test_a_database_from_before_media_processes_is_migrated(tmp_path: Path) -> None:
    import sqlite3

    path = tmp_path / "old.sqlite3"
    with sqlite3.connect(path) as db:
        db.execute(
            "CREATE TABLE spaces (id TEXT PRIMARY KEY, title TEXT NOT NULL, state TEXT NOT NULL,"
            " created_at TEXT NOT NULL, starts_at TEXT, started_at TEXT, ended_at TEXT)"
        )
        db.execute("INSERT INTO spaces VALUES ('abcdefghjk','Old','live',?,NULL,NULL,NULL)",
                   (utcnow().isoformat(),))  # fmt: skip
    store = SpaceStore(path, 0)
    assert [s.id for s in store.spaces_in_state(State.LIVE)] == ["abcdefghjk"]


def test_nodes_report_their_load_through_redis(redis_url: str) -> None:
    a = RedisSpaceStore(client(redis_url), "http://node-a", 0)
    b = RedisSpaceStore(client(redis_url), "http://node-b", 1)
    a.report_load(0, {"cores": 0.3, "budget": 0.8, "room_for_space": True})
    b.report_load(1, {"cores": 0.1, "budget": 0.8, "room_for_space": True})
    loads = a.node_loads()
    assert loads == {
        "http://node-a": [{"cores": 0.3, "budget": 0.8, "room_for_space": True}],
        "http://node-b": [{"cores": 0.1, "budget": 0.8, "room_for_space": True}],
    }


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
    a = RedisSpaceStore(client(redis_url), "http://node-a")
    b = RedisSpaceStore(client(redis_url), "http://node-b")
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
    assert old_space is not None and old_space.state is State.LIVE and old_space.tags == ()
    store.create_space("New", None, "10.0.0.1", "10.0.0.0/24")
    c = store.creation_counts("10.0.0.1", "10.0.0.0/24", utcnow() - timedelta(seconds=60))
    assert (c.open_by_address, c.open_on_node, c.recent_on_node) == (1, 2, 1)
    store.close()
    SpaceStore(path).close()  # and opening it again changes nothing


def test_a_deleted_recording_is_marked_for_every_reader(store: Store) -> None:
    space, _, _ = store.create_space("Kept", None)
    store.set_state(space.id, State.ENDED, utcnow())
    got = store.get_space(space.id)
    assert got is not None and not got.recording_deleted
    store.delete_recording(space.id)
    got = store.get_space(space.id)
    assert got is not None and got.recording_deleted and got.state is State.ENDED


def test_redis_tells_every_worker_of_a_deleted_recording(redis_url: str) -> None:
    store = RedisSpaceStore(client(redis_url), "http://node-a")
    space, _, _ = store.create_space("Told", None)
    listener = client(redis_url).pubsub()
    listener.subscribe("ruang:events")
    listener.get_message(timeout=1.0)  # the subscription's confirmation
    store.delete_recording(space.id)
    message = listener.get_message(timeout=2.0)
    assert message is not None and message["data"] == f"{space.id} recording_deleted"
    listener.close()
    store.close()
