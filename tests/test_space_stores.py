"""The two space stores behind one interface: SQLite (one node) and Redis (several nodes)
answer the same calls the same way; Redis adds which node runs a space."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from ruang.spaces.model import Role, State, utcnow
from ruang.store.base import Store
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
