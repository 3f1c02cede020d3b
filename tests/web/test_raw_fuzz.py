"""The raw HTTP and JSON surface of a real server, spoken to over sockets: malformed request
lines, huge headers, bad chunked encoding, invalid UTF-8, deep nesting, duplicate keys and
lying lengths. Every answer is a 4xx (never a 5xx) and the server stays up."""

from __future__ import annotations

import re
import socket
import time

import httpx

from ruangtest import RuangServer

DEPTH = 10_000  # deeper than Python's default recursion limit (1000)


def exchange(port: int, data: bytes, quiet_s: float = 0.5) -> bytes:
    """Send raw bytes; collect what comes back until the server closes or goes quiet."""
    with socket.create_connection(("127.0.0.1", port), timeout=5) as s:
        s.sendall(data)
        s.settimeout(quiet_s)
        out = b""
        try:
            while chunk := s.recv(65536):
                out += chunk
        except (TimeoutError, ConnectionResetError):
            pass
        return out


def post(path: bytes, body: bytes, ctype: bytes = b"application/json") -> bytes:
    """A POST with a correct Content-Length."""
    return (
        b"POST %s HTTP/1.1\r\nHost: x\r\nContent-Type: %s\r\nContent-Length: %d\r\n"
        b"Connection: close\r\n\r\n" % (path, ctype, len(body))
    ) + body


def chunked(path: bytes, chunks: bytes) -> bytes:
    """A POST whose body is sent with Transfer-Encoding: chunked, as given."""
    return (
        b"POST %s HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
        b"Transfer-Encoding: chunked\r\nConnection: close\r\n\r\n" % path
    ) + chunks


def space_id(server: RuangServer) -> str:
    with httpx.Client(base_url=server.url, timeout=10) as api:
        return str(api.post("/api/spaces", json={"title": "Fuzz"}).json()["id"])


def cases(sid: bytes) -> list[tuple[str, bytes]]:
    """(name, raw request) pairs, each one a way of being wrong."""
    deep_object = b'{"a":' * DEPTH + b"1" + b"}" * DEPTH
    deep_array = b"[" * DEPTH + b"]" * DEPTH
    targets = [b"/api/spaces", b"/api/spaces/%s/join" % sid, b"/api/spaces/%s/reactions" % sid]
    out: list[tuple[str, bytes]] = [
        ("garbage request line", b"\x00\x01\x02 / HTTP/1.1\r\n\r\n"),
        ("no version", b"GET /healthz\r\n\r\n"),
        ("bad version", b"GET /healthz HTTP/9.9\r\nHost: x\r\n\r\n"),
        ("spaces in target", b"GET /a b c HTTP/1.1\r\nHost: x\r\n\r\n"),
        ("huge request line", b"GET /" + b"a" * 70_000 + b" HTTP/1.1\r\nHost: x\r\n\r\n"),
        ("huge header", b"GET /healthz HTTP/1.1\r\nHost: x\r\nX: " + b"a" * 70_000 + b"\r\n\r\n"),
        (
            "many headers",
            b"GET /healthz HTTP/1.1\r\nHost: x\r\n" + b"X-A: b\r\n" * 5000 + b"\r\n",
        ),
        ("header without colon", b"GET /healthz HTTP/1.1\r\nHost x\r\n\r\n"),
        ("bad content-length", b"POST /api/spaces HTTP/1.1\r\nContent-Length: abc\r\n\r\n"),
        (
            "two content-lengths",
            b"POST /api/spaces HTTP/1.1\r\nContent-Length: 2\r\nContent-Length: 3\r\n\r\n{}",
        ),
        (
            "declared far over the limit",
            b"POST /api/spaces HTTP/1.1\r\nHost: x\r\nContent-Length: 99999999999\r\n\r\n{",
        ),
        ("chunk size not hex", chunked(b"/api/spaces", b"zz\r\n{}\r\n0\r\n\r\n")),
        ("chunk shorter than said", chunked(b"/api/spaces", b"10\r\n{}\r\n0\r\n\r\n")),
        ("chunk size overflow", chunked(b"/api/spaces", b"ffffffffffffffffff\r\n{}\r\n")),
        (
            "chunked and length",
            b"POST /api/spaces HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n"
            b"Transfer-Encoding: chunked\r\n\r\n2\r\n{}\r\n0\r\n\r\n",
        ),
    ]
    for target in targets:
        name = target.decode()
        out += [
            (f"invalid UTF-8 {name}", post(target, b'{"title": "\xff\xfe\xc3"}')),
            (f"lone surrogate {name}", post(target, b'{"title": "\\ud800"}')),
            (f"deep object {name}", post(target, deep_object)),
            (f"deep array {name}", post(target, deep_array)),
            (f"duplicate keys {name}", post(target, b'{"title": "a", "title": 5, "kind": 1}')),
            (f"huge number {name}", post(target, b'{"title": 1' + b"0" * 5000 + b"}")),
            (f"NaN {name}", post(target, b'{"title": NaN, "start_s": Infinity}')),
            (f"not an object {name}", post(target, b'"just a string"')),
            (f"nul bytes {name}", post(target, b'{"title": "a\x00b"}')),
            (f"json as form {name}", post(target, b"{}", b"application/x-www-form-urlencoded")),
        ]
    return out


def test_malformed_traffic_gets_4xx_and_the_server_stays_up(server: RuangServer) -> None:
    sid = space_id(server).encode()
    for name, request in cases(sid):
        started = time.monotonic()
        out = exchange(server.port, request)
        took = time.monotonic() - started
        statuses = [int(s) for s in re.findall(rb"HTTP/1\.[01] (\d{3}) ", out)]
        assert all(s < 500 for s in statuses), (name, out[:300])
        # a refusal (or nothing: the server may just close on hopeless bytes), never a hang
        assert took < 5, (name, took)
        r = httpx.get(f"{server.url}/healthz", timeout=5)
        assert r.status_code == 200, (name, "the server stopped answering")


def test_deep_json_is_a_400(server: RuangServer) -> None:
    deep = b'{"a":' * DEPTH + b"1" + b"}" * DEPTH
    with httpx.Client(base_url=server.url, timeout=10) as api:
        for body in (deep, b"[" * DEPTH + b"]" * DEPTH):
            r = api.post("/api/spaces", content=body, headers={"Content-Type": "application/json"})
            assert r.status_code == 400 and r.json()["error"] == "invalid_json", r.text


def test_a_declared_length_over_the_limit_is_refused_at_once(server: RuangServer) -> None:
    """413 as soon as the headers say so, without waiting for a body that never comes."""
    for path in (b"/api/spaces", b"/api/spaces/abcdefghij/join", b"/whip/abcdefghij"):
        request = b"POST %s HTTP/1.1\r\nHost: x\r\nContent-Length: 10000000\r\n\r\n" % path
        started = time.monotonic()
        out = exchange(server.port, request, quiet_s=3)
        assert out.startswith(b"HTTP/1.1 413"), (path, out[:200])
        assert time.monotonic() - started < 2.9, "waited for the body"
