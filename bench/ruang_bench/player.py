"""One process of `ruang bench flood`: simulated HLS listeners, each a small state machine on
one raw asyncio HTTP/1.1 keep-alive connection bound to its own 127.x.y.z source address.

A listener arrives at a time fixed in advance (open model: a slow server does not slow the
arrivals down), joins (`POST /api/spaces/{id}/join`: 200 → listen URL; 202 → waiting room,
come back after Retry-After with the queue token; 503 → back off for Retry-After), then plays
like an LL-HLS player: the live playlist, the last parts that make up the start buffer, then
for every next part a blocking playlist reload (`_HLS_msn`/`_HLS_part`) followed by the part
itself. A player buffer model turns part arrivals into playback: play once the start buffer
is in, consume in real time, stall when the buffer runs dry, resume when the next part comes.

Run as `python -m ruang_bench.player CONFIG.json RESULT.json` by `ruang bench flood`, which
writes the config (server address, space, the listeners with their arrival times and source
addresses, the common start time on the monotonic clock) and reads the result (per-listener
records, per-second counters, raw join request latencies).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import math
import re
import resource
import socket
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar, cast

from ruang.guard.pow import solve

IP_BIND_ADDRESS_NO_PORT = getattr(socket, "IP_BIND_ADDRESS_NO_PORT", 24)  # Linux
HEADER_LIMIT = 64 * 1024
RETRY_AFTER_CAP_S = 30.0  # the most a listener waits on one Retry-After
ERROR_BACKOFF_S = 1.0  # after a refused connection, a timeout or an unexpected answer
POW_SLICE = 4096  # proof-of-work tries between two turns of the event loop


async def solve_sliced(challenge: str, difficulty: int) -> str:
    """`ruang.guard.pow.solve` in slices, so that the other listeners of this process keep
    their pace while one pays for its join."""
    start = 0
    while True:
        try:
            return solve(challenge, difficulty, start=start, max_iterations=POW_SLICE)
        except RuntimeError:
            start += POW_SLICE
            await asyncio.sleep(0)


# What the report reads from a listener, in this order (a list per listener keeps the JSON small).
RECORD_FIELDS = (
    "idx",
    "at",  # scheduled arrival, s after t0
    "lag",  # how late the generator started it, s
    "first_sent",  # first join request sent, s after t0 (-1: never)
    "first_recv",  # its answer received
    "first_wait",  # first 202 received (-1: never waited)
    "last_wait_sent",  # the request answered by the last 202 was sent
    "admitted",  # the 200 of join received (-1: never admitted)
    "queue_n",  # number in line from the queue token (-1: none)
    "join_attempts",
    "play_start",  # playback started (-1: never)
    "stall_s",
    "stalls",
    "played_s",
    "parts_on_time",
    "parts_late",
    "parts_before_play",
    "resyncs",
    "errors",
    "arrived_sent",  # first join the server could number (not answered 428/429/503) was sent
    "arrived_recv",  # its answer received: the arrival that FIFO order is judged by
)

# Per-second counters (index = whole seconds after t0) and sampled gauges.
COUNTERS = (
    "arrivals",
    "admitted",
    "join_requests",
    "requests",
    "s2xx",
    "s202",
    "s3xx",
    "s4xx",
    "s5xx",
    "s503",
    "s428",  # proof-of-work asked for (then solved, honestly)
    "timeouts",
    "errors",
    "stalls",
    "parts",
    "parts_late",
    "bytes",
)
GAUGES = (
    "joining",
    "waiting",
    "active",
    "stalled",
    "loop_lag_ms",
)  # loop_lag_ms: the second's worst

_QUEUE_N = re.compile(r"^[a-z]\.(\d+)\.")

PartKey = tuple[int, int]  # (media sequence number, part index)
Part = tuple[PartKey, str, float]  # key, URI, duration


# -- the playlist: only what the loop needs ------------------------------------------------------
def _attr(line: bytes, name: bytes) -> bytes | None:
    """The value of NAME= in an attribute list (quotes removed), or None."""
    at = line.find(name + b"=")
    if at < 0:
        return None
    at += len(name) + 1
    if line[at : at + 1] == b'"':
        return line[at + 1 : line.find(b'"', at + 1)]
    end = line.find(b",", at)
    return line[at:] if end < 0 else line[at:end]


def parse_live(
    text: bytes, after: tuple[PartKey, str] | None = None
) -> tuple[list[Part], tuple[PartKey, str] | None, bool]:
    """The parts of a live LL-HLS playlist, in order, numbered (msn, part) by the playlist's
    structure (not by file names), and the part its preload hint names (key, URI). With
    `after` (a part already had) and that part still listed, only the parts after it are read
    (the cheap path a player takes on every reload); the flag says whether that happened."""
    parts: list[Part] = []
    msn, index, start = 0, 0, 0
    found = False
    if after is not None:
        at = text.find(b'URI="' + after[1].encode() + b'"')
        line_start = text.rfind(b"\n", 0, at) + 1
        if at >= 0 and text.startswith(b"#EXT-X-PART:", line_start):
            (msn, index), found = after[0], True
            index += 1
            start = text.find(b"\n", at) + 1 or len(text)
    hint: tuple[PartKey, str] | None = None
    for line in text[start:].split(b"\n"):
        if line.startswith(b"#EXT-X-PART:"):
            uri, duration = _attr(line, b"URI"), _attr(line, b"DURATION")
            if uri is not None and duration is not None:
                parts.append(((msn, index), uri.decode(), float(duration)))
            index += 1
        elif line.startswith(b"#EXTINF:"):
            msn, index = msn + 1, 0
        elif line.startswith(b"#EXT-X-MEDIA-SEQUENCE:"):
            msn = int(line[22:].strip())
        elif line.startswith(b"#EXT-X-PRELOAD-HINT:") and _attr(line, b"TYPE") == b"PART":
            uri = _attr(line, b"URI")
            if uri is not None:
                hint = ((msn, index), uri.decode())
    return parts, hint, found


# -- HTTP/1.1 on a raw asyncio connection ---------------------------------------------------------
@dataclass(slots=True)
class Answer:
    """A response: status, body, Retry-After (seconds) and whether the server closes."""

    status: int
    body: bytes
    retry_after: float | None
    close: bool


class HttpError(Exception):
    """The connection failed or timed out (kind is `timeout`, `closed`, `refused`, ...)."""

    def __init__(self, kind: str) -> None:
        super().__init__(kind)
        self.kind = kind


def _dechunk(buf: bytearray, start: int) -> tuple[bytes, int] | None:
    """A complete chunked body from `start`: (body, end offset), or None if more is needed."""
    body = bytearray()
    pos = start
    while True:
        eol = buf.find(b"\r\n", pos)
        if eol < 0:
            return None
        size = int(bytes(buf[pos:eol]).split(b";", 1)[0], 16)
        if size == 0:
            end = buf.find(b"\r\n\r\n", eol)  # no trailers expected: the empty line follows
            return (bytes(body), end + 4) if end >= 0 else None
        if len(buf) < eol + 2 + size + 2:
            return None
        body += buf[eol + 2 : eol + 2 + size]
        pos = eol + 2 + size + 2


def _header(head: bytes, name: bytes) -> bytes | None:
    """A header's value from a lower-cased response head, or None."""
    at = head.find(b"\r\n" + name + b":")
    if at < 0:
        return None
    at += len(name) + 3
    end = head.find(b"\r\n", at)
    return head[at : end if end >= 0 else len(head)].strip()


