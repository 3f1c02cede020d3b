"""Roles and the stage over HTTP against a real server (issue #9): every action for every role
(host, co-host, speaker, listener with a session, anonymous) gets the status of one table,
EXPECTED; adding an action there adds its five rows. Each row runs in a space of its own,
from a source address of its own (per-source limits stay out of the way)."""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest

from ruang.spaces.model import Role
from ruang.spaces.permissions import Action, Actor, check
from ruangtest import RuangServer, free_port, from_address

KEY = "a-create-key-for-the-permission-matrix"
ACTORS = ("host", "cohost", "speaker", "listener", "anonymous")


@dataclass
class Stage:
    """A space with one of each: host, co-host (and a second one when asked), speaker, a
    target speaker (muted), a listener with a session and a listener waiting to speak."""

    api: httpx.Client
    id: str
    tokens: dict[str, str]  # host, cohost, cohost2, speaker, target
    ids: dict[str, str]
    cookies: dict[str, str]  # listener, asker
    request_id: str
    origin: str
    extra: dict[str, Any] = field(default_factory=dict)

    def creds(self, actor: str) -> dict[str, str]:
        """The headers an actor sends: a stage token, or the session cookie (with the JSON
        content type and Origin a real page sends), or nothing."""
        h = {"Content-Type": "application/json"}
        if actor in self.tokens:
            h["Authorization"] = f"Bearer {self.tokens[actor]}"
        elif actor == "listener":
            h["Cookie"] = self.cookies["listener"]
            h["Origin"] = self.origin
        return h


def session(api: httpx.Client, name: str, origin: str) -> str:
    r = api.post("/api/session", json={"name": name}, headers={"Origin": origin})
    assert r.status_code == 201, r.text
    api.cookies.clear()  # each actor sends only its own credentials
    return "ruang_session=" + r.cookies["ruang_session"]


def make_stage(api: httpx.Client, origin: str, two_cohosts: bool) -> Stage:
    r = api.post(
        "/api/spaces", json={"title": "Matrix"}, headers={"Authorization": f"Bearer {KEY}"}
    )
    assert r.status_code == 201, r.text
    space = r.json()
    sid, host = space["id"], space["host_token"]
    auth = {"Authorization": f"Bearer {host}"}
    tokens, ids = (
        {"host": host},
        {"host": api.get(f"/api/spaces/{sid}", headers=auth).json()["you"]["id"]},
    )
    for who in (
        ("cohost", "cohost2", "speaker", "target")
        if two_cohosts
        else ("cohost", "speaker", "target")
    ):
        r = api.post(f"/api/spaces/{sid}/speakers", json={"name": who}, headers=auth)
        assert r.status_code == 201, r.text
        tokens[who], ids[who] = r.json()["token"], r.json()["id"]
        if who.startswith("cohost"):
            r = api.post(
                f"/api/spaces/{sid}/speakers/{ids[who]}/role", json={"role": "cohost"}, headers=auth
            )
            assert r.status_code == 200 and r.json()["role"] == "cohost", r.text
    r = api.post(
        f"/api/spaces/{sid}/speakers/{ids['target']}/mute", json={"muted": True}, headers=auth
    )
    assert r.status_code == 200, r.text
    cookies = {"listener": session(api, "Lia", origin), "asker": session(api, "Asa", origin)}
    r = api.post(
        f"/api/spaces/{sid}/requests",
        json={},
        headers={"Cookie": cookies["asker"], "Origin": origin},
    )
    assert r.status_code == 201, r.text
    return Stage(api, sid, tokens, ids, cookies, r.json()["id"], origin)


def own(stage: Stage, actor: str) -> str:
    """The actor's own seat, or (for those without one) the target's."""
    return stage.ids.get(actor, stage.ids["target"])


