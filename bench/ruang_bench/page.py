"""`ruang bench page`: how far behind live the real listener page plays, in headless Chromium.

The page (`/s/{id}?autoplay=1`) plays a live space in hls.js as a listener's browser does.
Four times a second the bench reads, from the page:

- PDT lag = the browser's wall clock − hls.js `playingDate` (the PROGRAM-DATE-TIME of the
  sample being played: the mixer's wall clock when it made it). This is how far behind the
  mix the listener hears, less the sound card's own output delay (none in headless Chromium);
  a speaker's glass-to-ear adds ingest (`onset_pdt_minus_capture_s` of `ruang bench latency`,
  tens of ms);
- hls.js `latency` (its distance to the playlist's live edge, what the debug line shows) and
  `targetLatency`, and the playback rate (hls.js catches up by playing slightly faster).

The ear: the host sends silence with 1 kHz bursts (`ruang_bench.signals.Bursts`, one every
3 s); in the page a Web Audio analyser on the `<audio>` element's output notes (Date.now())
when each burst starts to sound. Glass-to-ear = that − the moment the burst's first frame left
the publisher (its capture time: the track releases frames at their real time), both on this
machine's clock. It includes ingest, the mix, packaging, delivery and the player, and excludes
only the sound card (headless Chromium has none; the AudioContext's own output latency is
reported beside it).

Stalls are counted two ways: the page's `waiting` events while playing, and sample intervals
in which the playing position advanced less than half as far as the wall clock. A lower
latency that stalls is worse, so both are in the result.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import tempfile
import time
from collections import Counter
from typing import Any

import httpx

from ruang.rtc.ice import configure_host_addresses
from ruang_bench.common import (
    MachineLoad,
    add_server_arguments,
    create_space,
    emit,
    end_space,
    percentiles,
    server_for,
)
from ruang_bench.signals import Bursts
from ruang_bench.tools.chromium import AUTOPLAY, CHROMIUM, HEADLESS_ARGS
from ruang_bench.tools.whip_client import SignalTrack, WhipPublisher

GOAL_P50_S = 1.5
# An onset heard this long after the PDT lag says a burst sounds is that burst's: ingest adds
# 0.1-0.3 s to the PDT lag; the window (1.5 s) is under the bursts' period (3 s).
MATCH_S = (-0.3, 1.2)
SAMPLE_EVERY_S = 0.25
CHROMIUM_ARGS = [*HEADLESS_ARGS, AUTOPLAY]
# Installed before the page's scripts: once the <audio> element plays, route it through an
# analyser and note when the level rises above EAR_ON (after EAR_OFF, so each burst counts once).
EAR_ON, EAR_OFF = 0.05, 0.01
EAR_SCRIPT = """(() => {
  const ear = window.ruangEar = { onsets: [], outputLatency: null, baseLatency: null };
  document.addEventListener("playing", (e) => {
    if (ear.started) return;
    ear.started = true;
    const ctx = new AudioContext();
    const analyser = ctx.createAnalyser();
    analyser.fftSize = 512;
    ctx.createMediaElementSource(e.target).connect(analyser);
    analyser.connect(ctx.destination);
    const buf = new Float32Array(analyser.fftSize);
    let on = false;
    setInterval(() => {
      ear.outputLatency = ctx.outputLatency; ear.baseLatency = ctx.baseLatency;
      analyser.getFloatTimeDomainData(buf);
      let peak = 0;
      for (const v of buf) peak = Math.max(peak, Math.abs(v));
      if (!on && peak > EAR_ON) { on = true; ear.onsets.push(Date.now()); }
      else if (on && peak < EAR_OFF) on = false;
    }, 4);
  }, true);
})();""".replace("EAR_ON", str(EAR_ON)).replace("EAR_OFF", str(EAR_OFF))
_READ = """() => {
  const l = window.ruangListener, h = l && l.hls, a = document.getElementById("player");
  const d = h && h.playingDate;
  return {
    now: Date.now(), state: l ? l.state : null, stalls: l ? l.stalls : 0,
    pdt: d ? d.getTime() : null, t: a.currentTime, rate: a.playbackRate,
    ahead: a.buffered.length ? a.buffered.end(a.buffered.length - 1) - a.currentTime : 0,
    ranges: a.buffered.length,
    latency: h && Number.isFinite(h.latency) ? h.latency : null,
    target: h && Number.isFinite(h.targetLatency) ? h.targetLatency : null,
  };
}"""


def add_arguments(p: argparse.ArgumentParser) -> None:
    """Options of this benchmark."""
    add_server_arguments(p)
    p.add_argument("--seconds", type=float, default=60.0, help="how long to sample playback")
    p.add_argument("--warmup", type=float, default=5.0, help="seconds of playback not sampled")
    p.add_argument(
        "--join-after",
        type=float,
        default=0.0,
        help="seconds the space is live before the page opens",
    )


async def _sample(page: Any, seconds: float) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = []
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        rows.append(await page.evaluate(_READ))
        await asyncio.sleep(SAMPLE_EVERY_S)
    return rows


def _frozen(rows: list[dict[str, Any]]) -> int:
    """Sample intervals in which playback advanced under half the wall-clock time."""
    n = 0
    for a, b in zip(rows, rows[1:], strict=False):
        wall = (b["now"] - a["now"]) / 1000
        if wall > 0 and b["t"] - a["t"] < 0.5 * wall:
            n += 1
    return n


def _row(r: dict[str, Any], t0: float) -> dict[str, Any]:
    """One reading, compact: seconds since the first, lags, rate, buffer."""
    return {
        "s": round((r["now"] - t0) / 1000, 1),
        "pdt_lag": round((r["now"] - r["pdt"]) / 1000, 3) if r["pdt"] else None,
        "latency": round(r["latency"], 3) if r["latency"] is not None else None,
        "rate": r["rate"],
        "ahead": round(r["ahead"], 3),
        "ranges": r["ranges"],
        "stalls": r["stalls"],
    }


def _glass_to_ear(bursts: Bursts, heard_at: list[float], pdt_lag: float) -> list[float]:
    """For each burst sent, the first onset the page heard within MATCH_S of when the PDT lag
    says it should sound: the window is narrower than the bursts' period, so a page playing
    several periods behind is not matched to a later burst."""
    lo, hi = pdt_lag + MATCH_S[0], pdt_lag + MATCH_S[1]
    out: list[float] = []
    for sent in sorted(bursts.released_at.values()):
        later = [t - sent for t in heard_at if lo < t - sent < hi]
        if later:
            out.append(min(later))
    return out


async def measure(args: argparse.Namespace) -> tuple[dict[str, Any], str]:
    """Run the measurement against the server; returns (result, summary)."""
    from playwright.async_api import async_playwright  # a test extra, not a runtime need

    configure_host_addresses(("127.0.0.1",))
    load = MachineLoad()
    load.start()
    with server_for(args) as server:
        async with httpx.AsyncClient(verify=False, base_url=server.url, timeout=20) as api:
            space = await create_space(api, "bench page")
            page_url = f"{server.url}/s/{space.id}?autoplay=1"
            lead = args.join_after + 4.0  # the first burst: about when the page plays
            bursts = Bursts(
                freq=1000.0,
                period_s=3.0,
                length_s=0.2,
                first_s=lead,
                count=int((args.warmup + args.seconds) / 3.0) + 1,
            )
            track = SignalTrack(bursts)
            pub = WhipPublisher(space.whip_url, space.host_token, track, direction="sendonly")
            await pub.start()
            await pub.wait_connected()
            async with async_playwright() as p:
                with tempfile.TemporaryDirectory(prefix="ruang-chromium-") as profile:
                    browser = await p.chromium.launch_persistent_context(
                        profile, executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS
                    )
                    try:
                        page = browser.pages[0] if browser.pages else await browser.new_page()
                        fetched: Counter[str] = Counter()
                        page.on(
                            "request",
                            lambda r: fetched.update([r.url]) if r.url.endswith(".m4s") else None,
                        )
                        await asyncio.sleep(args.join_after)
                        opened = time.monotonic()
                        await page.add_init_script(EAR_SCRIPT)
                        await page.goto(page_url)
                        await page.wait_for_function(
                            "() => window.ruangListener?.state === 'playing'",
                            timeout=30_000,
                        )
                        to_playing = time.monotonic() - opened
                        early = await _sample(page, args.warmup)
                        rows = await _sample(page, args.seconds)
                        version = await page.evaluate("window.Hls && window.Hls.version")
                        ear = await page.evaluate("window.ruangEar")
                    finally:
                        await browser.close()
            await pub.stop()
            await end_space(api, space)
    machine = load.read()

    lags = [(r["now"] - r["pdt"]) / 1000 for r in rows if r["pdt"]]
    pdt_p50 = statistics.median(lags) if lags else 0.0
    heard = _glass_to_ear(bursts, [t / 1000 for t in ear["onsets"]], pdt_p50)
    playing = [r for r in rows if r["state"] == "playing"]
    stalls = rows[-1]["stalls"] if rows else 0
    frozen = _frozen(rows)
    result: dict[str, Any] = {
        "pdt_lag_s": percentiles(lags, (5, 50, 95)),
        "glass_to_ear_s": percentiles(heard),
        "bursts_sent": len(bursts.released_at),
        "bursts_heard": len(heard),
        "ear_onsets": len(ear["onsets"]),
        "ear_onsets_unix": [t / 1000 for t in ear["onsets"]],  # to match again differently
        "bursts_left_unix": sorted(bursts.released_at.values()),
        "audio_context_latency_s": {"output": ear["outputLatency"], "base": ear["baseLatency"]},
        "hls_latency_s": percentiles([r["latency"] for r in rows if r["latency"] is not None]),
        "hls_target_latency_s": percentiles([r["target"] for r in rows if r["target"]]),
        "playback_rate": percentiles([r["rate"] for r in rows]),
        "waiting_events": stalls,
        "frozen_intervals": frozen,
        "samples": len(rows),
        "samples_playing": len(playing),
        "sampled_s": args.seconds,
        "open_to_playing_s": round(to_playing, 3),
        "media_requests": sum(fetched.values()),
        "most_fetches_of_one_part": max(fetched.values(), default=0),
        "join_after_s": args.join_after,
        "hls_js": version,
        "goal_glass_to_ear_p50_s": GOAL_P50_S,
        "machine_load": machine,
        "warmup_series": [_row(r, early[0]["now"]) for r in early[:: int(1 / SAMPLE_EVERY_S)]],
        "series": [_row(r, rows[0]["now"]) for r in rows[:: int(1 / SAMPLE_EVERY_S)]],
    }
    p50 = result["pdt_lag_s"].get("p50", float("nan"))
    g2e_p50 = result["glass_to_ear_s"].get("p50", float("nan"))
    enough = len(heard) >= min(8, len(bursts.released_at))
    met = enough and g2e_p50 <= GOAL_P50_S and stalls == 0 and frozen == 0
    g2e = result["glass_to_ear_s"]
    summary = (
        f"page: glass-to-ear p50 {g2e.get('p50', float('nan')):.3f} s p95 "
        f"{g2e.get('p95', float('nan')):.3f} s ({len(heard)}/{len(bursts.released_at)} bursts "
        f"heard); behind PROGRAM-DATE-TIME p50 {p50:.3f} s p95 "
        f"{result['pdt_lag_s'].get('p95', 0):.3f} s; hls.js latency p50 "
        f"{result['hls_latency_s'].get('p50', 0):.3f} s target "
        f"{result['hls_target_latency_s'].get('p50', 0):.3f} s; stalls {stalls} waiting, "
        f"{frozen} frozen of {len(rows)} samples over {args.seconds:g} s; a part fetched up "
        f"to {result['most_fetches_of_one_part']} times (goal p50 <= "
        f"{GOAL_P50_S} s glass-to-ear without stalls: {'met' if met else 'MISSED'})"
    )
    return result, summary


def run(args: argparse.Namespace) -> None:
    """Entry point."""
    result, summary = asyncio.run(measure(args))
    emit("page", args, result, summary)
