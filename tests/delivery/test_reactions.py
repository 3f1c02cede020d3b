"""Reactions: a fixed set of kinds, a pace per person, counts per space."""

from __future__ import annotations

from ruang.delivery.reactions import REACTION_BURST, REACTION_EVERY_S, Reactions

SPACE = "abcdefghij"


def reactions() -> Reactions:
    known = object()
    return Reactions(
        lambda space, cred: cred if cred and cred.startswith("t-") else None,
        lambda s: known if s == SPACE else None,  # type: ignore[arg-type,return-value]
    )


def test_reactions_are_counted_per_space_and_kind() -> None:
    r = reactions()
    assert r.react(SPACE, "t-ann", '{"kind": "👏"}'.encode(), 0.0).status == 202
    assert r.react(SPACE, "t-bob", '{"kind": "👏"}'.encode(), 0.0).status == 202
    assert r.react(SPACE, "t-bob", '{"kind": "🔥"}'.encode(), 0.0).status == 202
    assert r.take() == {SPACE: {"👏": 2, "🔥": 1}}
    assert r.take() == {}


def test_refusals_before_counting() -> None:
    r = reactions()
    assert r.react("zzzzzzzzzz", "t-ann", b'{"kind": "x"}', 0.0).status == 404
    assert r.react(SPACE, None, '{"kind": "👏"}'.encode(), 0.0).status == 401
    assert r.react(SPACE, "forged", '{"kind": "👏"}'.encode(), 0.0).status == 401
    assert r.react(SPACE, "t-ann", '{"kind": "💩"}'.encode(), 0.0).status == 422
    assert r.react(SPACE, "t-ann", b"not json", 0.0).status == 400
    assert r.react(SPACE, "t-ann", b"[1]", 0.0).status == 422
    assert r.take() == {}


def test_one_person_is_held_to_a_pace() -> None:
    r = reactions()
    body = '{"kind": "👏"}'.encode()
    statuses = [r.react(SPACE, "t-ann", body, 0.0).status for _ in range(REACTION_BURST + 3)]
    assert statuses == [202] * REACTION_BURST + [429] * 3
    assert r.react(SPACE, "t-bob", body, 0.0).status == 202  # another person is not held
    assert r.react(SPACE, "t-ann", body, REACTION_EVERY_S).status == 202  # the pace, later
    assert r.take() == {SPACE: {"👏": REACTION_BURST + 2}}
    assert r.refused == 3