def _seconds(value: bytes | None) -> float | None:
    """Retry-After in seconds (delta-seconds only; an HTTP date counts as absent)."""
    try:
        return None if value is None else float(value)
    except ValueError:
        return None


class Connection(asyncio.Protocol):
    """One keep-alive HTTP/1.1 connection; requests are sent one exchange at a time (an
    exchange may pipeline several). Timeouts are not timers: connections waiting for answers
    are kept in `pending` with their deadline, and `expire_overdue` (called a few times a
    second) fails those past it."""

    __slots__ = (
        "transport",
        "buf",
        "waiter",
        "answers",
        "want",
        "closed",
        "deadline",
        "answered_at",
        "_head",
    )
    pending: ClassVar[set[Connection]] = set()

    def __init__(self) -> None:
        self.transport: asyncio.Transport | None = None
        self.buf = bytearray()
        self.waiter: asyncio.Future[list[Answer]] | None = None
        self.answers: list[Answer] = []
        self.want = 0
        self.closed = False
        self.deadline = 0.0
        self.answered_at = 0.0  # time.monotonic() the last exchange's last byte came in
        self._head: tuple[int, int, int, float | None, bool, bool] | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)  # uvloop's are not subclasses

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        self.fail("closed")

    def fail(self, kind: str) -> None:
        """End the current exchange with an HttpError."""
        if self.waiter is not None and not self.waiter.done():
            self.waiter.set_exception(HttpError(kind))

    def data_received(self, data: bytes) -> None:
        self.buf += data
        if self.waiter is None or self.waiter.done():
            return
        try:
            while len(self.answers) < self.want and self._parse():
                pass
        except (ValueError, IndexError):
            self.fail("bad_response")
            self.close()
            return
        if len(self.answers) >= self.want:
            self.answered_at = time.monotonic()  # before the coroutine gets to run again
            self.waiter.set_result(self.answers)

    def _parse(self) -> bool:
        """Take one complete response off the buffer into `answers`; False if incomplete."""
        buf = self.buf
        if self._head is None:
            end = buf.find(b"\r\n\r\n")
            if end < 0:
                if len(buf) > HEADER_LIMIT:
                    raise ValueError("headers too long")
                return False
            head = bytes(buf[:end]).lower()
            status = int(head[9:12])
            length = _header(head, b"content-length")
            retry = _header(head, b"retry-after") if status >= 300 or status == 202 else None
            connection = _header(head, b"connection")
            encoding = _header(head, b"transfer-encoding")
            self._head = (
                status,
                end + 4,
                int(length) if length is not None else 0,
                _seconds(retry),
                connection is not None and b"close" in connection,
                encoding is not None and b"chunked" in encoding,
            )
        status, start, size, retry_after, close, chunked = self._head
        if chunked:
            got = _dechunk(buf, start)
            if got is None:
                return False
            body, stop = got
        else:
            if len(buf) < start + size:
                return False
            body, stop = bytes(buf[start : start + size]), start + size
        del buf[:stop]
        self._head = None
        self.answers.append(Answer(status, body, retry_after, close))
        return True

    def close(self) -> None:
        """Close the connection (a timed-out or refused exchange leaves it unusable)."""
        self.closed = True
        if self.transport is not None:
            self.transport.close()

    async def exchange(self, request: bytes, timeout: float, count: int = 1) -> list[Answer]:
        """Send `count` requests (concatenated in `request`: HTTP/1.1 pipelining) and wait
        for all their answers, at most `timeout` seconds."""
        if self.closed or self.transport is None:
            raise HttpError("closed")
        waiter: asyncio.Future[list[Answer]] = asyncio.get_running_loop().create_future()
        self.waiter, self.answers, self.want = waiter, [], count
        self.deadline = time.monotonic() + timeout
        self.transport.write(request)
        Connection.pending.add(self)
        try:
            answers = await waiter
        except HttpError:
            self.close()
            raise
        finally:
            Connection.pending.discard(self)
            self.waiter = None
        if any(a.close for a in answers):
            self.close()
        return answers


