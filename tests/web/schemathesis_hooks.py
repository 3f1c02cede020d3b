"""Schemathesis hooks (SCHEMATHESIS_HOOKS): each request comes from another address, named in
X-Forwarded-For to a server that trusts loopback as its edge, so that the per-source budgets
(docs/GUARD.md) do not answer most cases with 429 before the route under test runs."""

from __future__ import annotations

import itertools
from typing import Any

import schemathesis

_requests = itertools.count(1)


@schemathesis.hook
def before_call(context: Any, case: Any, kwargs: dict[str, Any]) -> None:
    n = next(_requests)
    case.headers = {**(case.headers or {})}
    case.headers["X-Forwarded-For"] = f"10.{(n >> 16) & 255}.{(n >> 8) & 255}.{n & 255}"
