"""The OpenAPI document against the routes themselves: every route and method the delivery
app and the media process's control app serve is documented, every documented operation is
served, and every path parameter is declared."""

from __future__ import annotations

import re
from pathlib import Path

from starlette.routing import BaseRoute, Route

from ruang.backends import Backends
from ruang.config import Config
from ruang.delivery.app import build_delivery_app
from ruang.live.studio import Studio
from ruang.store.sqlite import SpaceStore
from ruang.web.control import build_control_app
from ruang.web.openapi import OPENAPI

# Not part of the public API, on purpose: the proxy's catch-alls (every path they reach is a
# control route, checked below), the media process's /internal/* (delivery workers only, on
# its Unix socket) and /static (the pages' files).
UNDOCUMENTED = {"/api/{path:path}", "/whip/{path:path}"}
SAMPLE = "abcdefghij"  # what a path parameter stands for when matching a documented path
METHODS = {"get", "post", "put", "patch", "delete", "head"}


def routes(tmp_path: Path) -> list[Route]:
    """Every route of the delivery app, then the control app's (which it proxies)."""
    config = Config(data_dir=tmp_path)
    backends = Backends(config)
    delivery = build_delivery_app(config, backends)
    control = build_control_app(Studio(config, SpaceStore(config.db_path)))
    found: list[BaseRoute] = [*delivery.routes, *control.routes]
    return [
        r
        for r in found
        if isinstance(r, Route)
        and r.path not in UNDOCUMENTED
        and not r.path.startswith("/internal/")
    ]


def concrete(doc_path: str) -> str:
    """A documented path with every {parameter} given a sample value."""
    return re.sub(r"\{[^}]+\}", SAMPLE, doc_path)


def served_methods(route: Route) -> set[str]:
    # HEAD comes with every GET in Starlette; it is documented where it says more than GET
    methods = {m.lower() for m in route.methods or ()} - {"head"}
    return methods


def test_every_route_is_documented(tmp_path: Path) -> None:
    paths = OPENAPI["paths"]
    missing = []
    for route in routes(tmp_path):
        documented = [p for p in paths if route.path_regex.match(concrete(p))]
        for method in served_methods(route):
            if not any(method in paths[p] for p in documented):
                missing.append(f"{method.upper()} {route.path}")
    assert not missing, f"served but not in /openapi.json: {missing}"


def test_every_documented_operation_is_served(tmp_path: Path) -> None:
    served = routes(tmp_path)
    ghosts = []
    for path, item in OPENAPI["paths"].items():
        for method in set(item) & METHODS:
            here = [r for r in served if r.path_regex.match(concrete(path))]
            if not any(method in {m.lower() for m in r.methods or ()} for r in here):
                ghosts.append(f"{method.upper()} {path}")
    assert not ghosts, f"documented but not served: {ghosts}"


def test_path_parameters_are_declared() -> None:
    wrong = []
    for path, item in OPENAPI["paths"].items():
        placeholders = set(re.findall(r"\{([^}]+)\}", path))
        for method in set(item) & METHODS:
            declared = {p["name"] for p in item[method].get("parameters", []) if p["in"] == "path"}
            if declared != placeholders:
                wrong.append(f"{method.upper()} {path}: declares {sorted(declared)}")
    assert not wrong, wrong


def test_every_error_has_the_error_body() -> None:
    for path, item in OPENAPI["paths"].items():
        for method in set(item) & METHODS:
            for code, answer in item[method]["responses"].items():
                if code[0] in "45":
                    schema = answer["content"]["application/json"]["schema"]
                    assert schema == {"$ref": "#/components/schemas/Error"}, (path, code)