def expire_overdue(now: float) -> None:
    """Fail the exchanges past their deadline (time.monotonic())."""
    for conn in [c for c in Connection.pending if c.deadline < now]:
        conn.fail("timeout")


async def connect(host: str, port: int, source: str, timeout: float) -> Connection:
    """A TCP connection to host:port from `source` (any port), as an HTTP Connection."""
    loop = asyncio.get_running_loop()
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.IPPROTO_IP, IP_BIND_ADDRESS_NO_PORT, 1)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        sock.bind((source, 0))
        sock.setblocking(False)
        await asyncio.wait_for(loop.sock_connect(sock, (host, port)), timeout)
        transport, conn = await loop.create_connection(Connection, sock=sock)
        conn.transport = transport  # uvloop calls connection_made later
    except TimeoutError as exc:
        sock.close()
        raise HttpError("connect_timeout") from exc
    except OSError as exc:
        sock.close()
        raise HttpError(
            "refused" if isinstance(exc, ConnectionRefusedError) else "connect"
        ) from exc
    return conn


# -- the player buffer ---------------------------------------------------------------------------
@dataclass(slots=True)
class PlayerBuffer:
    """Media received vs media played, on the wall clock. Playback starts once `start_s` of
    media is in; it then consumes one second per second; when the playhead reaches the end of
    what was received the player stalls until the next part arrives."""

    start_s: float
    received: float = 0.0  # media seconds received
    position: float = 0.0  # media seconds played, as of `last`
    last: float = 0.0
    playing_since: float = -1.0
    stalled: bool = False
    stall_s: float = 0.0
    stalls: int = 0
    on_time: int = 0
    late: int = 0
    before_play: int = 0

    def advance(self, now: float) -> float | None:
        """Move the playhead to `now`; the time a new stall began, if one did."""
        if self.playing_since < 0:
            return None
        elapsed = now - self.last
        self.last = now
        if self.stalled:
            self.stall_s += elapsed
            return None
        left = self.received - self.position
        if elapsed <= left:
            self.position += elapsed
            return None
        self.position = self.received
        self.stalled = True
        self.stalls += 1
        self.stall_s += elapsed - left
        return now - (elapsed - left)

    def add(self, now: float, duration: float) -> float | None:
        """A part of `duration` seconds arrived; the time a stall began before it, if any."""
        began = self.advance(now)
        if self.playing_since < 0:
            self.before_play += 1
        elif self.stalled:
            self.late += 1
            self.stalled = False
        else:
            self.on_time += 1
        self.received += duration
        if self.playing_since < 0 and self.received >= self.start_s - 1e-6:
            self.playing_since = self.last = now
        return began

    def stalled_at(self, now: float) -> bool:
        """True when the player is out of media at `now` (without moving the playhead)."""
        if self.playing_since < 0:
            return False
        return self.stalled or self.position + (now - self.last) > self.received

    def played_s(self, now: float) -> float:
        """Seconds of media played up to `now`."""
        if self.playing_since < 0:
            return 0.0
        return max(0.0, now - self.playing_since - self.stall_s)


