"""A small Server-Sent Events subscriber for tests: reconnects after each answer with the last
id it saw, as a browser's EventSource does, and keeps everything it received in order."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

import httpx


def parse_sse(text: str) -> list[tuple[int | None, dict[str, Any] | None, dict[str, str]]]:
    """(id, data as JSON or None, all fields) per block of an SSE body."""
    out: list[tuple[int | None, dict[str, Any] | None, dict[str, str]]] = []
    for block in text.split("\n\n"):
        fields: dict[str, str] = {}
        for line in block.split("\n"):
            if not line or line.startswith(":"):
                continue
            name, _, value = line.partition(":")
            fields[name] = value[1:] if value.startswith(" ") else value
        if not fields:
            continue
        raw_id = fields.get("id")
        data = json.loads(fields["data"]) if "data" in fields else None
        out.append((int(raw_id) if raw_id else None, data, fields))
    return out


@dataclass
class Subscriber:
    """One subscriber of one space's events."""

    api: httpx.AsyncClient
    space_id: str
    last_id: int | None = None
    events: list[dict[str, Any]] = field(default_factory=list)  # each with its "id"
    answers: int = 0
    asked: set[int | None] = field(default_factory=set)  # the last ids it asked after

    async def poll(self, use_query: bool = False) -> list[dict[str, Any]]:
        """One request (held by the server until there is something new); its new events."""
        url = f"/api/spaces/{self.space_id}/events"
        headers, params = {}, {}
        if self.last_id is not None:
            if use_query:
                params["after"] = str(self.last_id)
            else:
                headers["Last-Event-ID"] = str(self.last_id)
        self.asked.add(self.last_id)
        r = await self.api.get(url, headers=headers, params=params)
        assert r.status_code == 200, r.text
        assert r.headers["content-type"].startswith("text/event-stream")
        self.answers += 1
        new = []
        for event_id, data, _ in parse_sse(r.text):
            if event_id is not None:
                self.last_id = event_id
            if data is not None:
                new.append({**data, "id": event_id})
        self.events += new
        return new

    def of_type(self, kind: str) -> list[dict[str, Any]]:
        """The events received of one type."""
        return [e for e in self.events if e["type"] == kind]
