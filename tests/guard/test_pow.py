"""Proof-of-work on join: stateless challenges bound to a space, checked with one HMAC and one
SHA-256, single use, expiring; and the Tor-like control loop of its difficulty."""

from __future__ import annotations

import hashlib
import time

import pytest

from ruang.guard.pow import (
    FAILED,
    MAX_BITS,
    NORMAL_BITS,
    REQUIRED,
    START_BITS,
    DifficultyController,
    ProofOfWork,
    solve,
)

KEY = b"k" * 32
NOW = 1_800_000_000.0


def zero_bits(challenge: str, nonce: str) -> int:
    digest = hashlib.sha256(f"{challenge}:{nonce}".encode()).digest()
    return 256 - int.from_bytes(digest, "big").bit_length()


def armed(bits: int = 10, **kw: int) -> ProofOfWork:
    p = ProofOfWork(KEY, **kw)
    p.difficulty = bits
    return p


def solved(p: ProofOfWork, space: str = "s1", now: float = NOW) -> dict[str, str]:
    pow_ = p.challenge(space, now)
    return {"challenge": pow_["challenge"], "nonce": solve(pow_["challenge"], pow_["difficulty"])}


def test_dormant_asks_nothing() -> None:
    p = ProofOfWork(KEY)
    assert p.difficulty == 0
    assert p.verify("s1", None, NOW) is None
    assert p.verify("s1", {"challenge": "x", "nonce": "y"}, NOW) is None


def test_a_solution_is_accepted_once() -> None:
    p = armed(10)
    pow_ = p.challenge("s1", NOW)
    assert pow_["difficulty"] == 10 and pow_["algorithm"] == "sha256"
    assert pow_["expires_in_s"] == 60 and isinstance(pow_["challenge"], str)
    nonce = solve(pow_["challenge"], 10)
    assert zero_bits(pow_["challenge"], nonce) >= 10
    solution = {"challenge": pow_["challenge"], "nonce": nonce}
    assert p.verify("s1", solution, NOW + 5) is None
    assert p.verify("s1", solution, NOW + 6) == FAILED
    assert p.statistics()["failures"]["reused"] == 1
    assert p.statistics()["solved"] == 1


def test_a_solution_for_one_space_is_worthless_for_another() -> None:
    p = armed(8)
    solution = solved(p, "s1")
    assert p.verify("s2", solution, NOW) == FAILED
    assert p.statistics()["failures"]["forged"] == 1
    # nor valid in another deployment (another ticket key)
    other = ProofOfWork(b"o" * 32)
    other.difficulty = 8
    assert other.verify("s1", solution, NOW) == FAILED
    assert p.verify("s1", solution, NOW) is None  # still good where it belongs


def test_missing_malformed_and_wrong_solutions() -> None:
    p = armed(8)
    assert p.verify("s1", None, NOW) == REQUIRED
    assert p.verify("s1", {}, NOW) == REQUIRED
    good = solved(p)
    for bad in (
        "a string",
        {"challenge": good["challenge"]},
        {"challenge": good["challenge"], "nonce": 12},
        {"challenge": good["challenge"], "nonce": "-1"},
        {"challenge": good["challenge"], "nonce": "1" * 21},
        {"challenge": "1800000000.08.AAAAAAAA", "nonce": "1"},
        {"challenge": good["challenge"] + "x", "nonce": good["nonce"]},
    ):
        assert p.verify("s1", bad, NOW) in (REQUIRED, FAILED), bad
    wrong = next(
        str(n) for n in range(1000) if zero_bits(good["challenge"], str(n)) < 8
    )  # a nonce that does not meet the difficulty
    assert p.verify("s1", {"challenge": good["challenge"], "nonce": wrong}, NOW) == FAILED
    assert p.statistics()["failures"]["wrong"] == 1
    assert p.verify("s1", good, NOW) is None  # failures did not burn the real solution


def test_tampered_difficulty_is_forged() -> None:
    p = armed(16)
    pow_ = p.challenge("s1", NOW)
    easy = pow_["challenge"].replace(".16.", ".01.")
    assert p.verify("s1", {"challenge": easy, "nonce": solve(easy, 1)}, NOW) == FAILED
    assert p.statistics()["failures"]["forged"] == 1


