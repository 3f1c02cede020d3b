"""The traffic recorder: per-second aggregates of one delivery worker's requests, hash-chained.

`request()` is on the hot path of every HTTP request: it does a handful of dict updates and
nothing else (no I/O, no hashing, no allocation beyond a new key). A listener's requests take
a cheaper road: `listened()` counts them in the listener's `Tally` for the second (one
lookup, a few counter updates); a tally is added to the second's tables once, when the second
closes (or when the same ticket comes from another source) — one table update per
listener-second instead of one per request, with the same figures (the listener's timing, for
the gaps and pacing, is still kept per request).
`flush()`, about once a second, turns every finished second into a record — one dict for the
whole worker (`total`) and one per space — and appends the records to the worker's chain
(`chainfile.ChainWriter`).

Bounds: per second and scope at most `max_sources` sources, networks and listeners are told
apart (the requests of any further ones are counted in `src_over`/`net_over`, and left out of
the distributions); at most MAX_SPACES spaces per second (the rest go to OTHER_SPACE); at most
`max_listeners` listeners and `max_networks` networks remembered across seconds (oldest
first out); at most MAX_PENDING_S unflushed seconds. Disk: `max_bytes` per chain.

Definitions (docs/FORENSICS.md has the reasons):
- network age: seconds since this worker first saw the network (a /24 or /64), counted in
  the buckets of AGE_EDGES_S (< 1 min, 1–10 min, 10 min–1 h, 1 h–1 day, older). The report
  calls a network "known" in a window when it was first seen before the window began. New
  networks wait in a table of young ones (FIFO, `max_networks`); from AGE_EDGES_S[0] on they
  move to a table of established ones from which the least recently seen are dropped in
  batches, so a flood of new networks cannot push the regular audience's out of memory.
- paced listener (player-like): a ticketed listener with playlist or media requests in the
  second, at most PACE_MAX_PER_S of them in the second, and both a playlist and a media
  request within the last PACE_WINDOW_S.
- packed listeners (`packed_age`): active listeners in a network holding at least
  PACKED_LISTENERS active listeners in the second, by the network's age bucket.
- gaps: for ticketed listeners' playlist and media requests, the time since the same
  listener's previous one, counted in 10 ms bins (`gaps`: {bin: n}, the last bin ≥ 1 s).
- evidence carried (`carried`): what a request refused by a cheaper check first (a rate limit)
  carried — its ticket classified as `forged`, `expired` or `valid` by the caller — so a
  flood refused before its tickets were checked still shows what it carried.
- shared tickets (`shared`): tickets (by listener id, valid or not, answered or refused) used
  by at least SHARED_SOURCES sources in the second: how many, their sources, networks and
  requests (refused, playlist and media among them). One player is one source; a phone
  moving from Wi-Fi to mobile data is two. `hot_*`: tickets with more than HOT_TICKET
  requests in the second, and their requests — one ticket is one player, whatever address
  (or carrier NAT) it comes from.
- conversion: `tix` = listener ids given a ticket (join answered ok) new to this worker,
  `listen` = listener ids fetching media for the first time on this worker, `conv` = those
  whose ticket this worker issued within CONVERSION_S.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from ruang.forensics.chainfile import ChainWriter
from ruang.forensics.features import (
    AGE_BUCKETS,
    AGE_EDGES_S,
    GAP_BINS,
    GAP_BINS_PER_S,
    GROUPS,
    HOT_TICKET,
    MEDIA,
    PACKED_LISTENERS,
    SHARED_FIELDS,
    add_bins,
    add_counts,
    age_bucket,
    entropy,
    failures,
    rate_spread,
    top_items,
)

RECORD_VERSION = 1
MAX_SOURCES = 100_000  # distinct sources (and networks, listeners) told apart per second
MAX_SPACES = 256  # spaces with their own figures per second
OTHER_SPACE = "~other"  # where the requests of further spaces are counted
MAX_LISTENERS = 500_000  # listener ids remembered across seconds (pacing, conversion)
MAX_NETWORKS = 200_000  # networks remembered, per table (young, established)
PACE_MAX_PER_S = 8  # 2× an LL-HLS player: a playlist and a part per 0.512 s part ≈ 3.9/s
PACE_WINDOW_S = 4.0  # a player fetches both a playlist and media within 8 parts
CONVERSION_S = 10.0  # a ticket followed by media within this long counts as converted
SHARED_SOURCES = 3  # a ticket used by this many sources in one second is shared
SHARED_KEPT = 16  # distinct sources and networks told apart per ticket and second
MAX_PENDING_S = 120  # unflushed seconds kept if flush() stops being called
_NEVER = -1e18
_GROUP_OF = {"join": "join", "playlist": "playlist", **{c: "media" for c in MEDIA}}
_PLAYER = {"playlist": 1, **{c: 2 for c in MEDIA}}  # 1 = playlist, 2 = media


class _Bucket:
    """Raw counters of one scope (a space, or requests without one) in one second."""

    __slots__ = (
        "counts", "sources", "networks", "groups", "listeners", "src_over", "net_over",
        "late", "tix", "listen", "conv", "gaps", "carried", "tickets",
    )  # fmt: skip

    def __init__(self) -> None:
        self.counts: dict[tuple[str, str], int] = {}
        self.sources: dict[str, int] = {}
        self.networks: dict[str, int] = {}
        self.groups: dict[str, dict[str, int]] = {g: {} for g in GROUPS}
        self.listeners: dict[str, list[Any]] = {}  # id -> [requests, network]
        self.src_over = self.net_over = self.late = 0
        self.tix = self.listen = self.conv = 0
        self.gaps: dict[int, int] = {}  # 10 ms bin of a listener's gap between requests -> n
        self.carried: dict[str, int] = {}  # what refused requests carried -> n
        # ticket's listener id -> [first source, network, requests, refused, playlist, media,
        # sources, networks] (see TrafficRecorder._ticket)
        self.tickets: dict[str, list[Any]] = {}


class Tally:
    """One listener's ticketed requests in the open second from one source in one space
    (what a player sends), counted here and added to the second's tables once
    (`TrafficRecorder.listened`)."""

    __slots__ = (
        "space", "source", "network", "listener", "counts", "n", "refused",
        "playlist", "media", "players", "late", "gaps", "listen", "conv", "state",
    )  # fmt: skip

    def __init__(self) -> None:
        self.space: str | None = None
        self.source = self.network = self.listener = ""
        self.counts: dict[tuple[str, str], int] = {}
        self.n = self.refused = self.playlist = self.media = self.players = self.late = 0
        self.listen = self.conv = 0
        self.gaps: dict[int, int] = {}
        self.state: list[float] | None = None  # the listener's timing (the recorder's)


def _played(state: list[float], kind: int, now: float, into: _Bucket | Tally) -> None:
    """A player's request (`kind` 1 a playlist, 2 media) at `now`: the gap since its last one
    and, on its first media request, a listener started (converted if it joined within
    CONVERSION_S), counted `into` a second's bucket or a tally; `state` (the listener's
    [joined, playlist, media, last request] times) moved on."""
    if state[3] != _NEVER:
        gap_bin = min(GAP_BINS, int((now - state[3]) * GAP_BINS_PER_S))
        gaps = into.gaps
        gaps[gap_bin] = gaps.get(gap_bin, 0) + 1
    state[3] = now
    if kind == 1:
        state[1] = now
    else:
        if state[2] == _NEVER:
            into.listen += 1
            if now - state[0] <= CONVERSION_S:
                into.conv += 1
        state[2] = now


def _count(table: dict[str, int], key: str, cap: int) -> bool:
    n = table.get(key)
    if n is not None:
        table[key] = n + 1
        return True
    if len(table) < cap:
        table[key] = 1
        return True
    return False


class TrafficRecorder:
    """Per-second traffic aggregates of one delivery worker, appended to a hash chain."""

    def __init__(
        self,
        directory: Path,
        node: str,
        worker: int,
        *,
        max_bytes: int = 256 * 2**20,
        max_sources: int = MAX_SOURCES,
        max_listeners: int = MAX_LISTENERS,
        max_networks: int = MAX_NETWORKS,
    ) -> None:
        if max_sources < 1 or max_listeners < 1 or max_networks < 1:
            raise ValueError("every table bound must be at least 1")
        self.node, self.worker = node, worker
        self._cap = max_sources
        self._max_listeners = max_listeners
        self._max_networks = max_networks
        self._writer = ChainWriter(directory, node, worker, max_bytes)
        self._sec = 0
        self._open: dict[str | None, _Bucket] = {}
        self._pending: dict[int, dict[str | None, _Bucket]] = {}
        self._signals: dict[int, dict[str, float]] = {}
        self._lstate: dict[str, list[float]] = {}  # id -> [ticket_t, playlist_t, media_t, last_t]
        self._young: dict[str, int] = {}  # network -> first seen
        self._established: dict[str, list[int]] = {}  # network -> [first seen, last seen]
        self._dropped_s = 0
        self._requests = 0
        self._src_over = 0
        self._flush_s = 0.0
        self._tallies: dict[str, Tally] = {}  # the open second's, by listener id

    # --- hot path ------------------------------------------------------------------------

    def request(
        self,
        now: float,
        space: str | None,
        cls: str,
        outcome: str,
        source: str,
        network: str,
        listener: str | None = None,
        late: bool = False,
        ticket: str | None = None,
        carried: str | None = None,
    ) -> None:
        """Count one request (answered or refused). No I/O; a few dict updates. `ticket`: the
        listener id the request's ticket names, valid or not; `carried`: what a request that
        a cheaper check refused carried (its ticket `forged`, `expired` or `valid`)."""
        sec = int(now)
        if sec > self._sec:
            self._roll(sec)
        b = self._open.get(space)
        if b is None:
            b = self._bucket(space)
        counts = b.counts
        key = (cls, outcome)
        counts[key] = counts.get(key, 0) + 1
        cap = self._cap
        if not _count(b.sources, source, cap):
            b.src_over += 1
        if not _count(b.networks, network, cap):
            b.net_over += 1
        group = _GROUP_OF.get(cls)
        if group is not None:
            _count(b.groups[group], source, cap)
        if listener is not None:
            self._listener(b, now, cls, outcome, listener, network)
        if late:
            b.late += 1
        if carried is not None:
            b.carried[carried] = b.carried.get(carried, 0) + 1
        if ticket is not None:
            self._ticket(b, ticket, source, network, outcome, group)

    def listened(
        self,
        now: float,
        space: str | None,
        cls: str,
        outcome: str,
        source: str,
        network: str,
        listener: str,
        late: bool = False,
    ) -> None:
        """`request()` for a ticketed listener request (`listener`: its ticket's listener id,
        valid or not) answered `outcome` and carrying nothing else, counted in the listener's
        `Tally` for the second: the same figures, one update of the second's tables per
        listener-second (per source and space) instead of one per request."""
        sec = int(now)
        if sec > self._sec:
            self._roll(sec)  # adds every tally of the second that ended
        tally = self._tallies.get(listener)
        if tally is None:
            tally = self._tallies[listener] = Tally()
            tally.space, tally.source, tally.network = space, source, network
            tally.listener = listener
        elif source != tally.source or space != tally.space:  # a ticket shared, or moved
            self._fold(tally)
            tally.space, tally.source, tally.network = space, source, network
        counts = tally.counts
        key = (cls, outcome)
        counts[key] = counts.get(key, 0) + 1
        tally.n += 1
        if late:
            tally.late += 1
        kind = _PLAYER.get(cls)
        if kind == 1:
            tally.playlist += 1
        elif kind == 2:
            tally.media += 1
        if outcome != "ok":
            tally.refused += 1
            return
        state = tally.state
        if state is None:  # the listener's timing: remembered once it is answered
            state = self._lstate.get(listener)
            if state is None:
                if len(self._lstate) >= self._max_listeners:
                    del self._lstate[next(iter(self._lstate))]
                state = self._lstate[listener] = [_NEVER, _NEVER, _NEVER, _NEVER]
            tally.state = state
        if kind is None:
            return
        _played(state, kind, now, tally)  # its timing, per request, as `_listener` does
        tally.players += 1

    def _fold(self, t: Tally) -> None:
        """Add a tally's counts to the open second's tables, and empty it."""
        b = self._open.get(t.space)
        if b is None:
            b = self._bucket(t.space)
        counts = b.counts
        for key, n in t.counts.items():
            counts[key] = counts.get(key, 0) + n
        t.counts = {}
        n, cap, source, network = t.n, self._cap, t.source, t.network
        if not _count_n(b.sources, source, n, cap):
            b.src_over += n
        if not _count_n(b.networks, network, n, cap):
            b.net_over += n
        if t.playlist:
            _count_n(b.groups["playlist"], source, t.playlist, cap)
        if t.media:
            _count_n(b.groups["media"], source, t.media, cap)
        if t.players:
            entry = b.listeners.get(t.listener)
            if entry is not None:
                entry[0] += t.players
            elif len(b.listeners) < cap:
                b.listeners[t.listener] = [t.players, network]
        if t.gaps:
            gaps = b.gaps
            for gap_bin, k in t.gaps.items():
                gaps[gap_bin] = gaps.get(gap_bin, 0) + k
            t.gaps = {}
        b.late += t.late
        b.listen += t.listen
        b.conv += t.conv
        # the ticket's line (`_ticket`), for its n requests from one source
        e = b.tickets.get(t.listener)
        if e is None:
            if len(b.tickets) < cap:
                b.tickets[t.listener] = [
                    source, network, n, t.refused, t.playlist, t.media, None, None,
                ]  # fmt: skip
        else:
            if source != e[0]:
                if e[6] is None:
                    e[6], e[7] = {e[0]}, {e[1]}
                if len(e[6]) < SHARED_KEPT:
                    e[6].add(source)
                    e[7].add(network)
            e[2] += n
            e[3] += t.refused
            e[4] += t.playlist
            e[5] += t.media
        t.n = t.refused = t.playlist = t.media = t.players = t.late = t.listen = t.conv = 0
        t.state = None  # looked up again: it may have been forgotten meanwhile

    def _ticket(
        self, b: _Bucket, ticket: str, source: str, network: str, outcome: str, group: str | None
    ) -> None:
        # [first source, its network, requests, refused, playlist, media, other sources and
        # networks as sets or None]: a ticket used by one player (the common case) costs a
        # string comparison, no set
        t = b.tickets.get(ticket)
        if t is None:
            if len(b.tickets) >= self._cap:
                return
            t = b.tickets[ticket] = [source, network, 0, 0, 0, 0, None, None]
        elif source != t[0]:
            if t[6] is None:
                t[6], t[7] = {t[0]}, {t[1]}
            if len(t[6]) < SHARED_KEPT:
                t[6].add(source)
                t[7].add(network)
        t[2] += 1
        if outcome != "ok":
            t[3] += 1
        if group == "playlist":
            t[4] += 1
        elif group == "media":
            t[5] += 1

    def _listener(
        self, b: _Bucket, now: float, cls: str, outcome: str, listener: str, network: str
    ) -> None:
        state = self._lstate.get(listener)
        if state is None:
            if len(self._lstate) >= self._max_listeners:
                del self._lstate[next(iter(self._lstate))]
            state = self._lstate[listener] = [_NEVER, _NEVER, _NEVER, _NEVER]
        kind = _PLAYER.get(cls)
        if kind is None:
            if cls == "join" and outcome == "ok":
                if state[0] == _NEVER:
                    b.tix += 1
                state[0] = now
            return
        _played(state, kind, now, b)
        entry = b.listeners.get(listener)
        if entry is not None:
            entry[0] += 1
        elif len(b.listeners) < self._cap:
            b.listeners[listener] = [1, network]

    def _bucket(self, space: str | None) -> _Bucket:
        if space is not None and len(self._open) >= MAX_SPACES - 1:
            space = OTHER_SPACE
            if space in self._open:
                return self._open[space]
        b = self._open[space] = _Bucket()
        return b

    def _roll(self, sec: int) -> None:
        """A new second began: the open one (with its tallies) waits for flush()."""
        if self._tallies:
            for tally in self._tallies.values():
                self._fold(tally)
            self._tallies = {}
        if self._open:
            self._pending[self._sec] = self._open
            self._open = {}
            while len(self._pending) > MAX_PENDING_S:
                del self._pending[min(self._pending)]
                self._dropped_s += 1
        self._sec = sec

    # --- once a second -------------------------------------------------------------------

    def signals(self, now: float, **values: float) -> None:
        """Store the worker's signals for the current second (lag, CPU, shed level, …)."""
        sec = int(now)
        self._signals.setdefault(sec, {}).update({k: float(v) for k, v in values.items()})
        while len(self._signals) > MAX_PENDING_S:
            del self._signals[min(self._signals)]

    def flush(self, now: float) -> list[dict[str, Any]]:
        """Close every second before `now`'s, append their records to the chain, return them."""
        started = time.perf_counter()
        sec_now = int(now)
        if self._sec < sec_now:
            self._roll(sec_now)
        due = sorted(
            {s for s in self._pending if s < sec_now} | {s for s in self._signals if s < sec_now}
        )
        records = [self._record(s, self._pending.pop(s, {}), self._signals.pop(s, {})) for s in due]
        if records:
            self._writer.append(records)
        self._flush_s = time.perf_counter() - started
        return records

    def _record(
        self, sec: int, buckets: dict[str | None, _Bucket], signals: dict[str, float]
    ) -> dict[str, Any]:
        ages = self._learn(sec, buckets)
        spaces = {
            space: self._summarise(sec, [b], ages)
            for space, b in buckets.items()
            if space is not None
        }
        total = self._summarise(sec, list(buckets.values()), ages)
        self._requests += total["req"]
        self._src_over += total["src_over"]
        return {
            "v": RECORD_VERSION,
            "node": self.node,
            "worker": self.worker,
            "t": sec,
            "total": total,
            "spaces": spaces,
            "signals": signals,
        }

    def _learn(self, sec: int, buckets: dict[str | None, _Bucket]) -> dict[str, int]:
        """The age bucket of each of this second's networks, remembering the new ones."""
        seen: set[str] = set()
        for b in buckets.values():
            seen.update(b.networks)
        ages: dict[str, int] = {}
        for net in seen:
            established = self._established.get(net)
            if established is not None:
                established[1] = sec
                first = established[0]
            else:
                first = self._young.get(net, sec)
                if net not in self._young:
                    if len(self._young) >= self._max_networks:
                        del self._young[next(iter(self._young))]
                    self._young[net] = sec
                elif sec - first >= AGE_EDGES_S[0]:
                    del self._young[net]
                    if len(self._established) >= self._max_networks:
                        self._forget_established()
                    self._established[net] = [first, sec]
            ages[net] = age_bucket(sec - first)
        return ages

    def _forget_established(self) -> None:
        """Drop the least recently seen tenth of the established networks (rare, amortised)."""
        by_age = sorted(self._established.items(), key=lambda kv: kv[1][1])
        for net, _ in by_age[: max(1, len(by_age) // 10)]:
            del self._established[net]

    def _summarise(self, sec: int, buckets: list[_Bucket], ages: dict[str, int]) -> dict[str, Any]:
        if len(buckets) == 1:
            b = buckets[0]
            sources, networks, groups, listeners = b.sources, b.networks, b.groups, b.listeners
        else:
            sources, networks, listeners = {}, {}, {}
            groups = {g: {} for g in GROUPS}
            for b in buckets:
                _add_capped(sources, b.sources, self._cap)
                _add_capped(networks, b.networks, self._cap)
                for g in GROUPS:
                    _add_capped(groups[g], b.groups[g], self._cap)
                listeners.update(b.listeners)
        by: dict[str, dict[str, int]] = {}
        for b in buckets:
            for (cls, outcome), n in b.counts.items():
                per = by.setdefault(cls, {})
                per[outcome] = per.get(outcome, 0) + n
        req = sum(sum(v.values()) for v in by.values())
        spread = rate_spread(sources.values())
        ent, ent_n = entropy(spread["n"], spread["clog"], len(sources))
        paced = 0
        per_net: dict[str, int] = {}
        since = sec - PACE_WINDOW_S
        for listener, (n, net) in listeners.items():
            state = self._lstate.get(listener)
            if (
                state is not None
                and n <= PACE_MAX_PER_S
                and state[1] >= since
                and state[2] >= since
            ):
                paced += 1
            per_net[net] = per_net.get(net, 0) + 1
        net_age, req_age, lis_age, packed_age = ([0] * AGE_BUCKETS for _ in range(4))
        for net, n in networks.items():
            i = ages.get(net, 0)
            net_age[i] += 1
            req_age[i] += n
        for net, n in per_net.items():
            i = ages.get(net, 0)
            lis_age[i] += n
            if n >= PACKED_LISTENERS:
                packed_age[i] += n
        parts_ok = sum(by.get(c, {}).get("ok", 0) for c in ("part", "segment"))
        group_stats: dict[str, Any] = {}
        for g in GROUPS:
            if groups[g]:
                gs = rate_spread(groups[g].values())
                gs["src"] = len(groups[g])
                group_stats[g] = gs
        return {
            "req": req,
            "by": by,
            "fail": failures(by),
            "src": len(sources),
            "src_over": sum(b.src_over for b in buckets),
            "net": len(networks),
            "net_age": net_age,
            "net_over": sum(b.net_over for b in buckets),
            "req_age": req_age,
            "ent": ent,
            "ent_n": ent_n,
            "rate": spread,
            "groups": group_stats,
            "top": top_items(sources),
            "topnet": top_items(networks),
            "lis": len(listeners),
            "lis_paced": paced,
            "lis_age": lis_age,
            "lis_net": len(per_net),
            "packed_age": packed_age,
            "tix": sum(b.tix for b in buckets),
            "listen": sum(b.listen for b in buckets),
            "conv": sum(b.conv for b in buckets),
            "parts_ok": parts_ok,
            "parts_late": sum(b.late for b in buckets),
            "gaps": add_bins(b.gaps for b in buckets),
            "carried": add_counts(b.carried for b in buckets),
            "shared": _shared(buckets),
        }

    def statistics(self) -> dict[str, Any]:
        """A snapshot for /metrics."""
        w = self._writer
        return {
            "records_written": w.records_written,
            "bytes_written": w.bytes_written,
            "chain_bytes": w.chain_bytes,
            "chain_files": w.files,
            "files_deleted": w.files_deleted,
            "chain_seq": w.seq,
            "chain_head": w.head,
            "requests_recorded": self._requests,
            "sources_overflow": self._src_over,
            "seconds_dropped": self._dropped_s,
            "listeners_remembered": len(self._lstate),
            "networks_established": len(self._established),
            "networks_young": len(self._young),
            "last_flush_s": self._flush_s,
        }

    def close(self) -> None:
        """Flush the file and fsync it (call on shutdown after a last flush())."""
        self._writer.close()


def _count_n(table: dict[str, int], key: str, n: int, cap: int) -> bool:
    """`_count` for n requests at once."""
    m = table.get(key)
    if m is not None:
        table[key] = m + n
        return True
    if len(table) < cap:
        table[key] = n
        return True
    return False


def _shared(buckets: list[_Bucket]) -> dict[str, int]:
    """Tickets used by SHARED_SOURCES or more sources this second, and what they carried."""
    out = dict.fromkeys(SHARED_FIELDS, 0)
    for b in buckets:
        for _, _, req, refused, playlist, media, sources, nets in b.tickets.values():
            if req > HOT_TICKET:
                out["hot_tix"] += 1
                out["hot_req"] += req
                out["hot_playlist"] += playlist
                out["hot_media"] += media
            if sources is not None and len(sources) >= SHARED_SOURCES:
                out["tix"] += 1
                out["src"] += len(sources)
                out["net"] += len(nets)
                out["req"] += req
                out["refused"] += refused
                out["playlist"] += playlist
                out["media"] += media
    return out


def _add_capped(into: dict[str, int], counts: dict[str, int], cap: int) -> None:
    for key, n in counts.items():
        if key in into:
            into[key] += n
        elif len(into) < cap:
            into[key] = n
