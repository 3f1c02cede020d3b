"""`ruang bench <name>`: measurements of a running Ruang, each printing a JSON result and a
one-line summary. Every benchmark starts its own server in a temporary folder unless --url
is given. See bench/README.md for how to run them all and docs/BENCHMARKS.md for the figures."""

from __future__ import annotations

import argparse
import importlib

BENCHMARKS = {
    "latency": "glass-to-ear latency of an LL-HLS listener (part availability and player)",
    "page": "the listener page in headless Chromium: hls.js behind PROGRAM-DATE-TIME, stalls",
    "s2s": "speaker-to-speaker delay through the server, against a direct aiortc baseline",
    "cpu": "CPU per live space and how many publishing speakers one core sustains",
    "listeners": "listener playlist+part requests per second, Ruang alone vs nginx",
    "isolation": "a listener flood against speakers: late ticks, return gaps, part timing",
    "budget": "one source's effective budget with 1 and 2 delivery workers (one guard per node)",
    "line": "the waiting room's admitted pace and order with 1 and 2 delivery workers",
    "joins": "joins per second one node admits (wrk POSTs), p50/p99, every answer a ticket",
    "flood": "open-model listener surge with LL-HLS pacing: joins, waiting room, stalls, req/s",
    "attack": "labelled attack scenarios beside a live audience: defences, report verdicts",
    "edge": "listener requests per second through the shipped nginx edge vs static nginx",
    "failover": "a media process killed again and again: back on air, the other space untouched",
    "events": "the live event stream for N subscribers through the nginx edge: events/s, bytes, "
    "origin requests per batch, origin CPU per event",
    "replay": "an ended space's long replay: ffmpeg downloads it whole, the recording's remux",
    "captions": "live captions: the engine's real-time factor, the captioning process's CPU per "
    "captioned space, dropped speech, the mixer's cost of the tap",
    "stage": "full stages per node (13 sendrecv speakers each), idle-space cost, added s2s delay",
}


def main(argv: list[str] | None = None) -> None:
    """Parse `ruang bench` arguments and run one benchmark."""
    parser = argparse.ArgumentParser(
        prog="ruang bench",
        description="Measure Ruang. Each benchmark prints a JSON result, then a one-line summary.",
    )
    sub = parser.add_subparsers(dest="bench", required=True, metavar="NAME")
    for name, help_text in BENCHMARKS.items():
        module = importlib.import_module(f"ruang_bench.{name}")
        p = sub.add_parser(name, help=help_text, description=module.__doc__)
        module.add_arguments(p)
    args = parser.parse_args(argv)
    importlib.import_module(f"ruang_bench.{args.bench}").run(args)
