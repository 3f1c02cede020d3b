"""Server configuration: each field declared once (type, unit, default, help; its option and
environment variable follow from its name, `ruang.settings`), validated once at start-up."""

from __future__ import annotations

import ipaddress
import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ruang.settings import Setting, read_env, setting, settings_of

MAX_ON_STAGE = 13  # people, host included, per space


@dataclass(frozen=True)
class Config:
    """Everything `ruang serve` can be told. Defaults are the embedded single-node setup."""

    host: str = setting("127.0.0.1", "Address the public HTTP port binds to.", unit="address")
    port: int = setting(
        8000,
        "Public HTTP port: pages, API, WHIP (proxied to the media processes) and HLS delivery.",
        unit="port",
    )
    data_dir: Path = setting(
        Path("data"),
        "Folder for the SQLite database and every space's parts, segments and playlists (the "
        "replay).",
        unit="path",
    )
    public_url: str = setting(
        "",
        "Absolute base URL put in links handed to clients, e.g. https://live.example.org "
        "behind a proxy or CDN; none = the address the browser used, or http://HOST:PORT.",
        unit="URL",
    )
    delivery_workers: int = setting(
        1,
        "Delivery worker processes serving listeners (pages, join, HLS) on the public port; "
        "the media pipeline has processes of its own.",
        unit="processes",
        flag="--workers",
    )
    ice_addresses: tuple[str, ...] = setting(
        (),
        "Addresses offered to WebRTC peers as host candidates; none = every interface address "
        "but loopback (127.0.0.1 alone for local tests).",
        unit="addresses",
        flag="--ice-address",
    )
    max_on_stage: int = setting(
        MAX_ON_STAGE, "People allowed to publish at once in a space, host included.", unit="people"
    )
    max_body_bytes: int = setting(
        64 * 1024, "Largest request body accepted (JSON or SDP).", unit="bytes"
    )
    ticket_key: str = setting(
        "",
        "Secret signing listener tickets, the same on every node and edge, at least 32 "
        "characters; never on the command line; none = a random key kept in "
        "DATA_DIR/ticket.key.",
        unit="secret",
        cli=False,
    )
    ticket_ttl_s: int = setting(
        15 * 60,
        "How long a listener ticket admits its holder; the listener page renews it at half-life.",
        unit="seconds",
        flag="--ticket-ttl",
    )
    max_listeners: int = setting(
        20_000,
        "Concurrent listeners this node admits before new ones wait in line.",
        unit="listeners",
    )
    joins_per_s: float = setting(
        2_000.0,
        "Listeners this node admits per second; a surge beyond it waits in a FIFO line.",
        unit="per second",
    )
    blocking_timeout_s: float = setting(
        6.0,
        "How long an LL-HLS blocking request may wait for its part (3 target durations).",
        unit="seconds",
    )
    redis_url: str = setting(
        "",
        "Redis shared by several nodes (spaces, ownership, waiting room), e.g. "
        "redis://10.0.0.5:6379/0; none = one node with SQLite.",
        unit="URL",
        env_aliases=("REDIS_URL",),
    )
    node_url: str = setting(
        "",
        "Base URL at which the other nodes reach this node's public port; none = the public URL.",
        unit="URL",
    )
    trusted_proxies: tuple[str, ...] = setting(
        (),
        "Addresses or CIDR networks of edges (nginx, CDN) whose X-Forwarded-For names the real "
        "client, for per-source limits and the traffic evidence; none = trust no forwarded "
        "address.",
        unit="addresses",
        flag="--trusted-proxy",
    )
    pow_max_bits: int = setting(
        20,
        "Highest proof-of-work difficulty asked of joins under pressure, in leading zero bits "
        "of SHA-256 (16 takes a browser ~0.15 s); 0 turns proof-of-work off.",
        unit="bits",
    )
    media_realtime: bool = setting(
        True,
        "Run the media processes with real-time round-robin scheduling (needs root or "
        "CAP_SYS_NICE; falls back to nice -5, then to normal), so that listener load cannot "
        "delay the speakers' mixer.",
    )
    media_processes: int = setting(
        0,
        "Media processes (each runs its share of the spaces: WHIP, mixing, replay); a crash of "
        "one stops only its spaces, for the second it takes to restart; 0 = one per core this "
        "process may run on.",
        unit="processes",
    )
    media_budget: float = setting(
        0.8,
        "Share of a core each media process may fill with spaces and speakers, by the measured "
        "costs in ruang.live.capacity; beyond it new spaces and speakers get 503.",
        unit="cores",
    )
    create_key: str = setting(
        "",
        "Secret that POST /api/spaces must carry as Authorization: Bearer KEY (401 without it, "
        "403 with another); none = anyone may create, within the caps below. Prefer the "
        "variable: the command line is visible to every local user.",
        unit="secret",
    )
    max_spaces: int = setting(
        0,
        "Live + scheduled spaces this node holds, key holders included; beyond it creating "
        "answers 503; 0 = from the node's measured capacity (as many quiet spaces as its media "
        "processes hold with room left for a full stage).",
        unit="spaces",
    )
    max_spaces_per_address: int = setting(
        20,
        "Live + scheduled spaces one source address may have created without the create key.",
        unit="spaces",
    )
    max_spaces_per_network: int = setting(
        50,
        "Live + scheduled spaces one /24 (IPv4) or /64 (IPv6) may have created without the key.",
        unit="spaces",
    )
    creations_per_min_per_network: int = setting(
        20,
        "Spaces one /24 or /64 may create per minute (sliding window) without the key.",
        unit="per minute",
    )
    creations_per_min: int = setting(
        60,
        "Spaces this node creates per minute (sliding window) for clients without the key.",
        unit="per minute",
    )
    idle_end_s: float = setting(
        30 * 60.0,
        "A live space with nobody on stage for this long ends by itself.",
        unit="seconds",
    )
    scheduled_grace_s: float = setting(
        24 * 3600.0,
        "A scheduled space never started ends by itself this long after its start time.",
        unit="seconds",
    )
    listener_rate_per_s: float = setting(
        20.0,
        "Requests per second one listener ticket may make on live URLs (a player asks ~4, and "
        "room to catch up); an ended space's public replay is not held to it.",
        unit="per second",
    )
    listener_burst: int = setting(
        60,
        "Requests one listener ticket may make at once from rest (a player starting or "
        "catching up).",
        unit="requests",
    )
    captions: bool = setting(
        True,
        "Live captions of every live space's program mix, made on this machine apart from the "
        "mixers, when the engine is available.",
    )
    captions_engine: str = setting(
        "pocketsphinx",
        "Speech engine for captions: pocketsphinx (English, its model is in its wheel) or "
        "whisper (faster-whisper, needs a model).",
        unit="name",
        choices=("pocketsphinx", "whisper"),
    )
    captions_model: str = setting(
        "",
        "The engine's model folder: a CTranslate2 Whisper model for whisper (required); "
        "optional for pocketsphinx.",
        unit="path",
    )
    captions_max_spaces: int = setting(
        2,
        "Spaces captioned at once on this node, shared evenly by its media processes; a space "
        "that goes live beyond it has no captions.",
        unit="spaces",
    )

    def __post_init__(self) -> None:
        for s in SETTINGS:
            value = getattr(self, s.name)
            if s.choices and value not in s.choices:
                raise ValueError(f"{s.name} must be one of {', '.join(s.choices)}, got {value!r}")
        if not 0 < self.port < 65536:
            raise ValueError(f"port must be 1..65535, got {self.port}")
        if self.delivery_workers < 1:
            raise ValueError(f"delivery_workers must be >= 1, got {self.delivery_workers}")
        if self.max_body_bytes < 4096:  # an SDP offer alone is a few KB
            raise ValueError(f"max_body_bytes must be >= 4096, got {self.max_body_bytes}")
        if not 0 <= self.pow_max_bits <= 32:
            raise ValueError(f"pow_max_bits must be 0..32, got {self.pow_max_bits}")
        for cidr in self.trusted_proxies:
            try:
                ipaddress.ip_network(cidr, strict=False)
            except ValueError:
                raise ValueError(f"trusted proxy {cidr!r} is not an address or network") from None
        if not 0 <= self.media_processes <= 64:
            raise ValueError(f"media_processes must be 0..64, got {self.media_processes}")
        if not 0.05 <= self.media_budget <= 1.0:
            raise ValueError(f"media_budget must be 0.05..1.0 cores, got {self.media_budget}")
        if not 1 <= self.max_on_stage <= 64:
            raise ValueError(f"max_on_stage must be 1..64, got {self.max_on_stage}")
        if not (self.listener_rate_per_s > 0 and self.listener_burst >= 1):
            raise ValueError(
                f"listener_rate_per_s must be > 0 and listener_burst >= 1, got "
                f"{self.listener_rate_per_s} and {self.listener_burst}"
            )
        if not 0 <= self.captions_max_spaces <= 1000:
            raise ValueError(f"captions_max_spaces must be 0..1000, got {self.captions_max_spaces}")
        for name in ("blocking_timeout_s", "idle_end_s", "scheduled_grace_s"):
            if not getattr(self, name) > 0:
                raise ValueError(f"{name} must be > 0 seconds, got {getattr(self, name)}")

    @property
    def base_url(self) -> str:
        """The absolute URL prefix for links handed to clients, without a trailing slash."""
        if self.public_url:
            return self.public_url.rstrip("/")
        host = "127.0.0.1" if self.host in ("0.0.0.0", "") else self.host
        return f"http://{host}:{self.port}"

    @property
    def node(self) -> str:
        """This node's address for the other nodes, without a trailing slash."""
        return (self.node_url or self.base_url).rstrip("/")

    @property
    def db_path(self) -> Path:
        """The SQLite database file."""
        return self.data_dir / "ruang.sqlite3"

    @property
    def spaces_dir(self) -> Path:
        """Folder holding one sub-folder of media per space."""
        return self.data_dir / "spaces"

    @property
    def media_count(self) -> int:
        """How many media processes this node runs (media_processes, or one per usable core)."""
        if self.media_processes:
            return self.media_processes
        try:
            return max(1, len(os.sched_getaffinity(0)))
        except AttributeError:  # not Linux
            return max(1, os.cpu_count() or 1)

    def control_socket(self, media: int) -> Path:
        """Unix socket on which media process number `media` serves control requests (API
        writes, WHIP) for its spaces."""
        return self.data_dir / f"media-{media}.sock"

    def to_env(self) -> dict[str, str]:
        """Serialise for a child process (media processes, delivery workers): `from_env` reads
        it back to an equal Config."""
        return {s.env: s.format(getattr(self, s.name)) for s in SETTINGS}

    @classmethod
    def from_env(
        cls, env: Mapping[str, str] | None = None, given: Mapping[str, Any] | None = None
    ) -> Config:
        """A configuration from the settings `given` (by field name, e.g. from the command
        line), then the RUANG_* environment variables, then the defaults. ValueError for a
        value out of range, or one that is not of its type (naming the variable, quoting it)."""
        values = read_env(SETTINGS, os.environ if env is None else env)
        values.update(given or {})
        return cls(**values)

    @property
    def ticket_key_path(self) -> Path:
        """Where the generated ticket key is kept when none is configured."""
        return self.data_dir / "ticket.key"


SETTINGS: tuple[Setting, ...] = settings_of(Config)
"""Every field's declaration, in order: the CLI, the environment and docs/CONFIGURATION.md."""