# -- one listener --------------------------------------------------------------------------------
@dataclass(slots=True)
class Listener:
    """One simulated listener and what happened to it (times are s after t0)."""

    idx: int
    at: float
    source: str
    buffer: PlayerBuffer
    lag: float = 0.0
    first_sent: float = -1.0
    first_recv: float = -1.0
    arrived_sent: float = -1.0
    arrived_recv: float = -1.0
    first_wait: float = -1.0
    last_wait_sent: float = -1.0
    admitted: float = -1.0
    queue_n: int = -1
    join_attempts: int = 0
    resyncs: int = 0
    errors: int = 0
    state: str = "new"  # new, joining, waiting, active, done
    started: bool = False

    def record(self, end: float) -> list[float | int]:
        """The fields of RECORD_FIELDS (times rounded to 0.1 ms)."""
        b = self.buffer
        raw: list[float | int] = [
            self.idx,
            self.at,
            self.lag,
            self.first_sent,
            self.first_recv,
            self.first_wait,
            self.last_wait_sent,
            self.admitted,
            self.queue_n,
            self.join_attempts,
            b.playing_since,
            b.stall_s,
            b.stalls,
            b.played_s(end),
            b.on_time,
            b.late,
            b.before_play,
            self.resyncs,
            self.errors,
            self.arrived_sent,
            self.arrived_recv,
        ]
        return [round(v, 4) if isinstance(v, float) else v for v in raw]


