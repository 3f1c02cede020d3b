"""A real EventSource (headless Chromium) on the event stream: it reconnects after every
answer with Last-Event-ID and sees each event once, in order; the listener page shows the
count and who is speaking from it."""

from __future__ import annotations

import httpx
from browser import CHROMIUM, chromium_args, write_wav

from ruang_bench.tools.tones import sine
from ruang_bench.tools.whip_client import SignalTrack, WhipPublisher
from ruangtest import ajoin
from sse_client import parse_sse

RAW = """(url) => {
  window.raw = []; window.opens = 0;
  const es = new EventSource(url);
  es.onopen = () => { window.opens += 1; };
  es.onmessage = (m) => window.raw.push({ id: m.lastEventId, data: JSON.parse(m.data) });
}"""


async def test_eventsource_in_chromium(server, tmp_path) -> None:
    from playwright.async_api import async_playwright

    wav = tmp_path / "mic.wav"
    write_wav(wav, 5.0)
    async with httpx.AsyncClient(base_url=server.url, timeout=20, follow_redirects=True) as api:
        space = (await api.post("/api/spaces", json={"title": "Browser events"})).json()
        sid = space["id"]
        auth = {"Authorization": f"Bearer {space['host_token']}"}
        host_id = (await api.get(f"/api/spaces/{sid}", headers=auth)).json()["you"]["id"]
        host = WhipPublisher(
            space["whip_url"],
            space["host_token"],
            SignalTrack(lambda start, n: sine(440.0, n / 48_000, 0.25, start)),
        )
        async with async_playwright() as p:
            browser = await p.chromium.launch(
                executable_path=CHROMIUM, headless=True, args=chromium_args(wav)
            )
            try:
                page = await browser.new_page()
                await page.goto(space["page_url"])
                await page.evaluate(RAW, f"/api/spaces/{sid}/events")
                await page.wait_for_function("window.raw.length > 0", timeout=10_000)
                await host.start()
                await host.wait_connected()
                listen = (await ajoin(api, sid))["listen_url"]
                ticket = listen.split("/t/", 1)[1].split("/", 1)[0]
                assert (await api.get(listen)).status_code == 200  # one listener counted
                for kind in ("👏", "🔥"):
                    r = await api.post(
                        f"/api/spaces/{sid}/reactions",
                        json={"kind": kind},
                        headers={"Authorization": f"Bearer {ticket}"},
                    )
                    assert r.status_code == 202
                # the page itself: who is speaking is marked, the count is shown
                await page.wait_for_selector(
                    f'#stage-list li.speaking[data-speaker="{host_id}"]', timeout=20_000
                )
                await page.wait_for_function(
                    "document.getElementById('listener-count').textContent === '1 listening'",
                    timeout=20_000,
                )
                await page.wait_for_function(
                    "window.raw.some((e) => e.data.type === 'reaction')", timeout=20_000
                )
                await host.stop()
                await page.wait_for_function(
                    "window.raw.some((e) => e.data.type === 'speaking' && !e.data.speakers.length"
                    " && window.raw.indexOf(e) > 2)",
                    timeout=20_000,
                )
                raw = await page.evaluate("window.raw")
                opens = await page.evaluate("window.opens")
            finally:
                await browser.close()
        ids = [int(e["id"]) for e in raw]
        assert ids == sorted(set(ids)), ids  # once each, in order, across reconnections
        assert opens >= 3  # it did reconnect, answer after answer
        types = [e["data"]["type"] for e in raw]
        assert types[0] == "state" and "stage" in types and "listeners" in types
        speaking = [e["data"]["speakers"] for e in raw if e["data"]["type"] == "speaking"]
        assert [host_id] in speaking
        reacted: dict[str, int] = {}
        for e in raw:
            if e["data"]["type"] == "reaction":
                for k, n in e["data"]["counts"].items():
                    reacted[k] = reacted.get(k, 0) + n
        assert reacted == {"👏": 1, "🔥": 1}
        # nothing missed: the server's own backlog from the first id holds the same events
        r = await api.get(f"/api/spaces/{sid}/events", headers={"Last-Event-ID": str(ids[0] - 1)})
        backlog = [(i, d) for i, d, _ in parse_sse(r.text) if d is not None]
        assert [i for i, _ in backlog][: len(ids)] == ids
        assert [d for _, d in backlog][: len(ids)] == [e["data"] for e in raw]
