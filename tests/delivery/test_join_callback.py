"""A join whose answer comes back from Redis later (`JoinService.handle_now` returning True)
is written by its callback, and the requests pipelined behind it on the same connection are
answered after it, in order."""

from __future__ import annotations

import asyncio
import re
from collections.abc import Callable
from typing import Any

from ruang.delivery.fastserver import Handlers, HttpProtocol
from ruang.delivery.hls import HlsResponse, encode_headers


class Transport(asyncio.Transport):
    def __init__(self) -> None:
        super().__init__()
        self.out = b""
        self.closed = False

    def write(self, data: bytes | bytearray | memoryview) -> None:
        self.out += bytes(data)

    def is_closing(self) -> bool:
        return self.closed

    def close(self) -> None:
        self.closed = True

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        return ("127.0.0.1", 5000) if name in ("peername", "sockname") else default


def answer(status: int, body: bytes) -> HlsResponse:
    return HlsResponse(status, body, encode_headers([("Content-Type", "text/plain")]))


async def test_requests_behind_a_pending_join_wait_for_it() -> None:
    pending: list[Callable[[HlsResponse], None]] = []

    def join_now(*args: Any) -> HlsResponse | bool:
        pending.append(args[-1])
        return True  # on its way

    async def join(*args: Any) -> HlsResponse:
        return answer(200, b"second join")

    async def app(scope: Any, receive: Any, send: Any) -> None:
        await send(
            {"type": "http.response.start", "status": 200, "headers": [(b"content-length", b"3")]}
        )
        await send({"type": "http.response.body", "body": b"app"})

    async def hls(*args: Any) -> HlsResponse:
        raise AssertionError("no HLS here")

    handlers = Handlers(hls, lambda *a: None, join, join_now, app)
    protocol, transport = HttpProtocol(handlers), Transport()
    protocol.connection_made(transport)
    post = b"POST /api/spaces/abcdefghij/join HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n"
    protocol.data_received(post + b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n" + post)
    await asyncio.sleep(0.05)
    assert transport.out == b"" and len(pending) == 1  # nothing overtakes the first join
    pending[0](answer(200, b"first join"))
    for _ in range(50):
        if transport.out.count(b"HTTP/1.1") == 3:
            break
        await asyncio.sleep(0.01)
    bodies = re.findall(rb"\r\n\r\n([a-z ]+)", transport.out)
    assert bodies == [b"first join", b"app", b"second join"], transport.out
    protocol.connection_lost(None)
