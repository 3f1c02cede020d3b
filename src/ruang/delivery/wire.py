"""HTTP/1.1 on the wire for the delivery workers' server: status lines, response heads, a
parsed request, and the paths answered without the framework (HLS and join)."""

from __future__ import annotations

from dataclasses import dataclass, field

from ruang.delivery.guard import Described
from ruang.delivery.hls import HlsResponse

NOTHING = Described("other", None, None)  # a request not (yet) understood

REASONS = {
    200: b"OK",
    204: b"No Content",
    206: b"Partial Content",
    302: b"Found",
    304: b"Not Modified",
    400: b"Bad Request",
    401: b"Unauthorized",
    403: b"Forbidden",
    404: b"Not Found",
    405: b"Method Not Allowed",
    408: b"Request Timeout",
    413: b"Payload Too Large",
    415: b"Unsupported Media Type",
    422: b"Unprocessable Content",
    428: b"Precondition Required",
    429: b"Too Many Requests",
    431: b"Header Too Large",
    500: b"Internal Server Error",
    502: b"Bad Gateway",
    503: b"Service Unavailable",
}


STATUS_LINES = {code: b"HTTP/1.1 %d %s\r\n" % (code, reason) for code, reason in REASONS.items()}


@dataclass(slots=True)
class Request:
    """One request as parsed, then as understood (path, parameters, source, class)."""

    method: str = ""
    url: bytes = b""
    headers: list[tuple[bytes, bytes]] = field(default_factory=list)
    body: bytearray = field(default_factory=bytearray)
    keep_alive: bool = True
    http_version: str = "1.1"
    # set once the request is complete:
    path: str = ""
    query: bytes = b""
    params: dict[str, str] = field(default_factory=dict)  # HLS requests' query parameters
    about: Described = NOTHING
    hls: tuple[str, str | None, str] | None = None  # (space, ticket, name) of an HLS path
    listener: str = ""  # the listener id its ticket names (valid or not), if it has one
    ip: str = ""  # the client (a trusted edge's forwarded address, else the peer)
    network: str = ""
    refusal: HlsResponse | None = None  # answered so, without any work
    limit_later: bool = False  # its source's budget is shared (Redis): checked when dispatched


def head(
    status: int, headers: list[tuple[bytes, bytes]], length: int | None, keep_alive: bool
) -> bytes:
    """A response head: status line, headers, length (if known), close (if not kept)."""
    lines = [b"HTTP/1.1 %d %s" % (status, REASONS.get(status, b"Unknown"))]
    lines += [k + b": " + v for k, v in headers]
    if length is not None:
        lines.append(b"content-length: %d" % length)
    if not keep_alive:
        lines.append(b"connection: close")
    return b"\r\n".join(lines) + b"\r\n\r\n"


def split_hls(path: str) -> tuple[str, str | None, str] | None:
    """(space, ticket, name) for /hls/{space}/{name} and /hls/{space}/t/{ticket}/{name}."""
    return split_hls_parts(path.split("/"))


def split_hls_parts(parts: list[str]) -> tuple[str, str | None, str] | None:
    """`split_hls` of a path already split at its slashes."""
    if len(parts) == 4 and parts[1] == "hls":
        return parts[2], None, parts[3]
    if len(parts) == 6 and parts[1] == "hls" and parts[3] == "t":
        return parts[2], parts[4], parts[5]
    return None


def split_join(path: str) -> str | None:
    """The space of POST /api/spaces/{space}/join."""
    parts = path.split("/")
    if len(parts) == 5 and parts[1] == "api" and parts[2] == "spaces" and parts[4] == "join":
        return parts[3]
    return None


def header(request: Request, name: bytes) -> bytes | None:
    """The first value of a (lower-case) header, if sent."""
    for key, value in request.headers:
        if key == name:
            return value
    return None


def content_type(request: Request) -> str | None:
    """The request's Content-Type, if sent."""
    value = header(request, b"content-type")
    return None if value is None else value.decode("latin-1")


def has_session(request: Request) -> bool:
    """Whether the request carries a session cookie (issue #9: its join is checked against
    the space's blocks by the app, off the inline path)."""
    value = header(request, b"cookie")
    return value is not None and b"ruang_session=" in value


class Refusal(Exception):
    """Raised from a parser callback: answer `status` with this code and message, then close."""

    def __init__(self, status: int, code: bytes, message: bytes) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