def test_expiry_and_clock_skew() -> None:
    p = armed(8)
    late = solved(p)
    assert p.verify("s1", late, NOW + 61) == FAILED
    assert p.statistics()["failures"]["expired"] == 1
    future = solved(p, now=NOW + 30)  # issued by a node whose clock is 30 s ahead
    assert p.verify("s1", future, NOW) == FAILED
    assert p.verify("s1", solved(p, now=NOW + 3), NOW) is None  # small skew is fine


def test_a_challenge_much_easier_than_the_current_difficulty_is_refused() -> None:
    p = armed(12)
    slightly, much = solved(p), None
    p.difficulty = 10
    much = solved(p)
    p.difficulty = 14
    assert p.verify("s1", slightly, NOW) is None  # 12 ≥ 14 − 2: raised while it was solved
    assert p.verify("s1", much, NOW) == FAILED
    assert p.statistics()["failures"]["too_easy"] == 1


def test_used_challenges_are_bounded() -> None:
    # a table of 1024 cells: a challenge lives in one of 8 after its hash; when all 8 hold
    # unexpired ones the one expiring first is forgotten (and could be used once more)
    p = armed(4, max_used=10)
    now = time.time()
    for _ in range(3000):
        assert p.verify("s1", solved(p, now=now), now) is None
    stats = p.statistics()
    assert stats["remembered"] <= 1024 and stats["forgotten"] >= 3000 - 1024
    # expired ones make room for new ones: nothing is forgotten early
    q = armed(4, max_used=10)
    for i in range(2000):
        t = now + 100 * i  # each solution long expired by the next
        assert q.verify("s1", solved(q, now=t), t) is None
    assert q.statistics()["forgotten"] == 0


def test_difficulty_bounds_and_honest_solver() -> None:
    p = ProofOfWork(KEY)
    with pytest.raises(ValueError):
        p.difficulty = 33
    with pytest.raises(ValueError):
        ProofOfWork(b"short")
    with pytest.raises(RuntimeError):
        solve("c", 30, max_iterations=100)
    for bits in (0, 1, 12):
        assert zero_bits("c", solve("c", bits)) >= bits


# -- the control loop ---------------------------------------------------------------------------
def feed(c: DifficultyController, t: float, load: float, **kw: int | bool) -> int:
    return c.update(
        t,
        joins_per_s=load * 1000,
        join_capacity_per_s=1000,
        waiting=int(kw.get("waiting", 0)),
        shed_level=int(kw.get("shed_level", 0)),
        attack=bool(kw.get("attack", False)),
    )


def test_dormant_while_calm() -> None:
    c = DifficultyController()
    assert [feed(c, t, 0.5) for t in range(100)] == [0] * 100


def test_up_quickly_under_pressure_and_down_slowly() -> None:
    c = DifficultyController()
    up = [feed(c, t, 1.0) for t in range(8)]  # pressure, not overload: stops at normal
    assert up == [START_BITS, 13, 14, 15, NORMAL_BITS, 16, 16, 16]
    up = [feed(c, t, 3.0) for t in range(8, 16)]  # overload: one bit a second, to the cap
    assert up == [17, 18, 19, MAX_BITS, 20, 20, 20, 20]
    down = {t: feed(c, t, 0.1) for t in range(16, 400)}
    assert down[25] == 20 and down[26] == 19  # 10 calm seconds, then a bit per 15 s
    assert down[26 + 15 * 7] == START_BITS
    assert down[26 + 15 * 8] == 0 and set(list(down.values())[-100:]) == {0}


def test_a_line_shedding_or_attack_wake_it() -> None:
    for kw in ({"waiting": 5}, {"attack": True}):
        c = DifficultyController()
        assert feed(c, 0, 0.0, **kw) >= START_BITS, kw
    c = DifficultyController()
    assert feed(c, 0, 0.3, shed_level=2) >= START_BITS  # shedding while joins weigh in
    c = DifficultyController()
    assert feed(c, 0, 0.0, attack=True) == NORMAL_BITS  # attack mode: at least normal
    c = DifficultyController()
    assert [feed(c, t, 0.0, waiting=40_000) for t in range(3)] == [12, 13, 14]  # a 40 s line


def test_a_worker_starved_by_something_else_does_not_price_out_the_crowd() -> None:
    c = DifficultyController()
    assert [feed(c, t, 0.05, shed_level=3) for t in range(10)] == [0] * 10


def test_no_decay_while_pressure_comes_and_goes() -> None:
    c = DifficultyController()
    for t in range(300):
        feed(c, t, 1.0 if t % 9 == 0 else 0.1)
    assert c.difficulty == NORMAL_BITS
