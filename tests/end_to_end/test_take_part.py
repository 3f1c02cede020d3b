"""Taking part with real clients (issue #9): a second tab of someone on stage is recognised
(409) rather than knocking the first off stage, unless it asks to take over."""

from __future__ import annotations

import asyncio

import httpx
import pytest

from ruang.tools.tones import sine
from ruang.tools.whip_client import SignalTrack, WhipPublisher

KEY = "a-create-key-for-the-take-part-tests"


@pytest.fixture
def srv(server_factory):
    s = server_factory(env={"RUANG_CREATE_KEY": KEY})
    s.start()
    return s


def tone() -> SignalTrack:
    return SignalTrack(lambda start, n: sine(550.0, n / 48_000, 0.25, start))


async def test_a_second_tab_is_recognised(srv) -> None:
    async with httpx.AsyncClient(base_url=srv.url, timeout=20) as api:
        r = await api.post(
            "/api/spaces", json={"title": "Tabs"}, headers={"Authorization": f"Bearer {KEY}"}
        )
        space = r.json()
        first = WhipPublisher(space["whip_url"], space["host_token"], tone())
        await first.start()
        await first.wait_connected()
        second = WhipPublisher(space["whip_url"], space["host_token"], tone())
        with pytest.raises(RuntimeError) as refusal:
            await second.start()
        assert "409" in str(refusal.value) and "on_stage_elsewhere" in str(refusal.value)
        assert "another tab" in str(refusal.value)
        await asyncio.sleep(1.0)
        view = (await api.get(f"/api/spaces/{space['id']}")).json()
        assert [m["role"] for m in view["stage"]] == ["host"]  # the first is still on stage
        assert first._pc.connectionState == "connected"
        # asked explicitly, a new tab takes over: the first is hung up
        third = WhipPublisher(space["whip_url"] + "?take_over=1", space["host_token"], tone())
        await third.start()
        await third.wait_connected()
        for _ in range(50):
            if first._pc.connectionState in ("closed", "failed", "disconnected"):
                break
            await asyncio.sleep(0.2)
        view = (await api.get(f"/api/spaces/{space['id']}")).json()
        assert [m["role"] for m in view["stage"]] == ["host"]
        assert await third.stop() == 200
        await first.stop()