# action: (method, path after /api/spaces/{id}, JSON body, needs a second co-host), from the
# stage and the actor; and the statuses for host, co-host, speaker, listener, anonymous.
Call = Callable[[Stage, str], tuple[str, str, dict[str, Any] | None]]
CALLS: dict[str, tuple[Call, bool]] = {
    "start": (lambda s, a: ("POST", "/start", None), False),
    "end": (lambda s, a: ("POST", "/end", None), False),
    "delete_recording": (lambda s, a: ("DELETE", "/recording", None), False),
    "invite": (lambda s, a: ("POST", "/speakers", {"name": "New"}), False),
    "list_requests": (lambda s, a: ("GET", "/requests", None), False),
    "request": (lambda s, a: ("POST", "/requests", {}), False),
    "approve": (lambda s, a: ("POST", f"/requests/{s.request_id}/approve", None), False),
    "deny": (lambda s, a: ("POST", f"/requests/{s.request_id}/deny", None), False),
    "mute_self": (lambda s, a: ("POST", f"/speakers/{own(s, a)}/mute", {"muted": True}), False),
    "unmute_self": (
        lambda s, a: ("POST", f"/speakers/{own(s, a)}/mute", {"muted": False}),
        False,
    ),
    "mute_other": (
        lambda s, a: (
            "POST",
            f"/speakers/{s.ids['speaker' if a != 'speaker' else 'target']}/mute",
            {"muted": True},
        ),
        False,
    ),
    "unmute_other": (
        lambda s, a: ("POST", f"/speakers/{s.ids['target']}/mute", {"muted": False}),
        False,
    ),
    "mute_all": (lambda s, a: ("POST", "/mute-all", None), False),
    "to_audience": (lambda s, a: ("POST", f"/speakers/{s.ids['target']}/audience", None), False),
    "remove": (lambda s, a: ("DELETE", f"/speakers/{s.ids['target']}", None), False),
    "block": (lambda s, a: ("POST", f"/speakers/{s.ids['target']}/block", None), False),
    "remove_host": (lambda s, a: ("DELETE", f"/speakers/{s.ids['host']}", None), False),
    "block_host": (lambda s, a: ("POST", f"/speakers/{s.ids['host']}/block", None), False),
    "demote_host": (
        lambda s, a: ("POST", f"/speakers/{s.ids['host']}/role", {"role": "speaker"}),
        False,
    ),
    "remove_cohost": (lambda s, a: ("DELETE", f"/speakers/{s.ids['cohost2']}", None), True),
    "make_cohost": (
        lambda s, a: ("POST", f"/speakers/{s.ids['target']}/role", {"role": "cohost"}),
        False,
    ),
    "third_cohost": (
        lambda s, a: ("POST", f"/speakers/{s.ids['target']}/role", {"role": "cohost"}),
        True,
    ),
    "make_speaker": (
        lambda s, a: ("POST", f"/speakers/{s.ids['cohost2']}/role", {"role": "speaker"}),
        True,
    ),
    "hand_over": (lambda s, a: ("POST", "/host", {"speaker": s.ids["cohost2"]}), True),
    "rename_self": (lambda s, a: ("PATCH", "/me", {"name": "Renamed"}), False),
}
EXPECTED: dict[str, tuple[int, int, int, int, int]] = {
    #                host cohost speaker listener anonymous
    "start": (200, 403, 403, 403, 401),
    "end": (200, 403, 403, 403, 401),
    "delete_recording": (409, 403, 403, 403, 401),  # the host: not while live
    "invite": (201, 201, 403, 403, 401),
    "list_requests": (200, 200, 403, 403, 401),
    "request": (409, 409, 409, 201, 401),
    "approve": (200, 200, 403, 403, 401),
    "deny": (200, 200, 403, 403, 401),
    "mute_self": (200, 200, 200, 403, 401),
    "unmute_self": (200, 200, 200, 403, 401),
    "mute_other": (200, 200, 403, 403, 401),
    "unmute_other": (403, 403, 403, 403, 401),
    "mute_all": (200, 200, 403, 403, 401),
    "to_audience": (200, 200, 403, 403, 401),
    "remove": (200, 200, 403, 403, 401),
    "block": (200, 200, 403, 403, 401),
    "remove_host": (409, 403, 403, 403, 401),
    "block_host": (409, 403, 403, 403, 401),
    "demote_host": (409, 403, 403, 403, 401),
    "remove_cohost": (200, 403, 403, 403, 401),
    "make_cohost": (200, 403, 403, 403, 401),
    "third_cohost": (409, 403, 403, 403, 401),
    "make_speaker": (200, 403, 403, 403, 401),
    "hand_over": (200, 403, 403, 403, 401),
    "rename_self": (200, 200, 200, 403, 401),
}
CELLS = [
    (action, actor, EXPECTED[action][i])
    for action, (i, actor) in itertools.product(EXPECTED, enumerate(ACTORS))
]


