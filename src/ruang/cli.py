"""The `ruang` command."""

from __future__ import annotations

import argparse
import logging
import os
import sys
from pathlib import Path

from ruang import __version__
from ruang.config import Config
from ruang.logs import setup_logging


def _serve_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    d = Config.from_env()  # RUANG_* environment variables become the defaults
    p = sub.add_parser(
        "serve",
        help="run the server (embedded defaults: one node, SQLite, local disk)",
        description="Run Ruang: a media process (mixing, WHIP, replay writing) and delivery "
        "worker processes (pages, join, HLS) on one public port. Every option can also be "
        "given as the RUANG_* environment variable named in its help. The listener ticket "
        "secret is read from RUANG_TICKET_KEY only (never from the command line); without it "
        "a random key is kept in DATA_DIR/ticket.key.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    a = p.add_argument
    a("--host", default=d.host, help="address the public HTTP port binds to (RUANG_HOST)")
    a("--port", type=int, default=d.port, help="public HTTP port (RUANG_PORT)")
    a(
        "--data-dir",
        type=Path,
        default=d.data_dir,
        help="folder for the SQLite database and every space's media and replay (RUANG_DATA_DIR)",
    )
    a(
        "--public-url",
        default=d.public_url,
        help="absolute base URL put in links handed to clients, e.g. https://live.example.org "
        "behind a proxy or CDN; default http://HOST:PORT (RUANG_PUBLIC_URL)",
    )
    a(
        "--workers",
        type=int,
        default=d.delivery_workers,
        help="delivery worker processes serving listeners; the media pipeline has its own "
        "process (RUANG_DELIVERY_WORKERS)",
    )
    a(
        "--ice-address",
        action="append",
        default=list(d.ice_addresses),
        help="an address to offer WebRTC peers as a host candidate (repeatable); default: every "
        "interface address except loopback; 127.0.0.1 alone for local tests "
        "(RUANG_ICE_ADDRESSES, comma-separated)",
    )
    a(
        "--max-on-stage",
        type=int,
        default=d.max_on_stage,
        help="people allowed to publish at once in a space, host included (RUANG_MAX_ON_STAGE)",
    )
    a(
        "--max-listeners",
        type=int,
        default=d.max_listeners,
        help="concurrent listeners this node admits before new ones wait in line "
        "(RUANG_MAX_LISTENERS)",
    )
    a(
        "--joins-per-s",
        type=float,
        default=d.joins_per_s,
        help="listeners admitted per second; a surge beyond it waits in a FIFO line "
        "(RUANG_JOINS_PER_S)",
    )
    a(
        "--ticket-ttl",
        type=int,
        default=d.ticket_ttl_s,
        help="seconds a listener ticket is valid; the listener page renews it (RUANG_TICKET_TTL_S)",
    )
    a(
        "--redis-url",
        default=d.redis_url,
        help="Redis shared by several nodes (spaces, ownership, waiting room), e.g. "
        "redis://10.0.0.5:6379/0; empty = one node with SQLite (REDIS_URL or RUANG_REDIS_URL)",
    )
    a(
        "--node-url",
        default=d.node_url,
        help="base URL at which the other nodes reach this node's public port; default the "
        "public URL (RUANG_NODE_URL)",
    )
    a(
        "--trusted-proxy",
        action="append",
        default=list(d.trusted_proxies),
        help="address or CIDR network of an edge (nginx, CDN) whose X-Forwarded-For names the "
        "real client, for per-source limits and the traffic evidence (repeatable; "
        "RUANG_TRUSTED_PROXIES, comma-separated)",
    )
    a(
        "--pow-max-bits",
        type=int,
        default=d.pow_max_bits,
        help="highest proof-of-work difficulty asked of joins under pressure, in leading zero "
        "bits (16 takes a browser ~0.15 s); 0 turns proof-of-work off (RUANG_POW_MAX_BITS)",
    )
    a(
        "--media-realtime",
        action=argparse.BooleanOptionalAction,
        default=d.media_realtime,
        help="run the media process with real-time round-robin scheduling (needs root or "
        "CAP_SYS_NICE; falls back to nice -5, then to normal) so that listener load cannot delay "
        "the speakers' mixer (RUANG_MEDIA_REALTIME)",
    )
    a(
        "--media-processes",
        type=int,
        default=d.media_processes,
        help="media processes (each runs its share of the spaces: WHIP, mixing, replay); a "
        "crash of one stops only its spaces, for the second it takes to restart; 0 = one per "
        "core (RUANG_MEDIA_PROCESSES)",
    )
    a(
        "--media-budget",
        type=float,
        default=d.media_budget,
        help="share of a core each media process may fill with spaces and speakers, by the "
        "measured costs; beyond it new spaces and speakers get 503 (RUANG_MEDIA_BUDGET)",
    )
    a(
        "--create-key",
        default=None,  # not the environment's: --help must not print the secret
        help="secret that POST /api/spaces must carry as Authorization: Bearer KEY (401 "
        "without it, 403 with another); unset, anyone may create within the caps below. "
        "Prefer RUANG_CREATE_KEY: the command line is visible to every local user",
    )
    a(
        "--max-spaces",
        type=int,
        default=d.max_spaces,
        help="live + scheduled spaces this node holds, key holders included; beyond it "
        "creating answers 503; 0 = from the node's measured capacity (RUANG_MAX_SPACES)",
    )
    a(
        "--max-spaces-per-address",
        type=int,
        default=d.max_spaces_per_address,
        help="live + scheduled spaces one source address may have created without the key "
        "(RUANG_MAX_SPACES_PER_ADDRESS)",
    )
    a(
        "--max-spaces-per-network",
        type=int,
        default=d.max_spaces_per_network,
        help="live + scheduled spaces one /24 (IPv4) or /64 (IPv6) may have created without "
        "the key (RUANG_MAX_SPACES_PER_NETWORK)",
    )
    a(
        "--creations-per-min-per-network",
        type=int,
        default=d.creations_per_min_per_network,
        help="spaces one /24 or /64 may create per minute without the key "
        "(RUANG_CREATIONS_PER_MIN_PER_NETWORK)",
    )
    a(
        "--creations-per-min",
        type=int,
        default=d.creations_per_min,
        help="spaces this node creates per minute for clients without the key "
        "(RUANG_CREATIONS_PER_MIN)",
    )
    a(
        "--idle-end-s",
        type=float,
        default=d.idle_end_s,
        help="seconds a live space may have nobody on stage before it ends by itself "
        "(RUANG_IDLE_END_S)",
    )
    a(
        "--scheduled-grace-s",
        type=float,
        default=d.scheduled_grace_s,
        help="seconds after its start time a scheduled space that never started ends by "
        "itself (RUANG_SCHEDULED_GRACE_S)",
    )
    a(
        "--listener-rate-per-s",
        type=float,
        default=d.listener_rate_per_s,
        help="requests per second one listener ticket may make on live URLs (a player asks "
        "~4); an ended space's public replay is not held to it (RUANG_LISTENER_RATE_PER_S)",
    )
    a(
        "--listener-burst",
        type=int,
        default=d.listener_burst,
        help="requests one listener ticket may make at once from rest (RUANG_LISTENER_BURST)",
    )
    a(
        "--captions",
        choices=["on", "off"],
        default="on" if d.captions else "off",
        help="live captions of every live space's program mix, made on this machine apart from "
        "the mixers (RUANG_CAPTIONS)",
    )
    a(
        "--captions-engine",
        choices=["pocketsphinx", "whisper"],
        default=d.captions_engine,
        help="speech engine: pocketsphinx (English, its model is in its wheel) or whisper "
        "(faster-whisper, needs --captions-model) (RUANG_CAPTIONS_ENGINE)",
    )
    a(
        "--captions-model",
        default=d.captions_model,
        help="the engine's model folder: a CTranslate2 Whisper model for whisper; optional for "
        "pocketsphinx (RUANG_CAPTIONS_MODEL)",
    )
    a(
        "--captions-max-spaces",
        type=int,
        default=d.captions_max_spaces,
        help="spaces captioned at once on this node, shared by its media processes; beyond it "
        "a space has no captions (RUANG_CAPTIONS_MAX_SPACES)",
    )
    a(
        "--log-level",
        default="info",
        choices=["debug", "info", "warning", "error"],
        help="log verbosity",
    )


def _bench_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser(
        "bench",
        help="run a benchmark (latency, listeners, joins, flood, attack, ...): the separate "
        "ruang-bench package in the repository's bench/ folder; see bench/README.md",
        add_help=False,
    )
    p.add_argument("bench_args", nargs=argparse.REMAINDER)


def _report_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser(
        "report",
        help="incident report from the traffic records (verdicts, plots, chain check)",
        description="Read every hash chain under DATA_DIR/forensics, verify it, find the "
        "incident windows and judge each one; write report.json and report.html. Exit status "
        "1 if a chain is broken, 2 if there are no records. See docs/FORENSICS.md.",
    )
    p.add_argument("--data-dir", type=Path, action="append", required=True,
                   help="a node's data folder (repeatable: merge several nodes)")  # fmt: skip
    p.add_argument("--space", help="judge one space's traffic (default: the whole node)")
    p.add_argument("--since", help="first second: unix time or ISO 8601 (UTC by default)")
    p.add_argument("--until", help="last second: unix time or ISO 8601")
    p.add_argument("--out", type=Path, default=Path("report"), help="folder for the report")


def main(argv: list[str] | None = None) -> None:
    """Parse the command line and run the chosen command."""
    parser = argparse.ArgumentParser(
        prog="ruang",
        description="Live audio spaces that stay on air: WHIP in, mixed LL-HLS out, replay after.",
    )
    parser.add_argument("--version", action="version", version=f"ruang {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)
    _serve_parser(sub)
    _bench_parser(sub)
    _report_parser(sub)
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["bench"]:  # its own parser takes every option after the word
        try:
            from ruang_bench import main as bench_main
        except ImportError:
            sys.exit(
                "ruang bench: the benchmark tools are a separate package, not part of the "
                "server; install them from a checkout with `pip install -e ./bench` (or "
                "`scripts/setup --test`)"
            )
        bench_main(argv[1:])
        return
    args = parser.parse_args(argv)
    if args.command == "report":
        from ruang.forensics.report import parse_time, run

        since = parse_time(args.since) if args.since else None
        until = parse_time(args.until) if args.until else None
        sys.exit(run(args.data_dir, args.out, args.space, since, until))
    if args.command == "serve":
        from ruang.server import serve

        os.environ["RUANG_LOG_LEVEL"] = args.log_level  # the child processes log alike
        setup_logging()
        serve(
            Config(
                host=args.host,
                port=args.port,
                data_dir=args.data_dir,
                public_url=args.public_url,
                delivery_workers=args.workers,
                ice_addresses=tuple(args.ice_address),
                max_on_stage=args.max_on_stage,
                max_listeners=args.max_listeners,
                joins_per_s=args.joins_per_s,
                ticket_ttl_s=args.ticket_ttl,
                redis_url=args.redis_url,
                node_url=args.node_url,
                media_realtime=args.media_realtime,
                media_processes=args.media_processes,
                media_budget=args.media_budget,
                trusted_proxies=tuple(args.trusted_proxy),
                pow_max_bits=args.pow_max_bits,
                ticket_key=os.environ.get("RUANG_TICKET_KEY", ""),
                create_key=os.environ.get("RUANG_CREATE_KEY", "")
                if args.create_key is None
                else args.create_key,
                max_spaces=args.max_spaces,
                max_spaces_per_address=args.max_spaces_per_address,
                max_spaces_per_network=args.max_spaces_per_network,
                creations_per_min_per_network=args.creations_per_min_per_network,
                creations_per_min=args.creations_per_min,
                idle_end_s=args.idle_end_s,
                scheduled_grace_s=args.scheduled_grace_s,
                listener_rate_per_s=args.listener_rate_per_s,
                listener_burst=args.listener_burst,
                captions=_captions_available(args),
                captions_engine=args.captions_engine,
                captions_model=args.captions_model,
                captions_max_spaces=args.captions_max_spaces,
            )
        )


def _captions_available(args: argparse.Namespace) -> bool:
    """Whether to caption: the chosen engine is checked once, here. A missing default engine
    means no captions (a warning); an engine the operator asked for must be there."""
    if args.captions == "off":
        return False
    from ruang.captions.base import EngineUnavailable
    from ruang.captions.engines import DEFAULT_ENGINE, check

    try:
        check(args.captions_engine, args.captions_model)
    except EngineUnavailable as exc:
        if args.captions_engine != DEFAULT_ENGINE or args.captions_model:
            sys.exit(f"ruang serve: {exc}")
        logging.getLogger("ruang").warning("no captions: %s", exc)
        return False
    return True


if __name__ == "__main__":
    main()
