"""Prometheus metrics of the media process, read from the components' statistics on scrape."""

from __future__ import annotations

import time
from collections.abc import Iterator

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.parser import text_string_to_metric_families
from prometheus_client.registry import Collector

from ruang.live.studio import Studio


class StudioCollector(Collector):
    """Live spaces, people on stage and each space's mixer clock health."""

    def __init__(self, studio: Studio) -> None:
        self._studio = studio

    def collect(self) -> Iterator[GaugeMetricFamily | CounterMetricFamily]:
        """Called by the registry on each scrape."""
        m = [str(self._studio.media)]
        stats = self._studio.statistics()
        live = GaugeMetricFamily(
            "ruang_live_spaces", "Spaces whose media pipeline runs here", labels=["media"]
        )
        live.add_metric(m, len(self._studio.pipelines))
        yield live
        stage = GaugeMetricFamily(
            "ruang_sessions", "WHIP sessions (people on stage)", labels=["media"]
        )
        stage.add_metric(m, len(self._studio.sessions))
        yield stage
        priced = GaugeMetricFamily(
            "ruang_media_load_cores",
            "A media process's spaces and speakers priced at their measured cost, in cores",
            labels=["media"],
        )
        priced.add_metric(m, stats["cores"])
        budget = GaugeMetricFamily(
            "ruang_media_budget_cores", "What a media process may carry, in cores", labels=["media"]
        )
        budget.add_metric(m, stats["budget"])
        stages = GaugeMetricFamily(
            "ruang_media_full_stages", "Full stages a media process holds", labels=["media"]
        )
        stages.add_metric(m, stats["full_stages"])
        yield from (priced, budget, stages)
        ticks = CounterMetricFamily("ruang_mixer_ticks", "20 ms mixer ticks", labels=["space"])
        late = CounterMetricFamily(
            "ruang_mixer_late_ticks", "Ticks started over 20 ms late", labels=["space"]
        )
        busy = CounterMetricFamily(
            "ruang_mixer_busy_seconds", "Time spent mixing, encoding, packaging", labels=["space"]
        )
        parts = CounterMetricFamily("ruang_hls_parts", "LL-HLS parts made", labels=["space"])
        encoded = CounterMetricFamily(
            "ruang_opus_encoded",
            "Opus packets encoded (one per distinct mix a tick)",
            labels=["space"],
        )
        decoded = CounterMetricFamily(
            "ruang_opus_decoded", "Speakers' Opus packets decoded", labels=["space"]
        )
        returned = CounterMetricFamily(
            "ruang_return_packets", "Mix-minus packets handed to speakers", labels=["space"]
        )
        dropped = CounterMetricFamily(
            "ruang_return_dropped",
            "Mix-minus packets dropped because a speaker's sender was behind",
            labels=["space"],
        )
        for sid, p in self._studio.pipelines.items():
            ticks.add_metric([sid], p.stats.ticks)
            late.add_metric([sid], p.stats.late_ticks)
            busy.add_metric([sid], p.stats.busy_s)
            parts.add_metric([sid], p.stats.parts)
            encoded.add_metric([sid], p.stage.stats.encoded)
            decoded.add_metric([sid], p.stage.stats.decoded)
            returned.add_metric([sid], p.stage.stats.sent)
        behind: dict[str, int] = {}
        for session in self._studio.sessions.values():
            if session.return_track is not None:
                behind[session.space_id] = behind.get(session.space_id, 0) + (
                    session.return_track.dropped
                )
        for sid, n in behind.items():
            dropped.add_metric([sid], n)
        yield from (ticks, late, busy, parts, encoded, decoded, returned, dropped)
        now = time.time()
        current = GaugeMetricFamily("ruang_listeners", "Listeners present now", labels=["space"])
        peak = GaugeMetricFamily("ruang_listeners_peak", "Most listeners at once", labels=["space"])
        unique = GaugeMetricFamily(
            "ruang_listeners_unique",
            "Distinct listeners so far (HyperLogLog estimate)",
            labels=["space"],
        )
        for sid in self._studio.audience.spaces():
            snap = self._studio.audience.snapshot(sid, now)
            current.add_metric([sid], snap["current"])
            peak.add_metric([sid], snap["peak"])
            unique.add_metric([sid], snap["unique"])
        yield from (current, peak, unique)
        level = GaugeMetricFamily(
            "ruang_pressure_level",
            "Load-shedding level of each delivery worker (0 calm … 3)",
            labels=["worker"],
        )
        shed = CounterMetricFamily(
            "ruang_shed_requests", "Requests refused by load shedding", labels=["worker", "class"]
        )
        attack = GaugeMetricFamily(
            "ruang_attack_mode", "1 while a delivery worker is in attack mode", labels=["worker"]
        )
        pow_bits = GaugeMetricFamily(
            "ruang_pow_difficulty",
            "Proof-of-work asked of new joins, leading zero bits (0 = dormant)",
            labels=["worker"],
        )
        limited = CounterMetricFamily(
            "ruang_rate_limited_requests",
            "Requests refused 429 by per-source limits",
            labels=["worker", "class"],
        )
        pow_failed = CounterMetricFamily(
            "ruang_pow_failures", "Joins whose proof-of-work failed", labels=["worker", "cause"]
        )
        records = CounterMetricFamily(
            "ruang_evidence_records", "Per-second traffic records chained", labels=["worker"]
        )
        for worker, load in self._studio.worker_load.items():
            level.add_metric([worker], float(load.get("level", 0)))
            for cls, n in dict(load.get("shed", {})).items():
                shed.add_metric([worker, str(cls)], float(n))
            guard = dict(load.get("guard", {}))
            attack.add_metric([worker], float(bool(guard.get("attack", {}).get("active"))))
            pow_bits.add_metric([worker], float(guard.get("pow", {}).get("difficulty", 0)))
            for cls, n in dict(guard.get("limits", {}).get("refused", {})).items():
                limited.add_metric([worker, str(cls)], float(n))
            for cause, n in dict(guard.get("pow", {}).get("failures", {})).items():
                pow_failed.add_metric([worker, str(cause)], float(n))
            records.add_metric([worker], float(guard.get("recorder", {}).get("records_written", 0)))
        yield from (level, shed, attack, pow_bits, limited, pow_failed, records)
        yield from self._captions(m)

    def _captions(self, m: list[str]) -> Iterator[GaugeMetricFamily | CounterMetricFamily]:
        feed = self._studio.captions
        if feed is None:
            return
        c = feed.stats
        families: list[GaugeMetricFamily | CounterMetricFamily] = [
            GaugeMetricFamily(
                "ruang_captions_rtf",
                "Captions engine's real-time factor: CPU seconds per second of speech",
                labels=["media"],
            ),
            CounterMetricFamily(
                "ruang_captions_audio_seconds", "Speech transcribed, seconds", labels=["media"]
            ),
            CounterMetricFamily(
                "ruang_captions_dropped_seconds",
                "Speech dropped because the captioning process was behind, seconds",
                labels=["media"],
            ),
            GaugeMetricFamily(
                "ruang_captions_backlog_seconds",
                "Speech waiting for the captioning process, seconds",
                labels=["media"],
            ),
            GaugeMetricFamily("ruang_captions_spaces", "Spaces captioned now", labels=["media"]),
            CounterMetricFamily(
                "ruang_captions_refused_spaces",
                "Spaces left without captions by the node's cap",
                labels=["media"],
            ),
        ]
        values = (c.rtf, c.audio_s, c.dropped_s, c.backlog_s, c.spaces, c.refused)
        for family, value in zip(families, values, strict=True):
            family.add_metric(m, value)
        yield from families


class _Families(Collector):
    def __init__(self, families: list[Metric]) -> None:
        self._families = families

    def collect(self) -> Iterator[Metric]:
        yield from self._families


def merge_expositions(texts: list[str], extra: list[Metric] | None = None) -> bytes:
    """One Prometheus exposition from several processes' (each media process reports its own
    spaces; every one repeats the delivery workers' figures, kept once): families are merged
    by name, a sample seen twice with the same labels is kept once."""
    merged: dict[str, Metric] = {}
    seen: set[tuple[str, tuple[tuple[str, str], ...]]] = set()
    for text in texts:
        for family in text_string_to_metric_families(text):
            into = merged.setdefault(
                family.name, Metric(family.name, family.documentation, family.type, family.unit)
            )
            for sample in family.samples:
                key = (sample.name, tuple(sorted(sample.labels.items())))
                if key not in seen:
                    seen.add(key)
                    into.samples.append(sample)
    registry = CollectorRegistry(auto_describe=False)
    registry.register(_Families([*merged.values(), *(extra or [])]))
    return generate_latest(registry)
