"""Which network a client belongs to: the unit of fairness, limits and evidence."""

from __future__ import annotations

import ipaddress
from functools import lru_cache


@lru_cache(maxsize=65536)
def network_of(host: str | None) -> str:
    """A client's network: its /24 (IPv4) or /64 (IPv6)."""
    try:
        ip = ipaddress.ip_address(host or "0.0.0.0")
    except ValueError:
        return host or ""
    prefix = 24 if ip.version == 4 else 64
    return str(ipaddress.ip_network(f"{ip}/{prefix}", strict=False))
