"""The `ruang` command."""

from __future__ import annotations

import argparse
import logging
import os
import sys
from argparse import SUPPRESS
from collections.abc import Callable, Mapping
from dataclasses import replace
from pathlib import Path
from typing import Any

from ruang import __version__
from ruang.config import SETTINGS, Config
from ruang.logs import setup_logging
from ruang.settings import Setting


def _value_type(s: Setting) -> Callable[[str], Any]:
    """The setting's parser, its ValueError turned into argparse's message (which names the
    option)."""

    def parse(text: str) -> Any:
        try:
            return s.parse(text)
        except ValueError as exc:
            raise argparse.ArgumentTypeError(str(exc)) from None

    return parse


def _help(s: Setting, *also: str) -> str:
    """The declared help, then its unit, default and variable."""
    extra = [s.unit] if s.unit else []
    extra += [*also, f"default {s.show_default()}", " or ".join(s.envs)]
    if s.repeatable:
        extra.append("comma-separated; the option is repeatable")
    return f"{s.help} ({'; '.join(extra)})".replace("%", "%%")


def _metavar(s: Setting) -> str:
    """What the option takes: its choices, N for a number, else a noun from its unit."""
    if s.choices:
        return "{" + ",".join(s.choices) + "}"
    if s.kind in (int, float):
        return "N"
    noun = s.unit.upper().removesuffix("ES")  # ADDRESSES: one per option
    return f"{noun}[,{noun}...]" if s.repeatable else noun


def _serve_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser(
        "serve",
        help="run the server (embedded defaults: one node, SQLite, local disk)",
        description="Run Ruang: media processes (mixing, WHIP, replay writing) and delivery "
        "worker processes (pages, join, HLS) on one public port. Every option can also be "
        "given as the RUANG_* environment variable named in its help; the option wins. The "
        "listener ticket secret is read from RUANG_TICKET_KEY only (never from the command "
        "line); without it a random key is kept in DATA_DIR/ticket.key. docs/CONFIGURATION.md "
        "lists the same.",
    )
    for s in SETTINGS:
        if s.flag is None:
            continue
        # default None: "not given", so that the environment's value stands (Config.from_env)
        if s.kind is bool:  # --captions, --captions on|off (as in the variable), --no-captions
            no = "--no-" + s.flag[2:]
            p.add_argument(
                s.flag,
                dest=s.name,
                nargs="?",
                const=True,
                type=_value_type(s),
                metavar="on|off",
                help=_help(s, f"{no} = off"),
            )
            p.add_argument(no, dest=s.name, action="store_const", const=False, help=SUPPRESS)
            continue
        p.add_argument(
            s.flag,
            dest=s.name,
            type=_value_type(s),
            action="extend" if s.repeatable else "store",
            metavar=_metavar(s),
            help=_help(s),
        )
    p.add_argument(
        "--log-level",
        default="info",
        choices=["debug", "info", "warning", "error"],
        help="log verbosity",
    )


def serve_config(args: argparse.Namespace, env: Mapping[str, str] | None = None) -> Config:
    """The options given on the command line, over the environment (`os.environ` unless
    `env`), over the defaults."""
    given: dict[str, Any] = {}
    for s in SETTINGS:
        value = getattr(args, s.name, None)
        if value is not None:
            given[s.name] = tuple(value) if s.repeatable else value
    return Config.from_env(env, given)


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


def build_parser() -> argparse.ArgumentParser:
    """The `ruang` command's parser, with its subcommands."""
    parser = argparse.ArgumentParser(
        prog="ruang",
        description="Live audio spaces that stay on air: WHIP in, mixed LL-HLS out, replay after.",
    )
    parser.add_argument("--version", action="version", version=f"ruang {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)
    _serve_parser(sub)
    _bench_parser(sub)
    _report_parser(sub)
    return parser


def main(argv: list[str] | None = None) -> None:
    """Parse the command line and run the chosen command."""
    parser = build_parser()
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
        try:
            config = serve_config(args)
        except ValueError as exc:
            sys.exit(f"ruang serve: {exc}")
        serve(replace(config, captions=_captions_available(config)))


def _captions_available(config: Config) -> bool:
    """Whether to caption: the chosen engine is checked once, here. A missing default engine
    means no captions (a warning); an engine the operator asked for must be there."""
    if not config.captions:
        return False
    from ruang.captions.base import EngineUnavailable
    from ruang.captions.engines import DEFAULT_ENGINE, check

    try:
        check(config.captions_engine, config.captions_model)
    except EngineUnavailable as exc:
        if config.captions_engine != DEFAULT_ENGINE or config.captions_model:
            sys.exit(f"ruang serve: {exc}")
        logging.getLogger("ruang").warning("no captions: %s", exc)
        return False
    return True


if __name__ == "__main__":
    main()
