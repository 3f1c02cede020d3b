"""The waiting room shared by every node (Redis): one line per space, FIFO across nodes.

The rules are those of `Admission` (see admission.py); only the counters move: a space's line
(`tail`, `head`, `prestart`, `threshold`) lives in one Redis hash, and each node's token bucket
(its admission pace) in another, so a node can admit only at its own pace but always the next
person in the shared line. One join is one Lua script call: atomic, one round trip. Queue
tokens are signed with the shared ticket key, so a place taken on one node is honoured on all.
"""

from __future__ import annotations

import asyncio
import re
from typing import Any

from ruang.audience import WorkerAudience
from ruang.guard.admission import Admission, Admitted, Limits, Waiting, _Line
from ruang.guard.ratelimit import GCRA_LUA

LINE_TTL_S = 2 * 24 * 3600  # a line nobody touched for this long is forgotten
BUCKET_TTL_S = 3600

_JOIN = """
local now, rate, burst = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3])
local room, crowded, started = ARGV[4] == '1', ARGV[5] == '1', ARGV[6] == '1'
local kind, n, draw = ARGV[7], tonumber(ARGV[8]), tonumber(ARGV[9])
local s = redis.call('HMGET', KEYS[1], 'tail', 'head', 'prestart', 'threshold')
local tail, head = tonumber(s[1]) or 0, tonumber(s[2]) or 0
local prestart, threshold = tonumber(s[3]) or 0, tonumber(s[4]) or 0
local b = redis.call('HMGET', KEYS[2], 'tokens', 'at')
local tokens, at = tonumber(b[1]) or burst, tonumber(b[2]) or now
tokens = math.min(burst, tokens + math.max(0, now - at) * rate)
local function take()
  if (not room) or tokens < 1 - 1e-9 then return false end
  tokens = tokens - 1
  return true
end
local admitted, out_kind, out_n = 0, kind, n
if not started then
  out_kind, out_n = 'p', draw
  if kind ~= 'p' then prestart = prestart + 1 end
else
  if prestart > 0 and threshold < 1 then
    while threshold < 1 and take() do threshold = math.min(1, threshold + 1 / prestart) end
  end
  if prestart == 0 or threshold >= 1 then
    while head < tail and take() do head = head + 1 end
  end
  if kind ~= '' then
    if (kind == 'p' and n < threshold * 4294967296) or (kind == 'q' and n < head) then
      admitted = 1
    end
  else
    local nobody = head == tail and (prestart == 0 or threshold >= 1)
    if nobody and (not crowded) and take() then
      admitted = 1
    else
      out_kind, out_n = 'q', tail
      tail = tail + 1
    end
  end
end
redis.call('HSET', KEYS[1], 'tail', tail, 'head', head, 'prestart', prestart,
  'threshold', string.format('%.17g', threshold))
redis.call('EXPIRE', KEYS[1], ARGV[10])
redis.call('HSET', KEYS[2], 'tokens', string.format('%.17g', tokens),
  'at', string.format('%.17g', now))
redis.call('EXPIRE', KEYS[2], ARGV[11])
return {admitted, out_kind, string.format('%.0f', out_n), string.format('%.0f', head),
  string.format('%.0f', prestart), string.format('%.17g', threshold)}
"""


def _limited_join() -> str:
    """A newcomer's join in one round trip: the per-source GCRA check (KEYS[1..2],
    ARGV[1..5], as ratelimit's script), then, if it passed, the join (its keys and arguments
    shifted after those). Over budget: {-1, wait}, and the line is not touched."""
    gcra = GCRA_LUA.replace(
        "return string.format('%.6f', wait)", "return {-1, string.format('%.6f', wait)}"
    )
    gcra = gcra.replace("return '0'", "")
    join = re.sub(r"KEYS\[(\d+)\]", lambda m: f"KEYS[{int(m.group(1)) + 2}]", _JOIN)
    join = re.sub(r"ARGV\[(\d+)\]", lambda m: f"ARGV[{int(m.group(1)) + 5}]", join)
    return "do\n" + gcra + "end\n" + join


_LIMITED_JOIN = _limited_join()


