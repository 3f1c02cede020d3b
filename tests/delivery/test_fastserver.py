"""The delivery workers' HTTP server, spoken to over raw sockets: pipelining, keep-alive,
HEAD, and refusals of broken or oversized requests."""

from __future__ import annotations

import re
import socket

import httpx

from ruangtest import join


def exchange(port: int, data: bytes, quiet_s: float = 0.5) -> bytes:
    """Send raw bytes; collect what comes back until the server closes or goes quiet."""
    with socket.create_connection(("127.0.0.1", port), timeout=5) as s:
        s.sendall(data)
        s.settimeout(quiet_s)
        out = b""
        try:
            while chunk := s.recv(65536):
                out += chunk
        except TimeoutError:
            pass
        return out


def test_pipelined_requests_are_answered_in_order(server) -> None:
    req = b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n"
    missing = b"GET /hls/zzzzzzzzzz/t/x/live.m3u8 HTTP/1.1\r\nHost: x\r\n\r\n"
    out = exchange(server.port, req + missing + req)
    statuses = re.findall(rb"HTTP/1\.1 (\d{3}) ", out)
    assert statuses == [b"200", b"403", b"200"], out  # a malformed ticket, refused first


def test_head_has_length_and_no_body(server) -> None:
    with httpx.Client(base_url=server.url, follow_redirects=True) as api:
        space = api.post("/api/spaces", json={"title": "Head"}).json()
        listen = join(api, space["id"])["listen_url"]
        init = listen.replace("live.m3u8", "init.mp4")
        got = api.get(init)
        head = api.head(init)
        assert head.status_code == 200 and head.content == b""
        assert int(head.headers["content-length"]) == len(got.content) > 0


def test_broken_http_is_refused_with_json(server) -> None:
    out = exchange(server.port, b"NOT HTTP AT ALL\r\n\r\n")
    assert out.startswith(b"HTTP/1.1 400") and b'"error":"bad_request"' in out
    big = b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Big: " + b"a" * 20000 + b"\r\n\r\n"
    out = exchange(server.port, big)
    assert out.startswith(b"HTTP/1.1 431"), out[:100]


def test_oversized_body_is_refused(server) -> None:
    body = b"x" * 70_000
    req = (
        b"POST /api/spaces HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
        b"Content-Length: %d\r\n\r\n" % len(body)
    ) + body
    out = exchange(server.port, req)
    assert out.startswith(b"HTTP/1.1 413"), out[:100]


def test_connection_close_is_honoured(server) -> None:
    with socket.create_connection(("127.0.0.1", server.port), timeout=5) as s:
        s.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        data = b""
        while chunk := s.recv(65536):
            data += chunk
    assert data.startswith(b"HTTP/1.1 200") and b"connection: close" in data.lower()


def test_control_characters_in_headers_get_4xx(server) -> None:
    req = (
        b"POST /api/spaces/abcdefghij/end HTTP/1.1\r\nHost: x\r\n"
        b"Authorization: Bearer \x01\x7f\r\nContent-Length: 0\r\n\r\n"
    )
    out = exchange(server.port, req)
    status = int(re.findall(rb"HTTP/1\.1 (\d{3}) ", out)[0])
    assert 400 <= status < 500, out[:200]


def test_hls_parameters_are_read_as_parse_qsl_reads_them() -> None:
    from urllib.parse import parse_qsl

    from ruang.delivery.fastserver import hls_params

    for q in [b"_HLS_msn=1&_HLS_part=2", b"a", b"a=", b"=b", b"a=1&a=2", b"&&x=1&", b"a=%41"]:
        assert hls_params(q) == dict(parse_qsl(q.decode())), q
    assert hls_params(b"a=b+c&d=1=2") == {"a": "b c", "d": "1=2"}
