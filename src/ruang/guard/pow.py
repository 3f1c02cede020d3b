"""Proof-of-work on join: a price a browser pays in well under a second, only when needed.

After Tor's onion-service defence (proposal 327, now the "hspow" spec; its control loop is
revisited in proposal 362): the puzzle is dormant (difficulty 0) while the node is calm, and
its difficulty rises with pressure on the join path and decays slowly once the pressure is
gone, so that an attacker who pauses does not find the door open again at once. Where Tor uses
Equi-X, a listener page has only JavaScript, so the puzzle is hashcash over SHA-256: find a
decimal `nonce` such that SHA-256(challenge + ":" + nonce) starts with `difficulty` zero bits —
2^difficulty tries on average, one hash to check.

A challenge is stateless: ``{issued}.{difficulty:02}.{salt}.{mac}`` where `mac` is the first
96 bits of HMAC-SHA256 over (space, issued, difficulty, salt) under a key derived from the
deployment's ticket key, so any worker of any node verifies any challenge with one HMAC and one
SHA-256, and a solution for one space is worthless for another. A solved challenge is
remembered until it expires in a table of cells (guard.cells: its hash, when it expires) that
the node's workers share, checked and written under the node's lock: a solution buys one join
per node. Across nodes reuse is bounded by the challenge's short lifetime (docs/GUARD.md).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
import secrets
import time
from typing import Any

from ruang.guard.cells import Cells, NodeLock, slots_for

ALGORITHM = "sha256"
CHALLENGE_TTL_S = 60  # a challenge is good for this long after it is issued
MAX_USED = 500_000  # solved challenges a private table holds (a node's: guard.cells NODE_KEYS)
LOCK_BYTE = 0  # the node memory file's byte whose lock guards the table (NodeMemory.lock)
CLOCK_SKEW_S = 5  # a challenge issued by a node whose clock is this much ahead still counts
GRACE_BITS = 2  # a challenge issued this many bits easier than today's difficulty still counts
LIMIT_BITS = 32  # what the format and the browser's solver support

REQUIRED = "proof_of_work_required"
FAILED = "proof_of_work_failed"

_CHALLENGE = re.compile(r"^(\d{10})\.(\d{2})\.([A-Za-z0-9_-]{8})\.([A-Za-z0-9_-]{16})$")
_NONCE = re.compile(r"^\d{1,20}$")


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _meets(challenge: str, nonce: str, difficulty: int) -> bool:
    digest = hashlib.sha256(f"{challenge}:{nonce}".encode()).digest()
    return int.from_bytes(digest[:8], "big") >> (64 - difficulty) == 0


class ProofOfWork:
    """Issues and checks join puzzles for every space of a deployment.

    `difficulty` (leading zero bits, 0 = dormant) is set by the caller each second, from
    `DifficultyController.update` and attack mode's floor. `now` is wall-clock seconds
    (time.time()): challenges travel between nodes.
    """

    def __init__(
        self,
        key: bytes,
        *,
        ttl_s: int = CHALLENGE_TTL_S,
        max_used: int = MAX_USED,
        used: Cells | None = None,
        lock: NodeLock | None = None,
    ):
        """`used` and `lock`: the node's table of solutions seen and its lock (guard.cells
        NodeMemory.solutions and .lock(LOCK_BYTE)); None: this process's own table, of
        `max_used` solutions at least."""
        if len(key) < 32:
            raise ValueError("proof-of-work key too short (use the ticket key)")
        if ttl_s < 1 or max_used < 1:
            raise ValueError(f"ttl_s and max_used must be positive: {ttl_s}, {max_used}")
        # its own key, so a challenge's MAC can never be mistaken for a ticket's; HMAC's inner
        # and outer hashes are keyed once here and copied per MAC (~2 µs instead of ~4)
        own = hmac.digest(key, b"ruang proof-of-work v1", "sha256").ljust(64, b"\0")
        self._inner = hashlib.sha256(bytes(b ^ 0x36 for b in own))
        self._outer = hashlib.sha256(bytes(b ^ 0x5C for b in own))
        self.ttl_s = ttl_s
        self.max_used = max_used
        self._difficulty = 0
        self._used = used if used is not None else Cells(slots_for(max_used))
        self._lock = lock if lock is not None else NodeLock(None)
        self.issued = 0
        self.solved = 0
        self.failures: dict[str, int] = dict.fromkeys(
            ("missing", "malformed", "forged", "expired", "too_easy", "wrong", "reused"), 0
        )

    @property
    def difficulty(self) -> int:
        """Leading zero bits a solution needs now; 0 = dormant (no proof asked)."""
        return self._difficulty

    @difficulty.setter
    def difficulty(self, bits: int) -> None:
        if not 0 <= bits <= LIMIT_BITS:
            raise ValueError(f"difficulty must be 0..{LIMIT_BITS} bits, got {bits}")
        self._difficulty = bits

    def _mac(self, space_id: str, issued: int, difficulty: int, salt: str) -> str:
        inner = self._inner.copy()
        inner.update(f"pow.{space_id}.{issued}.{difficulty:02d}.{salt}".encode())
        outer = self._outer.copy()
        outer.update(inner.digest())
        return _b64(outer.digest()[:12])  # HMAC-SHA256, RFC 2104, truncated to 96 bits

    def challenge(self, space_id: str, now: float) -> dict[str, Any]:
        """The "pow" object of a 428 answer, at the current difficulty."""
        issued, difficulty, salt = int(now), self.difficulty, _b64(secrets.token_bytes(6))
        mac = self._mac(space_id, issued, difficulty, salt)
        self.issued += 1
        return {
            "challenge": f"{issued}.{difficulty:02d}.{salt}.{mac}",
            "difficulty": difficulty,
            "algorithm": ALGORITHM,
            "expires_in_s": self.ttl_s,
        }

    def verify(self, space_id: str, solution: object, now: float) -> str | None:
        """None if the join may go on: the puzzle is dormant, or `solution` (the request's
        "pow" object, {"challenge", "nonce"}) solves a challenge issued for this space, not
        expired, not too easy, not used before on this node — it is then remembered as used.
        Otherwise the error code to answer with: "proof_of_work_required" (no solution
        offered) or "proof_of_work_failed" (a wrong, expired, foreign or reused one)."""
        if self.difficulty <= 0:
            return None
        if not isinstance(solution, dict) or not solution:
            self.failures["missing"] += 1
            return REQUIRED
        challenge, nonce = solution.get("challenge"), solution.get("nonce")
        if not isinstance(challenge, str) or not isinstance(nonce, str):
            return self._fail("malformed")
        m = _CHALLENGE.match(challenge)
        if m is None or _NONCE.match(nonce) is None:
            return self._fail("malformed")
        issued, difficulty = int(m.group(1)), int(m.group(2))
        if not hmac.compare_digest(m.group(4), self._mac(space_id, issued, difficulty, m.group(3))):
            return self._fail("forged")
        if not issued - CLOCK_SKEW_S <= now <= issued + self.ttl_s:
            return self._fail("expired")
        if difficulty < self.difficulty - GRACE_BITS:
            return self._fail("too_easy")
        if not _meets(challenge, nonce, difficulty):
            return self._fail("wrong")
        used, h = self._used, hash(challenge) or 1
        with self._lock:  # checked and remembered at once: one join per node
            cell = used.find(h, now)
            if used.hashes[cell] == h and used.tats[cell] > now:
                return self._fail("reused")
            used.hashes[cell] = h
            used.tats[cell] = issued + self.ttl_s + CLOCK_SKEW_S  # when it may be forgotten
        self.solved += 1
        return None

    def _fail(self, why: str) -> str:
        self.failures[why] += 1
        return FAILED

    def statistics(self) -> dict[str, Any]:
        """A snapshot: difficulty, challenges issued, solutions accepted, failures by cause
        (this process's), solved challenges the table remembers now (the node's, with its
        memory: a scan) and those this process made it forget early."""
        return {
            "difficulty": self.difficulty,
            "issued": self.issued,
            "solved": self.solved,
            "failures": dict(self.failures),
            "remembered": self._used.in_debt(time.time()),
            "forgotten": self._used.evicted,
        }


def solve(challenge: str, difficulty: int, *, start: int = 0, max_iterations: int = 1 << 28) -> str:
    """An honest solver (for `ruang bench` clients, which pay the price a browser pays): the
    first nonce start, start + 1, … that meets `difficulty`. RuntimeError after max_iterations
    (a caller on an event loop solves in slices, moving `start` on)."""
    if not 0 <= difficulty <= LIMIT_BITS:
        raise ValueError(f"difficulty must be 0..{LIMIT_BITS}, got {difficulty}")
    prefix = hashlib.sha256(f"{challenge}:".encode())
    limit = 1 << (256 - difficulty)
    for n in range(start, start + max_iterations):
        h = prefix.copy()
        h.update(str(n).encode())
        if int.from_bytes(h.digest(), "big") < limit:
            return str(n)
    raise RuntimeError(f"no nonce for {challenge!r} at {difficulty} bits in {max_iterations}")


# -- how hard: the control loop -----------------------------------------------------------------
START_BITS = 12  # first step out of dormancy: ~4,000 tries, a few ms in a browser
NORMAL_BITS = 16  # pressure: ~65,000 tries, ~60 ms on one desktop core, ~0.3 s on a slow phone
MAX_BITS = 20  # sustained overload: ~1 M tries, ~1 s on one desktop core (docs/GUARD.md)
PRESSURE_LOAD = 0.8  # joins per second over capacity at which the line is about to form
OVERLOAD_LOAD = 1.5  # … and at which it grows fast
SHED_LOAD = 0.2  # shedding counts as pressure only with joins at this share of capacity
OVERLOAD_LINE_S = 30.0  # a line this many seconds of capacity long is overload too
CALM_HOLD_S = 10.0  # calm seconds before the difficulty starts to decay
DECAY_EVERY_S = 15.0  # then one bit less per this many calm seconds; below START_BITS, dormant


class DifficultyController:
    """The difficulty from second to second, Tor-like: up quickly under pressure, down slowly.

    Fed once a second with the second's joins that reached admission (`joins_per_s`), the
    node's admission pace (`join_capacity_per_s`), people waiting in line, the shedding level
    and attack mode. A second is *overloaded* if joins ≥ 1.5 × capacity, the line holds more
    than 30 s of capacity, or shedding is at level 3; it is under *pressure* if joins ≥ 0.8 ×
    capacity, anyone waits, shedding is at level ≥ 2, or attack mode is on. Shedding counts
    only while joins reach 0.2 × capacity: a worker slowed by something else is not helped by
    pricing out the crowd.

    - calm → dormant (0); the first pressured second → 12 bits;
    - each pressured second below 16 bits → +1 bit (16 within 4 s);
    - each overloaded second → +1 bit, up to 20;
    - attack mode → at least 16;
    - after 10 calm seconds, −1 bit per 15 calm seconds; below 12 → 0 (20 → dormant in 130 s).
    """

    def __init__(self) -> None:
        self.difficulty = 0
        self._calm_since: float | None = None
        self._last_decay = 0.0

    def update(
        self,
        now: float,
        *,
        joins_per_s: float,
        join_capacity_per_s: float,
        waiting: int,
        shed_level: int,
        attack: bool,
    ) -> int:
        """The difficulty for the next second."""
        load = joins_per_s / join_capacity_per_s if join_capacity_per_s > 0 else 0.0
        line_s = waiting / join_capacity_per_s if join_capacity_per_s > 0 else 0.0
        # a lagging worker is pressure only if joins are a real part of its load: a worker
        # starved by something else is not helped by pricing out the crowd
        joining = load >= SHED_LOAD
        overloaded = (
            load >= OVERLOAD_LOAD or line_s >= OVERLOAD_LINE_S or (shed_level >= 3 and joining)
        )
        pressured = (
            overloaded
            or load >= PRESSURE_LOAD
            or waiting > 0
            or (shed_level >= 2 and joining)
            or attack
        )
        d = self.difficulty
        if pressured:
            self._calm_since = None
            if d < START_BITS:
                d = START_BITS
            elif d < NORMAL_BITS or overloaded:
                d += 1
            if attack:
                d = max(d, NORMAL_BITS)
        else:
            if self._calm_since is None:
                self._calm_since = now
                self._last_decay = now + CALM_HOLD_S - DECAY_EVERY_S  # first step at the hold
            calm_for = now - self._calm_since
            if d and calm_for >= CALM_HOLD_S and now - self._last_decay >= DECAY_EVERY_S:
                self._last_decay = now
                d = d - 1 if d > START_BITS else 0
        self.difficulty = min(d, MAX_BITS)
        return self.difficulty
