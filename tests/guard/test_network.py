"""A client's network (the unit of fairness, limits and evidence): /24 for IPv4, /64 for IPv6."""

from __future__ import annotations

import pytest

from ruang.guard.network import network_of


@pytest.mark.parametrize(
    ("host", "network"),
    [
        ("10.1.2.3", "10.1.2.0/24"),
        ("127.0.0.1", "127.0.0.0/24"),
        ("255.255.255.255", "255.255.255.0/24"),
        ("2001:db8:1:2:3:4:5:6", "2001:db8:1:2::/64"),
        ("::1", "::/64"),
        ("::ffff:10.1.2.3", "10.1.2.0/24"),  # IPv4 on a dual-stack socket
    ],
)
def test_networks(host: str, network: str) -> None:
    assert network_of(host) == network


@pytest.mark.parametrize("host", ["1.2.3.256", "a.b.c.d", "1.2.3", "not an address"])
def test_what_is_not_an_address_is_its_own_network(host: str) -> None:
    assert network_of(host) == host
