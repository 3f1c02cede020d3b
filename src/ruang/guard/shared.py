"""The waiting room shared by every node (Redis): one line per space, FIFO across nodes.

The rules are those of `Admission` (see admission.py); only the counters move: a space's line
(`tail`, `head`, `prestart`, `threshold`) lives in one Redis hash, and each node's token bucket
(its admission pace) in another, so a node can admit only at its own pace but always the next
person in the shared line. Queue tokens are signed with the shared ticket key, so a place
taken on one node is honoured on all.

A join is one entry of a Lua script that decides a whole batch of joins at once, in arrival
order, atomically (`_BATCH`); the joins a worker reads while a batch is on its way go in the
next one (`JoinBatch`), so under load one round trip decides dozens of joins. A newcomer's
entry checks its per-source join budget (the GCRA of ratelimit.py) first, in the same call.
"""

from __future__ import annotations

import asyncio
from typing import Any

import redis

from ruang.audience import WorkerAudience
from ruang.guard.admission import Admission, Admitted, Limits, Waiting, _Line

LINE_TTL_S = 2 * 24 * 3600  # a line nobody touched for this long is forgotten
BUCKET_TTL_S = 3600
MAX_IN_FLIGHT = 1  # batches on their way to Redis at once: one, so that a worker's joins
# reach the line in the order it read them (and under load the worker is busy meanwhile)
BATCH_TIMEOUT_S = 5.0  # a batch not answered by then fails (its joins get 503), so the next
# can go: Redis runs one in about a millisecond
MAX_BATCH = 256  # joins per batch: Redis runs a script alone, ~5 µs a join, so ≤ ~1.5 ms

# KEYS[1]: this node's token bucket; ARGV[1..4]: the line's and the bucket's TTLs (s), the
# node's pace (joins/s) and burst. Then one ARGV per join, its fields separated by spaces, and
# its keys next in KEYS:
#   "J now room crowded started kind n draw"  keys: the line
#   "L now ip_t ip_tau net_t net_tau room crowded started kind n draw"
#                                             keys: the address's and the network's join
#                                             budget (ratelimit.py's GCRA), then the line
# kind is "p" (a pre-start draw), "q" (a place in line) or "-" (a newcomer). Each join is
# decided as the single-join script of the embedded rules would, in order; lines and the
# bucket are read once and written once per batch.
# Returns one string, a line per join: "-1 wait" (over budget: nothing touched), or
# "admitted kind n head prestart threshold".
_BATCH = """
local line_ttl, bucket_ttl = ARGV[1], ARGV[2]
local rate, burst = tonumber(ARGV[3]), tonumber(ARGV[4])
local b = redis.call('HMGET', KEYS[1], 'tokens', 'at')
local tokens, at = tonumber(b[1]), tonumber(b[2])
local bucket_used = false
local lines, order = {}, {}
local out = {}
local k = 2
for i = 5, #ARGV do
  local f = {}
  for w in string.gmatch(ARGV[i], '%S+') do f[#f + 1] = w end
  local now = tonumber(f[2])
  local j = 3
  local limited = false
  if f[1] == 'L' then
    local ip_t, ip_tau = tonumber(f[3]), tonumber(f[4])
    local net_t, net_tau = tonumber(f[5]), tonumber(f[6])
    local a = tonumber(redis.call('GET', KEYS[k])) or now
    local c = tonumber(redis.call('GET', KEYS[k + 1])) or now
    a = math.max(a, now) + ip_t
    c = math.max(c, now) + net_t
    local wait = math.max(a - now - ip_tau, c - now - net_tau)
    if wait > 1e-9 then
      limited = true
      out[#out + 1] = '-1 ' .. string.format('%.6f', wait)
    else
      redis.call('SET', KEYS[k], string.format('%.17g', a), 'PX', math.ceil((a - now) * 1000) + 1)
      redis.call('SET', KEYS[k + 1], string.format('%.17g', c), 'PX',
        math.ceil((c - now) * 1000) + 1)
    end
    k = k + 2
    j = 7
  end
  local key = KEYS[k]
  k = k + 1
  if not limited then
    local room, crowded, started = f[j] == '1', f[j + 1] == '1', f[j + 2] == '1'
    local kind, n, draw = f[j + 3], tonumber(f[j + 4]), tonumber(f[j + 5])
    local s = lines[key]
    if s == nil then
      local h = redis.call('HMGET', key, 'tail', 'head', 'prestart', 'threshold')
      s = {tonumber(h[1]) or 0, tonumber(h[2]) or 0, tonumber(h[3]) or 0, tonumber(h[4]) or 0}
      lines[key] = s
      order[#order + 1] = key
    end
    local tail, head, prestart, threshold = s[1], s[2], s[3], s[4]
    tokens, at = tokens or burst, at or now
    tokens = math.min(burst, tokens + math.max(0, now - at) * rate)
    -- never back: a batch read before another worker's last one must not be credited the
    -- same seconds twice
    at = math.max(at, now)
    bucket_used = true
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
      if kind ~= '-' then
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
    s[1], s[2], s[3], s[4] = tail, head, prestart, threshold
    out[#out + 1] = admitted .. ' ' .. out_kind .. ' ' .. string.format('%.0f', out_n) .. ' '
      .. string.format('%.0f', head) .. ' ' .. string.format('%.0f', prestart) .. ' '
      .. string.format('%.17g', threshold)
  end
end
for _, key in ipairs(order) do
  local s = lines[key]
  redis.call('HSET', key, 'tail', s[1], 'head', s[2], 'prestart', s[3],
    'threshold', string.format('%.17g', s[4]))
  redis.call('EXPIRE', key, line_ttl)
end
if bucket_used then
  redis.call('HSET', KEYS[1], 'tokens', string.format('%.17g', tokens),
    'at', string.format('%.17g', at))
  redis.call('EXPIRE', KEYS[1], bucket_ttl)
end
return table.concat(out, '\\n')
"""