@dataclass
class Flood:
    """The listeners of this process, their shared counters, and the clock (t0 = 0)."""

    host: str
    port: int
    space: str
    t0: float  # time.monotonic() of the common start
    duration_s: float
    start_buffer_s: float
    timeout_s: float
    listeners: list[Listener]
    pipeline: bool = False
    counters: dict[str, list[int]] = field(default_factory=dict)
    gauges: dict[str, list[int]] = field(default_factory=dict)
    join_ms: list[float] = field(default_factory=list)  # each join request, connect included
    pow_ms: list[float] = field(default_factory=list)  # each proof-of-work solved (wall time)
    connect_ms: list[float] = field(default_factory=list)  # each TCP connect
    error_kinds: dict[str, int] = field(default_factory=dict)
    loop_lag_ms: list[float] = field(default_factory=list)
    cpu_s: float = 0.0  # CPU this process used from t0 to the end
    end: float = 0.0  # when the run stopped, s after t0

    def __post_init__(self) -> None:
        n = int(math.ceil(self.duration_s)) + 1
        self.counters = {k: [0] * n for k in COUNTERS}
        self.gauges = {k: [0] * n for k in GAUGES}
        self._host_header = f"Host: {self.host}:{self.port}\r\n".encode()

    def now(self) -> float:
        """Seconds since t0."""
        return time.monotonic() - self.t0

    def count(self, name: str, t: float, n: int = 1) -> None:
        """Add to a per-second counter."""
        series = self.counters[name]
        i = int(t)
        if 0 <= i < len(series):
            series[i] += n

    def error(self, listener: Listener, kind: str) -> None:
        """Note a failed exchange."""
        listener.errors += 1
        self.error_kinds[kind] = self.error_kinds.get(kind, 0) + 1
        self.count("timeouts" if kind == "timeout" else "errors", self.now())

    # -- requests --------------------------------------------------------------------------------
    def get(self, path: str) -> bytes:
        """A GET request's bytes."""
        return b"GET " + path.encode() + b" HTTP/1.1\r\n" + self._host_header + b"\r\n"

    def post_json(self, path: str, body: bytes) -> bytes:
        """A POST request's bytes with a JSON body."""
        return (
            b"POST "
            + path.encode()
            + b" HTTP/1.1\r\n"
            + self._host_header
            + b"Content-Type: application/json\r\nContent-Length: "
            + str(len(body)).encode()
            + b"\r\n\r\n"
            + body
        )

    async def fetch(
        self, listener: Listener, conn: Connection | None, *requests: bytes
    ) -> tuple[Connection, list[Answer]]:
        """One exchange (several requests are pipelined), reconnecting first if the
        connection is gone; counted."""
        if conn is None or conn.closed:
            began = self.now()
            conn = await connect(self.host, self.port, listener.source, self.timeout_s)
            self.connect_ms.append(round((self.now() - began) * 1000, 2))
        self.count("requests", self.now(), len(requests))
        answers = await conn.exchange(b"".join(requests), self.timeout_s, len(requests))
        t = self.now()
        for answer in answers:
            s = answer.status
            if s == 202:
                self.count("s202", t)
            elif s < 300:
                self.count("s2xx", t)
            elif s < 400:
                self.count("s3xx", t)
            elif s < 500:
                self.count("s4xx", t)
            else:
                self.count("s5xx", t)
                if s == 503:
                    self.count("s503", t)
            self.count("bytes", t, len(answer.body))
        return conn, answers

    # -- the listener's life ---------------------------------------------------------------------
    async def join(self, listener: Listener, conn: Connection | None) -> tuple[Connection, str]:
        """Join until admitted; the connection and the listen URL's path."""
        path = f"/api/spaces/{self.space}/join"
        token: str | None = None
        proof: dict[str, str] | None = None
        listener.state = "joining"
        while True:
            ask: dict[str, Any] = {"queue": token} if token else {}
            if proof is not None:
                ask["pow"], proof = proof, None
            body = json.dumps(ask).encode()
            sent = self.now()
            if listener.first_sent < 0:
                listener.first_sent = sent
            listener.join_attempts += 1
            self.count("join_requests", sent)
            try:
                conn, (answer,) = await self.fetch(listener, conn, self.post_json(path, body))
            except HttpError as exc:
                self.error(listener, exc.kind)
                conn = None
                await asyncio.sleep(ERROR_BACKOFF_S)
                continue
            t = self.now()
            self.join_ms.append(round((t - sent) * 1000, 2))
            if listener.first_recv < 0:
                listener.first_recv = t
            if listener.arrived_sent < 0 and answer.status not in (428, 429, 503):
                listener.arrived_sent, listener.arrived_recv = sent, t
            if answer.status == 200:
                listen_url = str(json.loads(answer.body)["listen_url"])
                listener.admitted = t
                self.count("admitted", t)
                return conn, _path_of(listen_url)
            wait = answer.retry_after if answer.retry_after is not None else ERROR_BACKOFF_S
            if answer.status == 428:  # pay for the join as a browser does, then ask again
                self.count("s428", t)
                puzzle = json.loads(answer.body)["pow"]
                began = time.perf_counter()
                nonce = await solve_sliced(str(puzzle["challenge"]), int(puzzle["difficulty"]))
                self.pow_ms.append(round((time.perf_counter() - began) * 1000, 2))
                proof = {"challenge": str(puzzle["challenge"]), "nonce": nonce}
                continue
            if answer.status == 202:
                data = json.loads(answer.body)
                token = str(data.get("queue") or token or "") or None
                if listener.first_wait < 0:
                    listener.first_wait = t
                    m = _QUEUE_N.match(token or "")
                    listener.queue_n = int(m.group(1)) if m else -1
                listener.last_wait_sent = sent
                listener.state = "waiting"
            elif answer.status != 503:
                self.error(listener, f"join_{answer.status}")
            await asyncio.sleep(min(max(wait, 0.0), RETRY_AFTER_CAP_S))

    async def play(self, listener: Listener, conn: Connection | None, playlist: str) -> None:
        """Play the live stream until cancelled, like an LL-HLS player: a blocking reload
        for the part the preload hint names, then that part (with `pipeline`, both requests
        go out together, as a player that fetches preload hints does)."""
        folder = playlist.rsplit("/", 1)[0] + "/"
        sep = "&" if "?" in playlist else "?"
        last: tuple[PartKey, str] | None = None  # the last part had: key, URI
        want: tuple[PartKey, str] | None = None  # the hinted part: blocking reload for it
        while True:
            requests = [self.get(playlist)]
            if want is not None:
                (msn, part), uri = want
                requests = [self.get(f"{playlist}{sep}_HLS_msn={msn}&_HLS_part={part}")]
                if self.pipeline:
                    requests.append(self.get(folder + uri))
            try:
                conn, answers = await self.fetch(listener, conn, *requests)
            except HttpError as exc:
                self.error(listener, exc.kind)
                conn = None
                await asyncio.sleep(ERROR_BACKOFF_S)
                continue
            answer = answers[0]
            if answer.status != 200:
                if answer.status != 503:
                    self.error(listener, f"playlist_{answer.status}")
                if want is not None and answer.status in (400, 404):
                    listener.resyncs += 1
                    want = None  # back to the live edge
                await asyncio.sleep(min(answer.retry_after or ERROR_BACKOFF_S, RETRY_AFTER_CAP_S))
                continue
            prefetched = want[1] if len(answers) > 1 and answers[1].status == 200 and want else ""
            parts, hint, found = parse_live(answer.body, last)
            if last is None:  # the start: the last parts that fill the start buffer
                need, start = self.start_buffer_s, len(parts)
                while start > 0 and need > 1e-6:
                    start -= 1
                    need -= parts[start][2]
                new = parts[start:]
            elif found:
                new = parts
            else:
                new = [p for p in parts if p[0] > last[0]]
                if new:
                    listener.resyncs += 1  # the part after ours is gone from the playlist
            for key, uri, duration in new:
                if uri != prefetched:
                    conn = await self.fetch_part(listener, conn, folder + uri)
                    if conn is None:
                        break
                t = conn.answered_at - self.t0  # not when this coroutine got to run
                late = listener.buffer.late
                began = listener.buffer.add(t, duration)
                if began is not None:
                    self.count("stalls", began)
                self.count("parts", t)
                if listener.buffer.late > late:
                    self.count("parts_late", t)
                last = (key, uri)
            if conn is None:
                continue
            if not new and want is not None:
                self.error(listener, "no_new_part")  # a blocking reload without the part
                await asyncio.sleep(0.1)
            want = hint if hint is not None and (last is None or hint[0] > last[0]) else None

    async def fetch_part(
        self, listener: Listener, conn: Connection | None, path: str
    ) -> Connection | None:
        """GET one part, retrying on timeouts, 5xx; None when it cannot be had (resync)."""
        for _ in range(3):
            try:
                conn, (answer,) = await self.fetch(listener, conn, self.get(path))
            except HttpError as exc:
                self.error(listener, exc.kind)
                conn = None
                await asyncio.sleep(ERROR_BACKOFF_S)
                continue
            if answer.status == 200:
                return conn
            if answer.status != 503:
                self.error(listener, f"part_{answer.status}")
            if 400 <= answer.status < 500:
                break
            await asyncio.sleep(min(answer.retry_after or ERROR_BACKOFF_S, RETRY_AFTER_CAP_S))
        listener.resyncs += 1
        if conn is not None:
            conn.close()
        return None

    async def live(self, listener: Listener) -> None:
        """A listener from arrival to the end of the run."""
        conn: Connection | None = None
        try:
            conn, playlist = await self.join(listener, None)
            listener.state = "active"
            await self.play(listener, conn, playlist)
        finally:
            listener.state = "done"
            if conn is not None:
                conn.close()

    # -- the run ---------------------------------------------------------------------------------
    async def run(self) -> None:
        """Start every listener at its time, stop them all at the end, sample gauges."""
        tasks: list[asyncio.Task[None]] = []
        ticker = asyncio.create_task(self._tick())
        await asyncio.sleep(max(0.0, -self.now()))
        self.cpu_s = -_cpu_s()
        for listener in sorted(self.listeners, key=lambda x: x.at):
            delay = listener.at - self.now()
            if delay > 0:
                await asyncio.sleep(delay)
            if self.now() >= self.duration_s:
                break
            listener.lag = max(0.0, self.now() - listener.at)
            listener.started = True
            self.count("arrivals", self.now())
            tasks.append(asyncio.create_task(self.live(listener)))
        await asyncio.sleep(max(0.0, self.duration_s - self.now()))
        ticker.cancel()
        for task in tasks:
            task.cancel()
        self.end = max(self.duration_s, self.now())  # nothing has run since the wake-up
        self.cpu_s += _cpu_s()
        for listener in self.listeners:
            began = listener.buffer.advance(self.end)
            if began is not None:
                self.count("stalls", began)
        await asyncio.gather(*tasks, ticker, return_exceptions=True)

    async def _tick(self) -> None:
        """Every second: how many listeners wait, listen and are stalled; every 0.1 s: how
        late this event loop wakes up (the generator's own health), and timeouts."""
        await asyncio.sleep(max(0.0, -self.now()))
        step, filled = 0.1, -1
        lag_series = self.gauges["loop_lag_ms"]
        while True:
            target = self.now() + step
            await asyncio.sleep(step)
            expire_overdue(time.monotonic())
            now = self.now()
            lag = round(max(0.0, now - target) * 1000, 2)
            self.loop_lag_ms.append(lag)
            i = int(now)
            if i < len(lag_series):
                lag_series[i] = max(lag_series[i], int(lag))
            if now - i < 0.5 and filled >= i - 1:
                continue
            joining = waiting = active = stalled = 0
            for x in self.listeners:
                if x.state == "joining":
                    joining += 1
                elif x.state == "waiting":
                    waiting += 1
                elif x.state == "active":
                    active += 1
                    stalled += x.buffer.stalled_at(now)
            for j in range(filled + 1, min(i + 1, len(lag_series))):  # skipped seconds too
                self.gauges["joining"][j] = joining
                self.gauges["waiting"][j] = waiting
                self.gauges["active"][j] = active
                self.gauges["stalled"][j] = stalled
            filled = i

    def result(self) -> dict[str, Any]:
        """What the parent process aggregates."""
        end = self.end
        return {
            "fields": list(RECORD_FIELDS),
            "listeners": [x.record(end) for x in self.listeners if x.started],
            "not_started": sum(1 for x in self.listeners if not x.started),
            "counters": self.counters,
            "gauges": self.gauges,
            "join_ms": self.join_ms,
            "pow_ms": self.pow_ms,
            "connect_ms": self.connect_ms,
            "error_kinds": self.error_kinds,
            "loop_lag_ms": self.loop_lag_ms,
            "cpu_s": round(self.cpu_s, 3),
            "wall_s": round(self.end, 3),
        }


