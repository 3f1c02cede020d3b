"""The media side of captions without a captioning process: taps and the bounded queue."""

from __future__ import annotations

import numpy as np

from ruang.captions.feed import CHUNK_TICKS, QUEUE_S, CaptionFeed, spaces_share
from ruang.captions.wire import AUDIO, CLOSE, END

TICK = 960  # 20 ms at 48 kHz


def tick_pcm(level: float = 0.1) -> np.ndarray:
    return np.full(TICK, level, dtype=np.float32)


def queued(feed: CaptionFeed) -> list:
    return list(feed._queue)


def test_heard_ticks_become_half_second_messages_and_an_end() -> None:
    feed = CaptionFeed(["true"], max_spaces=1)
    tap = feed.attach("s1")
    assert tap is not None
    for i in range(CHUNK_TICKS + 5):
        tap.tick(3.0 + i * 0.02, tick_pcm(), heard=True)
    tap.tick(3.6, tick_pcm(0.0), heard=False)
    tap.tick(3.62, tick_pcm(0.0), heard=False)  # nothing more while nobody is heard
    kinds = [(m.kind, round(m.at, 2), len(m.pcm)) for m in queued(feed)]
    assert kinds == [(AUDIO, 3.0, CHUNK_TICKS * 640), (AUDIO, 3.5, 5 * 640), (END, 3.6, 0)]
    samples = np.frombuffer(queued(feed)[0].pcm, dtype="<i2")
    assert abs(int(samples[0]) - round(0.1 * 32767)) <= 1  # 16 kHz int16 of the program
    feed.detach("s1", 9.0)
    assert queued(feed)[-1].kind == CLOSE


def test_the_queue_drops_the_oldest_audio_and_keeps_markers() -> None:
    feed = CaptionFeed(["true"], max_spaces=1)
    tap = feed.attach("s1")
    assert tap is not None
    total = 0.0
    for n in range(int(QUEUE_S / 0.5) + 10):
        for i in range(CHUNK_TICKS):
            tap.tick(n * 0.52 + i * 0.02, tick_pcm(), heard=True)
        total += 0.5
        tap.tick(n * 0.52 + 0.5, tick_pcm(0.0), heard=False)  # an END after each
    assert abs(feed.stats.backlog_s - QUEUE_S) < 0.01
    assert abs(feed.stats.dropped_s - (total - QUEUE_S)) < 0.01
    audio = [m for m in queued(feed) if m.kind == AUDIO]
    assert audio[0].at > 4.0  # the oldest went
    assert sum(m.kind == END for m in queued(feed)) == int(QUEUE_S / 0.5) + 10


def test_the_cap_leaves_later_spaces_without_captions() -> None:
    feed = CaptionFeed(["true"], max_spaces=2)
    assert feed.attach("a") and feed.attach("b")
    assert feed.attach("c") is None and feed.stats.refused == 1
    feed.detach("a", 1.0)
    assert feed.attach("c") is not None


def test_node_cap_shares_add_up() -> None:
    assert [spaces_share(4, m, 3) for m in range(3)] == [2, 1, 1]
    assert [spaces_share(1, m, 2) for m in range(2)] == [1, 0]
    assert sum(spaces_share(7, m, 4) for m in range(4)) == 7
