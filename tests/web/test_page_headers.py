"""Every page carries the security headers: a strict Content-Security-Policy (no inline
script; blob: only for media and workers), no framing, no referrer, no sniffing."""

from __future__ import annotations

import httpx

PAGES = (
    "/",
    "/s/{id}",
    "/s/{id}/replay",
    "/s/{id}/clips/abcdefghij",
    "/s/{id}/host",
    "/s/{id}/speak",
)


def test_every_page_has_the_security_headers(api: httpx.Client) -> None:
    space = api.post("/api/spaces", json={"title": "Headers"}).json()
    for page in PAGES:
        r = api.get(page.format(id=space["id"]))
        assert r.status_code == 200 and r.headers["content-type"].startswith("text/html"), page
        csp = {
            d.split()[0]: d.split()[1:] for d in r.headers["content-security-policy"].split("; ")
        }
        assert csp["script-src"] == ["'self'"], page  # no inline script, no eval
        assert csp["frame-ancestors"] == ["'none'"] and csp["object-src"] == ["'none'"]
        assert csp["connect-src"] == ["'self'"] and csp["default-src"] == ["'self'"]
        assert "blob:" in csp["media-src"] and "blob:" in csp["worker-src"]  # hls.js (MSE)
        assert r.headers["referrer-policy"] == "no-referrer", page
        assert r.headers["x-content-type-options"] == "nosniff", page
        assert "<script>" not in r.text and " on" + "click=" not in r.text, page
