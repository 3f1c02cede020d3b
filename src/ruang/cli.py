"""The `ruang` command."""

from __future__ import annotations

import argparse
import logging
import os
import sys
from pathlib import Path

from ruang import __version__
from ruang.config import Config


def _serve_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    d = Config()
    p = sub.add_parser(
        "serve",
        help="run the server (embedded defaults: one node, SQLite, local disk)",
        description="Run Ruang: a media process (mixing, WHIP, replay writing) and delivery "
        "worker processes (pages, join, HLS) on one public port. Every option can also be "
        "given as a RUANG_* environment variable.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    p.add_argument(
        "--host",
        default=os.environ.get("RUANG_HOST", d.host),
        help="address to bind the public HTTP port to (RUANG_HOST)",
    )
    p.add_argument(
        "--port",
        type=int,
        default=int(os.environ.get("RUANG_PORT", d.port)),
        help="public HTTP port (RUANG_PORT)",
    )
    p.add_argument(
        "--data-dir",
        type=Path,
        default=Path(os.environ.get("RUANG_DATA_DIR", str(d.data_dir))),
        help="folder for the SQLite database and every space's media and replay (RUANG_DATA_DIR)",
    )
    p.add_argument(
        "--public-url",
        default=os.environ.get("RUANG_PUBLIC_URL", ""),
        help="absolute base URL put in links handed to clients, e.g. "
        "https://live.example.org when behind a proxy; default http://HOST:PORT "
        "(RUANG_PUBLIC_URL)",
    )
    p.add_argument(
        "--workers",
        type=int,
        default=int(os.environ.get("RUANG_DELIVERY_WORKERS", d.delivery_workers)),
        help="delivery worker processes serving listeners; the media pipeline has "
        "its own process (RUANG_DELIVERY_WORKERS)",
    )
    p.add_argument(
        "--ice-address",
        action="append",
        default=[a for a in os.environ.get("RUANG_ICE_ADDRESSES", "").split(",") if a],
        help="an address to offer WebRTC peers as a host candidate (repeatable); "
        "default: every interface address except loopback; 127.0.0.1 alone for "
        "local tests (RUANG_ICE_ADDRESSES, comma-separated)",
    )
    p.add_argument(
        "--max-on-stage",
        type=int,
        default=d.max_on_stage,
        help="people allowed to publish at once in a space, host included",
    )
    p.add_argument(
        "--log-level",
        default="info",
        choices=["debug", "info", "warning", "error"],
        help="log verbosity",
    )


def _bench_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser(
        "bench",
        help="run a benchmark (latency, s2s, cpu, listeners, isolation); see bench/README.md",
        add_help=False,
    )
    p.add_argument("bench_args", nargs=argparse.REMAINDER)


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
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["bench"]:  # its own parser takes every option after the word
        from ruang.bench import main as bench_main

        bench_main(argv[1:])
        return
    args = parser.parse_args(argv)
    if args.command == "serve":
        from ruang.server import serve

        logging.basicConfig(
            level=args.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s"
        )
        logging.getLogger("aioice").setLevel(logging.WARNING)
        logging.getLogger("aiortc").setLevel(logging.WARNING)
        serve(
            Config(
                host=args.host,
                port=args.port,
                data_dir=args.data_dir,
                public_url=args.public_url,
                delivery_workers=args.workers,
                ice_addresses=tuple(args.ice_address),
                max_on_stage=args.max_on_stage,
            )
        )


if __name__ == "__main__":
    main()