# The permission module's action and the target's role behind each row.
RULE: dict[str, tuple[Action, Role | None]] = {
    "start": (Action.START, None),
    "end": (Action.END, None),
    "delete_recording": (Action.DELETE_RECORDING, None),
    "invite": (Action.INVITE, None),
    "list_requests": (Action.LIST_REQUESTS, None),
    "request": (Action.REQUEST, None),
    "approve": (Action.APPROVE, None),
    "deny": (Action.DENY, None),
    "mute_self": (Action.MUTE_SELF, None),
    "unmute_self": (Action.UNMUTE_SELF, None),
    "mute_other": (Action.MUTE_OTHER, Role.SPEAKER),
    "unmute_other": (Action.UNMUTE_OTHER, Role.SPEAKER),
    "mute_all": (Action.MUTE_ALL, None),
    "to_audience": (Action.TO_AUDIENCE, Role.SPEAKER),
    "remove": (Action.REMOVE, Role.SPEAKER),
    "block": (Action.BLOCK, Role.SPEAKER),
    "remove_host": (Action.REMOVE, Role.HOST),
    "block_host": (Action.BLOCK, Role.HOST),
    "demote_host": (Action.MAKE_SPEAKER, Role.HOST),
    "remove_cohost": (Action.REMOVE, Role.COHOST),
    "make_cohost": (Action.MAKE_COHOST, Role.SPEAKER),
    "third_cohost": (Action.MAKE_COHOST, Role.SPEAKER),
    "make_speaker": (Action.MAKE_SPEAKER, Role.COHOST),
    "hand_over": (Action.HAND_OVER, Role.COHOST),
    "rename_self": (Action.RENAME_SELF, None),
}
STATE_CONFLICTS = {
    ("third_cohost", "host"),
    ("request", "host"),
    ("request", "cohost"),
    ("request", "speaker"),
    ("delete_recording", "host"),
}


def test_the_table_covers_every_action_and_agrees_with_the_rules() -> None:
    """Every action of the permission module has a row, and the pure module gives every
    cell's refusal itself (the stage's state adds only the 409s listed)."""
    assert set(RULE) == set(EXPECTED) == set(CALLS)
    assert {action for action, _ in RULE.values()} == set(Action)
    for row, (action, target) in RULE.items():
        for i, actor in enumerate(ACTORS):
            refusal = check(Actor(actor), action, target)
            expected = EXPECTED[row][i]
            if refusal is None:
                assert expected < 300 or (row, actor) in STATE_CONFLICTS, (row, actor)
            elif (row, actor) not in STATE_CONFLICTS:
                assert refusal.status == expected, (row, actor, refusal)


@pytest.fixture(scope="module")
def matrix_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RuangServer]:
    s = RuangServer(
        tmp_path_factory.mktemp("roles") / "data", free_port(), env={"RUANG_CREATE_KEY": KEY}
    )
    s.start()
    yield s
    s.stop()


_sources = itertools.count(1)


@pytest.mark.parametrize(
    ("action", "actor", "status"), CELLS, ids=[f"{a}-{b}" for a, b, _ in CELLS]
)
def test_permission_matrix(
    matrix_server: RuangServer, action: str, actor: str, status: int
) -> None:
    n = next(_sources)
    with from_address(matrix_server.url, f"127.{10 + n // 250}.{n % 250}.1") as api:
        call, two_cohosts = CALLS[action]
        stage = make_stage(api, matrix_server.url, two_cohosts)
        method, path, body = call(stage, actor)
        r = api.request(
            method, f"/api/spaces/{stage.id}{path}", json=body, headers=stage.creds(actor)
        )
        assert r.status_code == status, f"{action} by {actor}: {r.status_code} {r.text}"
        if r.status_code >= 400:
            assert r.json()["error"] and r.json()["message"], r.text
        else:
            stage.extra["ok"] = r.json() if r.content else None
        for token in (stage.tokens["host"], stage.tokens.get("cohost2", "")):  # free the room
            if (
                token
                and api.post(
                    f"/api/spaces/{stage.id}/end", headers={"Authorization": f"Bearer {token}"}
                ).status_code
                == 200
            ):
                break