class JoinBatch:
    """Joins decided by Redis in batches: each `submit` is one entry of `_BATCH`; the entries
    submitted in one event-loop turn, and those that arrive while a batch is on its way, go
    out together as one script call (one EVALSHA: no pipeline, whose redis-py checks its
    scripts with SCRIPT EXISTS, a second round trip, every time). Under load a batch grows to
    what arrived during one round trip (up to MAX_BATCH); alone, a join waits one round
    trip, as before. What a join costs a worker in Redis is then mostly its own entry's text,
    not redis-py's work per command (packing, the connection pool, parsing each reply)."""

    def __init__(self, client: Any, bucket: str, limits: Limits) -> None:
        """`client`: a redis.asyncio.Redis with decode_responses; `bucket`: this node's
        token bucket's key."""
        self._script = client.register_script(_BATCH)
        self._head = _settings(limits)
        self._bucket = bucket
        self._keys: list[str] = []
        self._entries: list[str] = []
        self._futures: list[asyncio.Future[str]] = []
        self._scheduled = False
        self._in_flight: set[asyncio.Task[None]] = set()  # owned until done
        self.batches = 0
        self.joins = 0

    def submit(self, keys: list[str], entry: str) -> asyncio.Future[str]:
        """Queue one join (`entry`, with its `keys`, as `_BATCH` reads them); its future gets
        the join's line of the answer, or the batch's exception."""
        loop = asyncio.get_running_loop()
        future: asyncio.Future[str] = loop.create_future()
        self._keys += keys
        self._entries.append(entry)
        self._futures.append(future)
        if not self._scheduled:  # the first of this turn: send once the turn ends
            self._scheduled = True
            loop.call_soon(self._flush)
        return future

    def statistics(self) -> dict[str, Any]:
        """Batches sent, joins in them, and how many are on their way now."""
        return {"batches": self.batches, "joins": self.joins, "in_flight": len(self._in_flight)}

    def _flush(self) -> None:
        self._scheduled = False
        if not self._entries or len(self._in_flight) >= MAX_IN_FLIGHT:
            return  # sent when a batch on its way comes back
        n = min(len(self._entries), MAX_BATCH)
        entries, futures = self._entries[:n], self._futures[:n]
        if n == len(self._entries):
            keys = self._keys
            self._keys, self._entries, self._futures = [], [], []
        else:  # the rest goes in the next batch
            used = sum(_key_count(e) for e in entries)
            keys, self._keys = self._keys[:used], self._keys[used:]
            self._entries, self._futures = self._entries[n:], self._futures[n:]
        task = asyncio.get_running_loop().create_task(self._send(keys, entries, futures))
        self._in_flight.add(task)
        task.add_done_callback(self._sent)

    def _sent(self, task: asyncio.Task[None]) -> None:
        self._in_flight.discard(task)
        if self._entries and not self._scheduled:
            self._scheduled = True
            asyncio.get_running_loop().call_soon(self._flush)

    async def _send(
        self, keys: list[str], entries: list[str], futures: list[asyncio.Future[str]]
    ) -> None:
        self.batches += 1
        self.joins += len(entries)
        try:
            try:
                async with asyncio.timeout(BATCH_TIMEOUT_S):
                    reply = await self._script(
                        keys=[self._bucket, *keys], args=[*self._head, *entries]
                    )
            except TimeoutError:
                raise redis.TimeoutError(f"no answer to a batch in {BATCH_TIMEOUT_S} s") from None
            lines = str(reply).split("\n")
            if len(lines) != len(entries):
                raise RuntimeError(f"{len(entries)} joins in a batch, {len(lines)} answers")
        except Exception as exc:  # every caller gets the failure (they answer 503)
            for future in futures:
                if not future.done():
                    future.set_exception(exc)
            return
        except BaseException:  # cancelled (the worker stops): nobody is left waiting on it
            for future in futures:
                if not future.done():
                    future.set_exception(redis.ConnectionError("the join batch was cancelled"))
            raise
        for future, line in zip(futures, lines, strict=True):
            if not future.done():  # else the caller was cancelled (its client went away)
                future.set_result(line)


