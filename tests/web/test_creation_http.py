"""Who may create spaces, over HTTP against a real server: the create key (401 missing, 403
wrong, 201 right), the per-address cap held by the real source address whatever a client
writes in X-Forwarded-For, and a trusted edge's forwarded address counted as the client's."""

from __future__ import annotations

import secrets
from typing import Any

import httpx

from ruangtest import from_address

KEY = "a-create-key-only-the-newsroom-knows"


def create(api: httpx.Client, headers: dict[str, str] | None = None) -> httpx.Response:
    return api.post("/api/spaces", json={"title": "Caps"}, headers=headers or {})


def refused(r: httpx.Response, status: int, code: str) -> dict[str, Any]:
    assert r.status_code == status, r.text
    body: dict[str, Any] = r.json()
    assert body["error"] == code and body["message"], body
    return body


def test_with_a_create_key_only_its_holders_create(server_factory) -> None:
    srv = server_factory(env={"RUANG_CREATE_KEY": KEY}, args=("--max-spaces-per-address", "1"))
    srv.start()
    with from_address(srv.url, "127.0.0.1") as api:
        r = refused(create(api), 401, "create_key_required")
        assert "create key" in r["message"]
        assert create(api).headers["www-authenticate"] == "Bearer"
        refused(create(api, {"Authorization": "Bearer not-the-key"}), 403, "create_key_refused")
        refused(create(api, {"Authorization": f"Bearer {KEY}x"}), 403, "create_key_refused")
        refused(create(api, {"Authorization": KEY}), 401, "create_key_required")  # no scheme
        for _ in range(3):  # a key holder is past the per-address cap of 1
            r2 = create(api, {"Authorization": f"Bearer {KEY}"})
            assert r2.status_code == 201, r2.text
            assert r2.json()["host_token"]
        # the refusals created nothing: three spaces, all the key holder's
        assert srv.log().count("created (") == 3


def test_a_forged_forwarded_address_does_not_escape_the_address_cap(server_factory) -> None:
    srv = server_factory(args=("--max-spaces-per-address", "2"))
    srv.start()
    with from_address(srv.url, "127.0.30.1") as api, from_address(srv.url, "127.0.31.1") as other:
        statuses = [
            create(api, {"X-Forwarded-For": f"198.51.100.{i}"}).status_code for i in range(4)
        ]
        assert statuses == [201, 201, 429, 429], statuses
        body = refused(create(api, {"X-Forwarded-For": "203.0.113.5"}), 429, "too_many_spaces")
        assert "address" in body["message"] and "2" in body["message"]
        assert create(other).status_code == 201  # another address keeps its own


def test_a_trusted_edge_names_the_client(server_factory) -> None:
    srv = server_factory(args=("--max-spaces-per-address", "1", "--trusted-proxy", "127.0.40.1"))
    srv.start()
    with from_address(srv.url, "127.0.40.1") as edge, from_address(srv.url, "127.0.41.1") as c:
        # behind the edge, two clients: each has its own cap of one
        for client in ("198.51.100.1", "198.51.100.2"):
            assert create(edge, {"X-Forwarded-For": f"10.9.9.9, {client}"}).status_code == 201
        r = create(edge, {"X-Forwarded-For": "198.51.100.1"})
        refused(r, 429, "too_many_spaces")
        # a client that is not the edge cannot claim to be someone else
        assert create(c, {"X-Forwarded-For": "198.51.100.3"}).status_code == 201
        refused(create(c, {"X-Forwarded-For": "198.51.100.4"}), 429, "too_many_spaces")


def test_a_network_creating_too_fast_is_told_when_to_come_back(server_factory) -> None:
    srv = server_factory(args=("--creations-per-min-per-network", "3"))
    srv.start()
    addresses = [f"127.0.50.{i}" for i in range(1, 6)]  # one /24, five addresses
    statuses, last = [], None
    for address in addresses:
        with from_address(srv.url, address) as api:
            last = create(api)
            statuses.append(last.status_code)
    assert statuses == [201, 201, 201, 429, 429], statuses
    assert last is not None
    refused(last, 429, "creating_too_fast")
    assert 1 <= int(last.headers["retry-after"]) <= 60
    with from_address(srv.url, "127.0.51.1") as elsewhere:  # another network is not refused
        assert create(elsewhere).status_code == 201


def test_the_caps_hold_across_a_restart(server_factory, tmp_path) -> None:
    args = ("--max-spaces-per-address", "2")
    first = server_factory(data_dir=tmp_path / "kept", args=args)
    first.start()
    with from_address(first.url, "127.0.60.1") as api:
        assert [create(api).status_code for _ in range(2)] == [201, 201]
    first.stop()
    again = server_factory(data_dir=tmp_path / "kept", args=args)
    again.start()
    with from_address(again.url, "127.0.60.1") as api:
        refused(create(api), 429, "too_many_spaces")  # the store remembers who created what


def test_two_nodes_count_the_real_client_whichever_creates_the_space(
    server_factory, tmp_path, redis_url: str
) -> None:
    env = {"REDIS_URL": redis_url, "RUANG_TICKET_KEY": secrets.token_hex(32)}
    args = ("--max-spaces-per-address", "2")
    one, two = (
        server_factory(data_dir=tmp_path / name, args=args, env=env) for name in ("n1", "n2")
    )
    one.start()
    two.start()
    with from_address(one.url, "127.0.70.1") as api, from_address(two.url, "127.0.70.1") as api2:
        made = [create(api) for _ in range(2)]
        assert [r.status_code for r in made] == [201, 201], [r.text for r in made]
        # node one placed the second space on node two, which counted this client, not node one
        hosts = {r.json()["whip_url"].split("/whip/")[0] for r in made}
        assert hosts == {one.url, two.url}, hosts
        refused(create(api), 429, "too_many_spaces")
        refused(create(api2), 429, "too_many_spaces")  # the same cap on every node
    with from_address(one.url, "127.0.71.1") as other:
        assert create(other).status_code == 201