class ScriptBatch:
    """Script calls made in the same event-loop turn sent as one pipeline: one write, one
    read and one pass of the client's machinery for all of them, instead of one each (what
    a join costs the worker in Redis is mostly redis-py's per-command work, not Redis's)."""

    def __init__(self, client: Any) -> None:
        self._client = client
        self._pending: list[tuple[Any, list[str], list[Any], asyncio.Future[Any]]] = []
        self._flushing: set[asyncio.Task[None]] = set()
        self.pipelines = 0
        self.calls = 0

    async def call(self, script: Any, keys: list[str], args: list[Any]) -> Any:
        """`script(keys=keys, args=args)`, in the next pipeline."""
        loop = asyncio.get_running_loop()
        future: asyncio.Future[Any] = loop.create_future()
        self._pending.append((script, keys, args, future))
        if len(self._pending) == 1:  # the first of this turn: send them all once it ends
            loop.call_soon(self._flush)
        return await future

    def _flush(self) -> None:
        batch, self._pending = self._pending, []
        task = asyncio.get_running_loop().create_task(self._send(batch))
        self._flushing.add(task)  # owned until done
        task.add_done_callback(self._flushing.discard)

    async def _send(
        self, batch: list[tuple[Any, list[str], list[Any], asyncio.Future[Any]]]
    ) -> None:
        self.pipelines += 1
        self.calls += len(batch)
        try:
            pipe = self._client.pipeline(transaction=False)
            for script, keys, args, _ in batch:
                await script(keys=keys, args=args, client=pipe)  # queued, not sent
            results = await pipe.execute(raise_on_error=False)
            if len(results) != len(batch):
                raise RuntimeError(f"{len(batch)} scripts in a pipeline, {len(results)} answers")
        except Exception as exc:  # every caller gets the failure (they answer 503)
            for *_, future in batch:
                if not future.done():
                    future.set_exception(exc)
            return
        for (*_, future), result in zip(batch, results, strict=True):
            if future.done():  # the caller was cancelled (its client went away)
                continue
            if isinstance(result, Exception):
                future.set_exception(result)
            else:
                future.set_result(result)


class SharedAdmission(Admission):
    """`Admission` with its line and pace in Redis (`node` names this node's token bucket)."""

    shared = True

    def __init__(
        self,
        client: Any,
        aclient: Any,
        node: str,
        limits: Limits,
        key: bytes,
        now: float,
        audience: WorkerAudience | None = None,
    ) -> None:
        """`client` and `aclient`: the process's redis.Redis and redis.asyncio.Redis."""
        super().__init__(limits, key, now, audience)
        self._script = client.register_script(_JOIN)
        self._ascript = aclient.register_script(_JOIN)
        self._alimited = aclient.register_script(_LIMITED_JOIN)
        self._batch = ScriptBatch(aclient)
        self._bucket = f"ruang:bucket:{node}"
        self._started: dict[str, bool] = {}

    def schedule(self, space_id: str) -> None:
        """The space is scheduled: arrivals get draws until `start`."""
        self._started[space_id] = False

    def start(self, space_id: str) -> None:
        """The space started: pre-start draws go first, in draw order."""
        self._started[space_id] = True

    def join(
        self, space_id: str, network: str, token: str | None, now: float, crowded: bool = False
    ) -> Admitted | Waiting:
        """Decide one join against the shared line (same rules as `Admission.join`)."""
        keys, args = self._request(space_id, network, token, now, crowded)
        return self._decide(space_id, self._script(keys=keys, args=args), now)

    async def join_async(
        self, space_id: str, network: str, token: str | None, now: float, crowded: bool = False
    ) -> Admitted | Waiting:
        """`join` with the Redis round trip awaited (redis.asyncio): the worker's event loop
        keeps serving listeners while the line is consulted."""
        keys, args = self._request(space_id, network, token, now, crowded)
        out = await self._batch.call(self._ascript, keys, args)
        return self._decide(space_id, out, now)

    async def join_limited_async(
        self,
        limit: tuple[list[str], list[str]],
        space_id: str,
        network: str,
        token: str | None,
        now: float,
        crowded: bool = False,
    ) -> Admitted | Waiting | float:
        """`join_async` for a newcomer whose per-source budget is shared too: `limit` (from
        `SharedRateLimiter.request`) is checked in the same script, one round trip for both.
        Over budget: the seconds to wait (a float), and the line is not touched."""
        keys, args = self._request(space_id, network, token, now, crowded)
        out = await self._batch.call(self._alimited, [*limit[0], *keys], [*limit[1], *args])
        if int(out[0]) == -1:
            return float(out[1])
        return self._decide(space_id, out, now)

    def _request(
        self, space_id: str, network: str, token: str | None, now: float, crowded: bool
    ) -> tuple[list[str], list[Any]]:
        held = self._read(space_id, token)
        kind, n = held if held is not None else ("", 0)
        room = self.listeners(now) < self.limits.max_listeners
        started = self._started.get(space_id, True)
        keys = [f"ruang:line:{space_id}", self._bucket]
        args = [
            repr(now),
            repr(self.limits.joins_per_s),
            self.limits.burst,
            int(room),
            int(crowded),
            int(started),
            kind,
            n,
            self._draw(space_id, network),
            LINE_TTL_S,
            BUCKET_TTL_S,
        ]
        return keys, args

    def _decide(self, space_id: str, out: Any, now: float) -> Admitted | Waiting:
        if int(out[0]):
            return self._admit()
        line = _Line(head=int(out[3]), prestart=int(out[4]), threshold=float(out[5]))
        return self._wait(space_id, line, str(out[1]), int(out[2]), now)
