"""`ruang bench latency`: glass-to-ear latency of a listener on LL-HLS.

A WHIP publisher sends silence with 1 kHz bursts; a part-aware LL-HLS listener (see llhls)
times each part's arrival. For every burst:

- part availability latency = arrival of the part holding the onset − the onset's capture
  time (when the publisher's track released the frame starting with it, i.e. its real time);
- player latency = when a standard LL-HLS player, playing PART-HOLD-BACK behind the live edge,
  would play the onset − its capture time. The onset's place on the media timeline is its
  PROGRAM-DATE-TIME (part PDT + offset in the part); a player that synchronised on a playlist
  whose newest part arrived L seconds after that part's PDT end plays media time m at wall time
  m + L + PART-HOLD-BACK. L is measured for every part; the median is used (the per-part
  value gives the spread).
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
from typing import Any

import httpx

from ruang.rtc.ice import configure_host_addresses
from ruang_bench.common import (
    MachineLoad,
    add_server_arguments,
    create_space,
    emit,
    end_space,
    listen_url,
    percentiles,
    server_for,
)
from ruang_bench.llhls import PartListener
from ruang_bench.signals import Bursts, find_onsets
from ruang_bench.tools.tones import SAMPLE_RATE
from ruang_bench.tools.whip_client import SignalTrack, WhipPublisher

GOAL_P50_S = 2.0
ONSET_THRESHOLD = 0.03  # tone envelope (linear); a 0.25-amplitude burst reads 0.125
MATCH_WINDOW_S = (-0.2, 2.5)  # an onset on the media timeline is this far from its capture


def add_arguments(p: argparse.ArgumentParser) -> None:
    """Options of this benchmark."""
    add_server_arguments(p)
    p.add_argument("--bursts", type=int, default=12, help="tone bursts to time (>= 8)")
    p.add_argument("--period", type=float, default=3.0, help="seconds between bursts")


async def measure(args: argparse.Namespace) -> tuple[dict[str, Any], str]:
    """Run the measurement against the server; returns (result, summary)."""
    configure_host_addresses(("127.0.0.1",))
    bursts = Bursts(freq=1000.0, period_s=args.period, length_s=0.2, first_s=3.0, count=args.bursts)
    load = MachineLoad()
    load.start()
    with server_for(args) as server:
        async with httpx.AsyncClient(verify=False, base_url=server.url, timeout=20) as api:
            space = await create_space(api, "bench latency")
            url = await listen_url(api, space)
            track = SignalTrack(bursts)
            pub = WhipPublisher(space.whip_url, space.host_token, track, direction="sendonly")
            await pub.start()
            await pub.wait_connected()
            async with httpx.AsyncClient(
                verify=False, timeout=20, limits=httpx.Limits(max_connections=8)
            ) as client:
                listener = PartListener(client, url)
                listening = await listener.run(bursts.duration_s + 3.0)
            await pub.stop()
            await end_space(api, space)
    machine = load.read()

    listening.decode()
    phb = listening.part_hold_back
    lags = listening.edge_lags()
    edge_lag = statistics.median(lags)
    found = find_onsets(listening.audio, bursts.freq, ONSET_THRESHOLD, args.period / 2)
    media_onsets = [listening.audio_start + s for s in found]

    rows: list[dict[str, float]] = []
    for onset_sample in bursts.onsets:
        captured = track.started_at + onset_sample / SAMPLE_RATE
        released = bursts.released_at.get(onset_sample)
        for m in media_onsets:
            part = listening.part_at(m)
            if part is None or part.listed is None:
                continue
            pdt = part.listed.pdt.timestamp() + (m - part.tfdt) / SAMPLE_RATE
            if MATCH_WINDOW_S[0] <= pdt - captured <= MATCH_WINDOW_S[1]:
                rows.append(
                    {
                        "captured": captured,
                        "release_lag": (released - captured) if released else 0.0,
                        "onset_pdt_minus_capture": pdt - captured,
                        "part_availability": part.arrived - captured,
                        "part_edge_lag": part.arrived - part.pdt_end,
                        "player": pdt + edge_lag + phb - captured,
                        "player_own_part_lag": pdt + (part.arrived - part.pdt_end) + phb - captured,
                    }
                )
                break

    avail = [r["part_availability"] for r in rows]
    player = [r["player"] for r in rows]
    result: dict[str, Any] = {
        "bursts_sent": len(bursts.onsets),
        "bursts_found": len(rows),
        "part_availability_s": percentiles(avail),
        "player_at_part_hold_back_s": percentiles(player),
        "player_own_part_lag_s": percentiles([r["player_own_part_lag"] for r in rows]),
        "onset_pdt_minus_capture_s": percentiles([r["onset_pdt_minus_capture"] for r in rows]),
        "part_edge_lag_s": percentiles(lags),
        "part_hold_back_s": phb,
        "sender_release_lag_s": percentiles([r["release_lag"] for r in rows]),
        "parts_received": len(listening.parts),
        "playlist_requests": listener.playlist_requests,
        "client_errors": listening.errors[:20],
        "goal_player_p50_s": GOAL_P50_S,
        "machine_load": machine,
        "bursts": [{k: round(v, 4) for k, v in r.items() if k != "captured"} for r in rows],
    }
    if len(rows) < min(8, len(bursts.onsets)):
        result["warning"] = f"only {len(rows)} of {len(bursts.onsets)} bursts were found"
    p50 = result["player_at_part_hold_back_s"].get("p50", float("nan"))
    summary = (
        f"latency: part availability p50 {result['part_availability_s'].get('p50', 0):.3f} s "
        f"p95 {result['part_availability_s'].get('p95', 0):.3f} s; player at PART-HOLD-BACK "
        f"{phb} s p50 {p50:.3f} s p95 {result['player_at_part_hold_back_s'].get('p95', 0):.3f} s "
        f"({len(rows)}/{len(bursts.onsets)} bursts; goal p50 <= {GOAL_P50_S} s: "
        f"{'met' if p50 <= GOAL_P50_S else 'MISSED'})"
    )
    return result, summary


def run(args: argparse.Namespace) -> None:
    """Entry point."""
    result, summary = asyncio.run(measure(args))
    emit("latency", args, result, summary)
