"""Which network a client belongs to: the unit of fairness, limits and evidence."""

from __future__ import annotations

import ipaddress
from functools import lru_cache


@lru_cache(maxsize=65536)
def network_of(host: str | None) -> str:
    """A client's network: its /24 (IPv4, also when seen as an IPv4-mapped IPv6 address on a
    dual-stack socket) or /64 (IPv6)."""
    if host and host.count(".") == 3 and ":" not in host:  # dotted quad: no ipaddress objects
        a, b, c, d = host.split(".")
        if all(x.isdigit() and len(x) <= 3 and int(x) < 256 for x in (a, b, c, d)):
            return f"{int(a)}.{int(b)}.{int(c)}.0/24"
    try:
        ip = ipaddress.ip_address(host or "0.0.0.0")
    except ValueError:
        return host or ""
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        return network_of(str(ip.ipv4_mapped))
    prefix = 24 if ip.version == 4 else 64
    return str(ipaddress.ip_network(f"{ip}/{prefix}", strict=False))
