"""Which addresses the server offers as ICE host candidates.

aioice gathers every interface address except loopback and has no option to choose them, so
when addresses are configured we replace its address lookup (the one documented hook point
in this module). Loopback-only setups (tests, benchmarks) also drop remote candidates that are
not on loopback, so that no connectivity check ever leaves the machine.
"""

from __future__ import annotations

import ipaddress
import re

import aioice.ice

_CANDIDATE = re.compile(r"^a=candidate:\S+ \d+ \S+ \d+ (\S+) \d+ typ .*$")


def configure_host_addresses(addresses: tuple[str, ...]) -> None:
    """Offer exactly these addresses as host candidates (no-op for an empty tuple)."""
    if not addresses:
        return
    for a in addresses:
        ipaddress.ip_address(a)  # ValueError with the bad value, at start-up
    chosen = list(addresses)

    def get_host_addresses(use_ipv4: bool, use_ipv6: bool) -> list[str]:
        return [a for a in chosen if (use_ipv4 and ":" not in a) or (use_ipv6 and ":" in a)]

    aioice.ice.get_host_addresses = get_host_addresses


def is_loopback_only(addresses: tuple[str, ...]) -> bool:
    """True when every configured candidate address is a loopback address."""
    return bool(addresses) and all(ipaddress.ip_address(a).is_loopback for a in addresses)


def keep_loopback_candidates(sdp: str) -> str:
    """Remove remote candidates whose address is not loopback (mDNS names included)."""
    kept = []
    for line in sdp.splitlines():
        m = _CANDIDATE.match(line)
        if m:
            try:
                if not ipaddress.ip_address(m.group(1)).is_loopback:
                    continue
            except ValueError:
                continue
        kept.append(line)
    return "\r\n".join(kept) + "\r\n"
