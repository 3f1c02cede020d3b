"""Who may create spaces, and how many: the operator's create key and the creation caps.

Every space costs its node a pipeline from the moment it is created (a scheduled one is on air
with silence already), so creations are the one request a flood must never get through: 382
spaces in ten seconds from 50 addresses once made every mixer of a node late. The caps count
what the store holds (open spaces by the creator's address and network and on the node, and
the last minute's creations), so they are the same whichever process receives the request and
survive restarts; a refused request creates nothing and counts for nothing.

A holder of the create key (`--create-key`) is the operator or someone they trust: the
per-source caps and the creation rate do not apply to them, the node's cap does. The decision
is the pure `check_creation`; `CreationGate` adds the key and the store's counts.
"""

from __future__ import annotations

import hashlib
import hmac
import math
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

from ruang.errors import ApiError, node_full
from ruang.guard.network import network_of
from ruang.live.capacity import Costs, quiet_spaces
from ruang.spaces.model import utcnow
from ruang.store.base import CreationCounts

if TYPE_CHECKING:
    from ruang.config import Config
    from ruang.store.base import Store

RATE_WINDOW_S = 60.0  # the creation rates are counted over this sliding window, seconds


@dataclass(frozen=True)
class CreationLimits:
    """The caps on creating spaces; every count is of spaces (live + scheduled = open)."""

    max_spaces: int
    """Open spaces on the node, for everyone (key holders too)."""
    per_address: int
    """Open spaces created from one source address."""
    per_network: int
    """Open spaces created from one network (/24 for IPv4, /64 for IPv6)."""
    per_network_per_min: int
    """Spaces created from one network in the last RATE_WINDOW_S seconds."""
    per_node_per_min: int
    """Spaces created on the node in the last RATE_WINDOW_S seconds."""

    def __post_init__(self) -> None:
        for name, value in vars(self).items():
            if value < 1:
                raise ValueError(f"creation limit {name} must be >= 1, got {value}")


def _retry_s(oldest: float | None, now: float) -> str:
    """Seconds until the oldest creation in the window leaves it (at least 1)."""
    left = RATE_WINDOW_S if oldest is None else oldest + RATE_WINDOW_S - now
    return str(max(1, math.ceil(left)))


def check_creation(
    counts: CreationCounts, limits: CreationLimits, keyed: bool, now: float
) -> ApiError | None:
    """The refusal for one more space given what exists (`counts`), or None to create it.
    `keyed`: the request carries the create key. Per-source refusals (429) come before the
    node's (503), so a flooding source learns it is the one refused."""
    if not keyed:
        if counts.open_by_address >= limits.per_address:
            return ApiError(
                429,
                "too_many_spaces",
                f"Your address already has {counts.open_by_address} live or scheduled spaces "
                f"(at most {limits.per_address}); end one before creating another.",
            )
        if counts.open_by_network >= limits.per_network:
            return ApiError(
                429,
                "too_many_spaces",
                f"Your network already has {counts.open_by_network} live or scheduled spaces "
                f"(at most {limits.per_network}); end one before creating another.",
            )
        if counts.recent_by_network >= limits.per_network_per_min:
            retry = _retry_s(counts.oldest_recent_by_network, now)
            return ApiError(
                429,
                "creating_too_fast",
                f"Your network created {counts.recent_by_network} spaces in the last minute "
                f"(at most {limits.per_network_per_min}); try again in {retry} s.",
                {"Retry-After": retry},
            )
    if counts.open_on_node >= limits.max_spaces:
        return node_full(f"{counts.open_on_node} live or scheduled spaces, its most")
    if not keyed and counts.recent_on_node >= limits.per_node_per_min:
        retry = _retry_s(counts.oldest_recent_on_node, now)
        return ApiError(
            503,
            "creation_busy",
            f"{counts.recent_on_node} spaces were created on this server in the last minute "
            f"(at most {limits.per_node_per_min}); try again in {retry} s.",
            {"Retry-After": retry},
        )
    return None


def key_matches(key: str, token: str) -> bool:
    """True if `token` is the create key; the time taken does not depend on where they differ
    (nor on the token's length: both are hashed first)."""
    return hmac.compare_digest(
        hashlib.sha256(token.encode()).digest(), hashlib.sha256(key.encode()).digest()
    )


Counter = Callable[[str, str, datetime], CreationCounts]
"""The store's `creation_counts(address, network, since)`."""


class CreationGate:
    """The create key and the caps, checked against the store's counts."""

    def __init__(self, key: str, limits: CreationLimits, counts: Counter) -> None:
        self.key = key
        self.limits = limits
        self._counts = counts

    def admit(self, token: str | None, address: str) -> str:
        """The creator's network if `address` may create a space now; else raises the
        ApiError to answer (401 no key, 403 wrong key, 429 over a source's cap, 503 the
        node's). `token`: the request's bearer token; `address`: its real source (never a
        client-supplied header)."""
        keyed = False
        if self.key:
            if not token:
                raise ApiError(
                    401,
                    "create_key_required",
                    "Creating spaces on this server needs its create key "
                    "(Authorization: Bearer <key>).",
                    {"WWW-Authenticate": "Bearer"},
                )
            if not key_matches(self.key, token):
                raise ApiError(403, "create_key_refused", "This is not the server's create key.")
            keyed = True
        network = network_of(address)
        now = utcnow()
        counts = self._counts(address, network, now - timedelta(seconds=RATE_WINDOW_S))
        refusal = check_creation(counts, self.limits, keyed, now.timestamp())
        if refusal is not None:
            raise refusal
        return network


def creation_gate(config: Config, store: Store) -> CreationGate:
    """The gate a composition root hands to whatever creates spaces or lets requests for it
    through."""
    costs = Costs(config.media_budget, seats=config.max_on_stage)
    limits = CreationLimits(
        max_spaces=config.max_spaces or quiet_spaces(costs) * config.media_count,
        per_address=config.max_spaces_per_address,
        per_network=config.max_spaces_per_network,
        per_network_per_min=config.creations_per_min_per_network,
        per_node_per_min=config.creations_per_min,
    )
    return CreationGate(config.create_key, limits, store.creation_counts)
