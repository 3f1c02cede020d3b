"""Listener tickets over HTTP: join hands one out, media needs it, forgeries are refused."""

from __future__ import annotations

import time

import httpx

from ruang.guard.tickets import TicketSigner
from ruangtest import join


def test_join_ticket_opens_hls_and_forgeries_do_not(server, api: httpx.Client) -> None:
    space = api.post("/api/spaces", json={"title": "Tickets"}).json()
    joined = join(api, space["id"])
    listen = joined["listen_url"]
    assert f"/hls/{space['id']}/t/{joined['ticket']}/live.m3u8" in listen
    assert joined["renew_after_s"] < joined["expires_in_s"]
    text = api.get(listen).text
    assert text.startswith("#EXTM3U")
    part = text.strip().splitlines()[-1].split('"')[1]  # the preload hint's URI
    assert api.get(listen.replace("live.m3u8", part)).status_code == 200

    ticket = joined["ticket"]
    forged = ticket[:-2] + ("AA" if not ticket.endswith("AA") else "BB")
    r = api.get(listen.replace(ticket, forged))
    assert r.status_code == 403 and r.json()["error"] == "ticket_forged"
    other = api.post("/api/spaces", json={"title": "Other"}).json()
    r = api.get(listen.replace(space["id"], other["id"]))
    assert r.status_code == 403

    key = (server.data_dir / "ticket.key").read_bytes()
    expired = TicketSigner(key, ttl_s=60).issue(space["id"], time.time() - 120)
    r = api.get(listen.replace(ticket, expired))
    assert r.status_code == 401 and r.json()["error"] == "ticket_expired"
    assert r.headers["cache-control"] == "no-store"
    r = api.get(listen.replace(ticket, "not-a-ticket"))
    assert r.status_code == 403 and r.json()["error"] == "ticket_malformed"


def test_renewal_keeps_the_listener_and_skips_the_line(api: httpx.Client) -> None:
    space = api.post("/api/spaces", json={"title": "Renew"}).json()
    first = join(api, space["id"])
    again = join(api, space["id"], {"ticket": first["ticket"]})
    assert again["ticket"].split(".")[0] == first["ticket"].split(".")[0]
    fresh = join(api, space["id"])
    assert fresh["ticket"].split(".")[0] != first["ticket"].split(".")[0]