def _key_count(entry: str) -> int:
    return 3 if entry[0] == "L" else 1


def _settings(limits: Limits) -> list[Any]:
    """`_BATCH`'s first arguments for a node with these limits."""
    return [LINE_TTL_S, BUCKET_TTL_S, repr(float(limits.joins_per_s)), limits.burst]


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
        self._bucket = f"ruang:bucket:{node}"
        self._script = client.register_script(_BATCH)
        self.batch = JoinBatch(aclient, self._bucket, limits)
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
        """Decide one join against the shared line (same rules as `Admission.join`): a batch
        of one, blocking."""
        key, fields = self._fields(space_id, network, token, now, crowded)
        keys, args = [self._bucket, key], [*_settings(self.limits), f"J {now!r} {fields}"]
        decision = self.decide(space_id, str(self._script(keys=keys, args=args)), now)
        assert not isinstance(decision, float)  # no budget in the entry
        return decision

    async def join_async(
        self, space_id: str, network: str, token: str | None, now: float, crowded: bool = False
    ) -> Admitted | Waiting:
        """`join` with the Redis round trip awaited, in the next batch: the worker's event
        loop keeps serving listeners while the line is consulted."""
        line = await self.submit(space_id, network, token, now, crowded)
        decision = self.decide(space_id, line, now)
        assert not isinstance(decision, float)  # no budget in the entry
        return decision

    def submit(
        self,
        space_id: str,
        network: str,
        token: str | None,
        now: float,
        crowded: bool = False,
        limit: tuple[list[str], list[str]] | None = None,
    ) -> asyncio.Future[str]:
        """Queue one join in the next batch; `decide` reads its answer. With `limit` (from
        `SharedRateLimiter.request`, at the same `now`), a newcomer's per-source budget is
        checked in the same entry, first."""
        key, fields = self._fields(space_id, network, token, now, crowded)
        if limit is None:
            return self.batch.submit([key], f"J {now!r} {fields}")
        gcra_keys, gcra_args = limit  # now, then T and τ per address and per network
        return self.batch.submit([*gcra_keys, key], f"L {' '.join(gcra_args)} {fields}")

    def decide(self, space_id: str, line: str, now: float) -> Admitted | Waiting | float:
        """A batch's answer for one join: admitted, a place in line, or (over its budget) the
        seconds to wait, a float."""
        out = line.split(" ")
        if out[0] == "-1":
            return float(out[1])
        if out[0] == "1":
            return self._admit()
        state = _Line(head=int(out[3]), prestart=int(out[4]), threshold=float(out[5]))
        return self._wait(space_id, state, out[1], int(out[2]), now)

    def _fields(
        self, space_id: str, network: str, token: str | None, now: float, crowded: bool
    ) -> tuple[str, str]:
        """The line's key and a join's fields after `now` (see `_BATCH`)."""
        held = self._read(space_id, token)
        kind, n = held if held is not None else ("-", 0)
        room = self.listeners(now) < self.limits.max_listeners
        started = self._started.get(space_id, True)
        draw = 0 if started else self._draw(space_id, network)  # only arrivals before the start
        fields = f"{int(room)} {int(crowded)} {int(started)} {kind} {n} {draw}"
        return f"ruang:line:{space_id}", fields
