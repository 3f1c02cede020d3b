"""Server configuration: every field documents its unit; validated once at start-up."""

from __future__ import annotations

import ipaddress
import os
from dataclasses import dataclass, field
from pathlib import Path

MAX_ON_STAGE = 13  # people, host included, per space


@dataclass(frozen=True)
class Config:
    """Everything `ruang serve` can be told. Defaults are the embedded single-node setup."""

    host: str = "127.0.0.1"
    """Address the public HTTP port binds to."""
    port: int = 8000
    """Public HTTP port: pages, API, WHIP (proxied to the media process) and HLS delivery."""
    data_dir: Path = Path("data")
    """SQLite database and every space's parts, segments and playlists (the replay)."""
    public_url: str = ""
    """Absolute base URL clients use (e.g. https://ruang.example); default http://host:port."""
    delivery_workers: int = 1
    """Processes serving listeners (pages, join, HLS); the media pipeline has its own."""
    ice_addresses: tuple[str, ...] = ()
    """Host candidate addresses offered to WebRTC peers; empty = every interface but loopback."""
    max_on_stage: int = MAX_ON_STAGE
    """People allowed to publish at once per space, host included."""
    max_body_bytes: int = 64 * 1024
    """Largest request body accepted (JSON or SDP), in bytes."""
    ticket_key: str = ""
    """Secret for listener tickets, shared by every node and edge (RUANG_TICKET_KEY, at least 32
    characters); empty = a random key kept in data_dir/ticket.key."""
    ticket_ttl_s: int = 15 * 60
    """How long a listener ticket admits its holder, seconds; pages renew at half-life."""
    max_listeners: int = 20_000
    """Concurrent listeners one node admits before the waiting room opens."""
    joins_per_s: float = 2_000.0
    """Admissions per second one node grants (a steady pace through a surge)."""
    blocking_timeout_s: float = 6.0
    """How long an LL-HLS blocking request may wait for its part (3 target durations), seconds."""
    redis_url: str = ""
    """Redis shared by every node (spaces, ownership, admission line); empty = embedded, one
    node with SQLite (REDIS_URL or RUANG_REDIS_URL)."""
    node_url: str = ""
    """Base URL other nodes use to reach this node's public port; default the public URL."""
    trusted_proxies: tuple[str, ...] = ()
    """Addresses or networks (CIDR) of edges whose X-Forwarded-For names the real client (for
    per-source limits and the evidence); empty = trust no forwarded address."""
    pow_max_bits: int = 20
    """Highest proof-of-work difficulty asked of joins under pressure (leading zero bits of
    SHA-256); 0 turns proof-of-work off."""
    media_realtime: bool = True
    """Ask the kernel for real-time (round-robin) scheduling of the media processes, so
    speakers are served first even on a saturated machine; falls back to nice when not
    permitted."""
    media_processes: int = 0
    """Media processes per node (each runs its share of the spaces, WHIP and mixing);
    0 = one per core this process may run on."""
    media_budget: float = 0.8
    """Share of a core each media process may fill with spaces and speakers (by the measured
    costs in `ruang.live.capacity`) before new spaces go elsewhere or are refused, in cores."""
    create_key: str = ""
    """Secret a client must send (Authorization: Bearer) to create spaces (RUANG_CREATE_KEY);
    empty = anyone may create, within the per-source caps below."""
    max_spaces: int = 0
    """Live + scheduled spaces this node holds, for everyone (key holders too); beyond it
    creating answers 503. 0 = from the node's capacity: as many quiet spaces as its media
    processes hold with room left for a full stage (`ruang.live.capacity`)."""
    max_spaces_per_address: int = 20
    """Live + scheduled spaces created from one source address, without the create key."""
    max_spaces_per_network: int = 50
    """Live + scheduled spaces created from one /24 (IPv4) or /64 (IPv6), without the key."""
    creations_per_min_per_network: int = 20
    """Spaces one /24 or /64 may create per minute (sliding window), without the key."""
    creations_per_min: int = 60
    """Spaces this node creates per minute (sliding window) for clients without the key."""
    idle_end_s: float = 30 * 60
    """A live space with nobody on stage for this long ends by itself, seconds."""
    scheduled_grace_s: float = 24 * 3600
    """A scheduled space never started ends by itself this long after its start time, seconds."""
    listener_rate_per_s: float = 20.0
    """Requests per second one listener ticket may make (one live player's pace, ~4/s, and
    room to catch up); the replay of an ended space is public and not held to it."""
    listener_burst: int = 60
    """Requests one ticket may make at once from rest (a player starting or catching up)."""
    captions: bool = True
    """Caption live spaces (the program mix, offline, on this machine) when the engine is
    available; False = no captions (--captions off)."""
    captions_engine: str = "pocketsphinx"
    """Speech engine for captions: "pocketsphinx" (its English model ships in its wheel) or
    "whisper" (faster-whisper, with a CTranslate2 Whisper model in captions_model)."""
    captions_model: str = ""
    """The engine's model folder; required for whisper, optional for pocketsphinx."""
    captions_max_spaces: int = 2
    """Spaces captioned at once on this node, shared evenly by its media processes; a space
    that goes live beyond it simply has no captions. In spaces."""
    extra: dict[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if not 0 < self.port < 65536:
            raise ValueError(f"port must be 1..65535, got {self.port}")
        if self.delivery_workers < 1:
            raise ValueError(f"delivery_workers must be >= 1, got {self.delivery_workers}")
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
        if not (self.idle_end_s > 0 and self.scheduled_grace_s > 0):
            raise ValueError(
                f"idle_end_s and scheduled_grace_s must be > 0, got {self.idle_end_s} "
                f"and {self.scheduled_grace_s}"
            )

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
        """Serialise for a child process (delivery workers)."""
        return {
            "RUANG_HOST": self.host,
            "RUANG_PORT": str(self.port),
            "RUANG_DATA_DIR": str(self.data_dir),
            "RUANG_PUBLIC_URL": self.public_url,
            "RUANG_DELIVERY_WORKERS": str(self.delivery_workers),
            "RUANG_ICE_ADDRESSES": ",".join(self.ice_addresses),
            "RUANG_MAX_ON_STAGE": str(self.max_on_stage),
            "RUANG_TICKET_KEY": self.ticket_key,
            "RUANG_TICKET_TTL_S": str(self.ticket_ttl_s),
            "RUANG_MAX_LISTENERS": str(self.max_listeners),
            "RUANG_JOINS_PER_S": str(self.joins_per_s),
            "RUANG_REDIS_URL": self.redis_url,
            "RUANG_NODE_URL": self.node_url,
            "RUANG_TRUSTED_PROXIES": ",".join(self.trusted_proxies),
            "RUANG_POW_MAX_BITS": str(self.pow_max_bits),
            "RUANG_MEDIA_REALTIME": "1" if self.media_realtime else "0",
            "RUANG_MEDIA_PROCESSES": str(self.media_processes),
            "RUANG_MEDIA_BUDGET": str(self.media_budget),
            "RUANG_CREATE_KEY": self.create_key,
            "RUANG_MAX_SPACES": str(self.max_spaces),
            "RUANG_MAX_SPACES_PER_ADDRESS": str(self.max_spaces_per_address),
            "RUANG_MAX_SPACES_PER_NETWORK": str(self.max_spaces_per_network),
            "RUANG_CREATIONS_PER_MIN_PER_NETWORK": str(self.creations_per_min_per_network),
            "RUANG_CREATIONS_PER_MIN": str(self.creations_per_min),
            "RUANG_IDLE_END_S": str(self.idle_end_s),
            "RUANG_SCHEDULED_GRACE_S": str(self.scheduled_grace_s),
            "RUANG_LISTENER_RATE_PER_S": str(self.listener_rate_per_s),
            "RUANG_LISTENER_BURST": str(self.listener_burst),
            "RUANG_CAPTIONS": "on" if self.captions else "off",
            "RUANG_CAPTIONS_ENGINE": self.captions_engine,
            "RUANG_CAPTIONS_MODEL": self.captions_model,
            "RUANG_CAPTIONS_MAX_SPACES": str(self.captions_max_spaces),
        }

    @classmethod
    def from_env(cls, env: dict[str, str] | None = None) -> Config:
        """Read a configuration from RUANG_* environment variables, defaults for the rest."""
        e = dict(os.environ if env is None else env)
        d = cls()
        return cls(
            host=e.get("RUANG_HOST", d.host),
            port=int(e.get("RUANG_PORT", d.port)),
            data_dir=Path(e.get("RUANG_DATA_DIR", str(d.data_dir))),
            public_url=e.get("RUANG_PUBLIC_URL", d.public_url),
            delivery_workers=int(e.get("RUANG_DELIVERY_WORKERS", d.delivery_workers)),
            ice_addresses=tuple(a for a in e.get("RUANG_ICE_ADDRESSES", "").split(",") if a),
            max_on_stage=int(e.get("RUANG_MAX_ON_STAGE", d.max_on_stage)),
            ticket_key=e.get("RUANG_TICKET_KEY", d.ticket_key),
            ticket_ttl_s=int(e.get("RUANG_TICKET_TTL_S", d.ticket_ttl_s)),
            max_listeners=int(e.get("RUANG_MAX_LISTENERS", d.max_listeners)),
            joins_per_s=float(e.get("RUANG_JOINS_PER_S", d.joins_per_s)),
            redis_url=e.get("RUANG_REDIS_URL", e.get("REDIS_URL", d.redis_url)),
            node_url=e.get("RUANG_NODE_URL", d.node_url),
            trusted_proxies=tuple(a for a in e.get("RUANG_TRUSTED_PROXIES", "").split(",") if a),
            pow_max_bits=int(e.get("RUANG_POW_MAX_BITS", d.pow_max_bits)),
            media_realtime=e.get("RUANG_MEDIA_REALTIME", "1") not in ("0", "false", "no", ""),
            media_processes=int(e.get("RUANG_MEDIA_PROCESSES", d.media_processes)),
            media_budget=float(e.get("RUANG_MEDIA_BUDGET", d.media_budget)),
            create_key=e.get("RUANG_CREATE_KEY", d.create_key),
            max_spaces=int(e.get("RUANG_MAX_SPACES", d.max_spaces)),
            max_spaces_per_address=int(
                e.get("RUANG_MAX_SPACES_PER_ADDRESS", d.max_spaces_per_address)
            ),
            max_spaces_per_network=int(
                e.get("RUANG_MAX_SPACES_PER_NETWORK", d.max_spaces_per_network)
            ),
            creations_per_min_per_network=int(
                e.get("RUANG_CREATIONS_PER_MIN_PER_NETWORK", d.creations_per_min_per_network)
            ),
            creations_per_min=int(e.get("RUANG_CREATIONS_PER_MIN", d.creations_per_min)),
            idle_end_s=float(e.get("RUANG_IDLE_END_S", d.idle_end_s)),
            scheduled_grace_s=float(e.get("RUANG_SCHEDULED_GRACE_S", d.scheduled_grace_s)),
            listener_rate_per_s=float(e.get("RUANG_LISTENER_RATE_PER_S", d.listener_rate_per_s)),
            listener_burst=int(e.get("RUANG_LISTENER_BURST", d.listener_burst)),
            captions=e.get("RUANG_CAPTIONS", "on") not in ("off", "0", "false", "no"),
            captions_engine=e.get("RUANG_CAPTIONS_ENGINE", d.captions_engine),
            captions_model=e.get("RUANG_CAPTIONS_MODEL", d.captions_model),
            captions_max_spaces=int(e.get("RUANG_CAPTIONS_MAX_SPACES", d.captions_max_spaces)),
        )

    @property
    def ticket_key_path(self) -> Path:
        """Where the generated ticket key is kept when none is configured."""
        return self.data_dir / "ticket.key"
