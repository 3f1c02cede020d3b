"""Sessions: a display name and a random identity, signed, in a cookie (no account, no e-mail).

Listening needs none. Taking part (asking to speak, reacting) needs one: `POST /api/session`
with `{"name": ...}` sets the cookie. The value is ``{identity}.{issued}.{name}.{mac}``:
identity 16 url-safe characters (96 random bits), issued Unix seconds, name url-safe base64 of
the UTF-8 display name, mac the url-safe base64 HMAC-SHA256 of the first three under a key
derived from the node's ticket key (so every node of a deployment checks every session, and a
session is never mistaken for a ticket: the derivation differs). Nothing is stored server-side:
a session is as good as its MAC and its age (SESSION_TTL_S).

The cookie is `HttpOnly` (scripts cannot read it), `SameSite=Lax` (not sent on cross-site
POSTs), `Secure` when the public URL is https, `Path=/`. Cookie-authenticated writes must also
pass `csrf_refusal`: a JSON body (a cross-site form cannot send one without a preflight, which
is never granted with credentials) and, when the browser sends it, an Origin of this server.
"""

from __future__ import annotations

import base64
import binascii
import hmac
import os
import re
from dataclasses import dataclass

from ruang.errors import ApiError

COOKIE = "ruang_session"
SESSION_TTL_S = 30 * 24 * 3600  # a session (a display name) lasts 30 days, seconds
_SHAPE = re.compile(
    r"^([A-Za-z0-9_-]{16})\.(\d{1,12})\.([A-Za-z0-9_-]{1,120})\.([A-Za-z0-9_-]{43})$"
)


@dataclass(frozen=True, slots=True)
class Session:
    """A verified session."""

    identity: str
    name: str
    issued: int


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


class SessionSigner:
    """Issues and checks session cookies under a key derived from the ticket key."""

    def __init__(self, ticket_key: bytes, secure: bool, ttl_s: int = SESSION_TTL_S) -> None:
        if len(ticket_key) < 32:
            raise ValueError("ticket key too short")
        self._key = hmac.digest(ticket_key, b"ruang.session", "sha256")
        self.secure = secure
        self.ttl_s = ttl_s

    def _mac(self, body: str) -> str:
        return _b64(hmac.digest(self._key, body.encode(), "sha256"))

    def issue(self, name: str, now: float, identity: str | None = None) -> str:
        """A session value for `name`; `identity` keeps a person's identity when they rename."""
        who = identity or _b64(os.urandom(12))
        body = f"{who}.{int(now)}.{_b64(name.encode())}"
        return f"{body}.{self._mac(body)}"

    def verify(self, value: str | None, now: float) -> Session | None:
        """The session, or None if missing, malformed, forged or expired (constant-time MAC)."""
        m = _SHAPE.match(value or "")
        if m is None:
            return None
        identity, issued_s, name_b64, mac = m.groups()
        if not hmac.compare_digest(mac, self._mac(f"{identity}.{issued_s}.{name_b64}")):
            return None
        issued = int(issued_s)
        if issued + self.ttl_s < now or issued > now + 60:
            return None
        try:
            name = _unb64(name_b64).decode()
        except (binascii.Error, UnicodeDecodeError):
            return None
        return Session(identity, name, issued)

    def cookie(self, value: str) -> str:
        """The Set-Cookie header value carrying `value`."""
        secure = "; Secure" if self.secure else ""
        return f"{COOKIE}={value}; Path=/; Max-Age={self.ttl_s}; HttpOnly; SameSite=Lax{secure}"

    def cleared(self) -> str:
        """The Set-Cookie header value that forgets the session."""
        secure = "; Secure" if self.secure else ""
        return f"{COOKIE}=; Path=/; Max-Age=0; HttpOnly; SameSite=Lax{secure}"


def cookie_value(header: str | None) -> str | None:
    """The session cookie's value in a Cookie header, if any."""
    for part in (header or "").split(";"):
        name, _, value = part.strip().partition("=")
        if name == COOKIE:
            return value or None
    return None


def origin_of(url: str) -> str:
    """scheme://host[:port] of an absolute URL."""
    scheme, _, rest = url.partition("://")
    return f"{scheme}://{rest.split('/', 1)[0]}".lower()


def csrf_refusal(
    origin: str | None, fetch_site: str | None, content_type: str | None, own_origin: str
) -> ApiError | None:
    """Why a cookie-authenticated write looks forged cross-site, or None. A cross-site page
    can make a browser send a form (urlencoded, multipart, text/plain) with the cookie, but not
    a JSON body: that needs a CORS preflight, and this server never allows credentials to
    another origin. Origin (unless "null") and Sec-Fetch-Site, when the browser sends them,
    must say the request comes from this server's own pages."""
    ctype = (content_type or "").split(";")[0].strip().lower()
    if ctype != "application/json":
        return ApiError(
            415,
            "json_required",
            f"Send this as application/json (not {ctype or 'nothing'}); forms are refused "
            "so that no other site can post them on your behalf.",
        )
    # Origin is "null" on a same-origin POST from a page with Referrer-Policy no-referrer
    # (Ruang's pages): Sec-Fetch-Site, sent by current browsers whatever the policy, decides.
    if origin is not None and origin.lower() not in (own_origin, "null"):
        return ApiError(403, "cross_site", f"Requests from {origin} cannot act on this server.")
    if fetch_site is not None and fetch_site.lower() not in ("same-origin", "none"):
        return ApiError(403, "cross_site", f"A {fetch_site} request cannot act on this server.")
    return None