def _path_of(url: str) -> str:
    """The path (and query) of an absolute or relative URL."""
    if "://" in url:
        rest = url.split("://", 1)[1]
        slash = rest.find("/")
        return rest[slash:] if slash >= 0 else "/"
    return url


def _cpu_s() -> float:
    """User+system CPU seconds this process has used."""
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


def main(argv: list[str] | None = None) -> None:
    """Read the config, run the listeners, write the result."""
    args = sys.argv[1:] if argv is None else argv
    config = json.loads(Path(args[0]).read_text())
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    with contextlib.suppress(ValueError, OSError):
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    listeners = [
        Listener(int(i), float(at), str(src), PlayerBuffer(float(config["start_buffer_s"])))
        for i, at, src in config["listeners"]
    ]
    flood = Flood(
        host=config["host"],
        port=int(config["port"]),
        space=config["space"],
        t0=float(config["t0"]),
        duration_s=float(config["duration_s"]),
        start_buffer_s=float(config["start_buffer_s"]),
        timeout_s=float(config["timeout_s"]),
        listeners=listeners,
        pipeline=bool(config.get("pipeline", False)),
    )
    try:
        import uvloop
    except ImportError:  # pragma: no cover - uvloop is a dependency of uvicorn[standard]
        asyncio.run(flood.run())
    else:
        uvloop.run(flood.run())
    Path(args[1]).write_text(json.dumps(flood.result()))


if __name__ == "__main__":
    main()
