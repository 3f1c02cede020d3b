"""Listener tickets: short-lived HMAC-SHA256 capabilities to one space's HLS.

A ticket travels in the URL *path* — ``/hls/{space}/t/{ticket}/live.m3u8`` — so that the
relative URIs inside a playlist (``0.1.m4s``) inherit it without the playlist naming it: one
playlist serves every listener, and an edge keeps the ticket out of its cache key by dropping
that path component. Checking a ticket is one HMAC over ~40 bytes: no database, no I/O.

Format: ``{listener}.{expires}.{mac}`` where listener is 11 url-safe characters (64 random bits,
counted for audience figures), expires is Unix seconds, and mac is the unpadded url-safe base64
HMAC-SHA256 of ``"{space}.{listener}.{expires}"`` under the node's ticket key. The nginx edge
(deploy/nginx) verifies the same string in LuaJIT.
"""

from __future__ import annotations

import base64
import hmac
import os
import re
import secrets
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path

TICKET_TTL_S = 15 * 60  # seconds a ticket admits its holder; pages renew at half-life
_SHAPE = re.compile(r"^([A-Za-z0-9_-]{11})\.(\d{10})\.([A-Za-z0-9_-]{43})$")
KEY_BYTES = 32
VERIFIED_CACHE = 200_000  # good tickets remembered per worker (~40 MB at most)


class TicketError(Exception):
    """Why a ticket was refused: `code` is missing, malformed, forged or expired."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


@dataclass(frozen=True, slots=True)
class Ticket:
    """A verified ticket."""

    listener: str
    expires: int


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def load_or_create_key(path: Path, configured: str = "") -> bytes:
    """The ticket key: from configuration (hex or any string ≥ 32 chars, shared by every node),
    else from a 0600 file in the data folder, created on first start."""
    if configured:
        if len(configured) < 32:
            raise ValueError("the ticket key must be at least 32 characters")
        return configured.encode()
    try:
        return path.read_bytes()
    except FileNotFoundError:
        path.parent.mkdir(parents=True, exist_ok=True)
        key = secrets.token_hex(KEY_BYTES).encode()
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        try:
            os.write(fd, key)
        finally:
            os.close(fd)
        return key
    except OSError as exc:
        raise ValueError(f"cannot read the ticket key at {path}: {exc}") from exc


class TicketSigner:
    """Issues and checks tickets for every space of a deployment (all nodes share the key)."""

    def __init__(self, key: bytes, ttl_s: int = TICKET_TTL_S) -> None:
        if len(key) < 32:
            raise ValueError("ticket key too short")
        self._key = key
        self.ttl_s = ttl_s
        self._verified: OrderedDict[tuple[str, str], Ticket] = OrderedDict()

    def _mac(self, space_id: str, listener: str, expires: int) -> str:
        msg = f"{space_id}.{listener}.{expires}".encode()
        return _b64(hmac.digest(self._key, msg, "sha256"))  # one-shot: the C fast path

    def issue(self, space_id: str, now: float, listener: str | None = None) -> str:
        """A ticket for `space_id` valid for ttl_s from `now`; `listener` keeps the identity of
        a renewing listener (a new one is drawn otherwise)."""
        who = listener or _b64(os.urandom(8))
        expires = int(now) + self.ttl_s
        return f"{who}.{expires}.{self._mac(space_id, who, expires)}"

    def verify(self, ticket: str | None, space_id: str, now: float) -> Ticket:
        """The ticket's contents, or TicketError. Constant-time MAC comparison."""
        if not ticket:
            raise TicketError("missing", "A listener ticket is required: POST …/join first.")
        m = _SHAPE.match(ticket)
        if m is None:
            raise TicketError("malformed", "This is not a listener ticket.")
        listener, expires_s, mac = m.groups()
        expires = int(expires_s)
        if not hmac.compare_digest(mac, self._mac(space_id, listener, expires)):
            raise TicketError("forged", "This ticket was not issued for this space.")
        if expires < now:
            raise TicketError("expired", "This ticket has expired: join again.")
        return Ticket(listener, expires)

    def classify(self, ticket: str, space_id: str, now: float) -> str:
        """What a ticket is, for the evidence: "valid", "expired" or "forged" (malformed
        counts as forged). Uses `verify_cached`: a good ticket costs a dict lookup."""
        try:
            self.verify_cached(ticket, space_id, now)
        except TicketError as exc:
            return "expired" if exc.code == "expired" else "forged"
        return "valid"

    def verify_cached(self, ticket: str | None, space_id: str, now: float) -> Ticket:
        """`verify`, remembering good tickets: a player presents the same ticket a few times
        a second, and one HMAC per ticket is enough. Expiry is still checked every time."""
        held = self._verified.get((space_id, ticket or ""))
        if held is None:
            held = self.verify(ticket, space_id, now)
            self._verified[(space_id, ticket or "")] = held
            if len(self._verified) > VERIFIED_CACHE:
                self._verified.popitem(last=False)
        elif held.expires < now:
            raise TicketError("expired", "This ticket has expired: join again.")
        return held
