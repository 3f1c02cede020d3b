"""Where a new space goes: pure decisions over the figures media processes and nodes report."""

from __future__ import annotations

import pytest

from ruang.delivery.placement import choose, choose_node
from ruang.live.capacity import (
    Costs,
    Load,
    free_stages,
    pick,
    quiet_spaces,
    room_for_space,
    room_for_speaker,
)

COSTS = Costs(budget=0.8, space=0.005, speaker=0.025, seats=13)  # a full stage: 0.33 cores


def test_a_process_holds_whole_full_stages_within_its_budget() -> None:
    assert COSTS.full_stage == pytest.approx(0.33)
    assert COSTS.full_stages == 2
    assert room_for_space(COSTS, Load(0, spaces=1, speakers=13))  # one full stage: room
    assert not room_for_space(COSTS, Load(0, spaces=2, speakers=26))  # two: full
    # quiet spaces cost little, but the next space must still find a whole stage of room
    assert room_for_space(COSTS, Load(0, spaces=90, speakers=0))
    assert not room_for_space(COSTS, Load(0, spaces=100, speakers=0))
    assert quiet_spaces(COSTS) == 95  # 94 quiet ones leave a full stage of room for the 95th
    assert room_for_space(COSTS, Load(0, spaces=94, speakers=0))
    assert not room_for_space(COSTS, Load(0, spaces=95, speakers=0))
    assert room_for_speaker(COSTS, Load(0, spaces=2, speakers=26))
    assert not room_for_speaker(COSTS, Load(0, spaces=2, speakers=31))


def test_the_least_loaded_process_with_room_takes_the_space() -> None:
    loads = [Load(0, 2, 20), Load(1, 1, 3), Load(2, 1, 3)]
    assert pick(COSTS, loads) == Load(1, 1, 3)  # lowest number on a tie
    assert pick(COSTS, [Load(0, 2, 26)]) is None
    assert free_stages(COSTS, [Load(0, 0, 0), Load(1, 1, 13)]) == 3


def test_choose_reads_what_the_processes_said() -> None:
    full = {"cores": 0.7, "room_for_space": False}
    assert choose([full, {"cores": 0.3, "room_for_space": True}, None]) == 1
    assert choose([full, None]) is None
    assert (
        choose([{"cores": 0.2, "room_for_space": True}, {"cores": 0.1, "room_for_space": True}])
        == 1
    )


def test_choose_node_prefers_the_least_loaded_then_itself() -> None:
    def node(cores: float, room: bool = True) -> list[dict[str, object]]:
        return [{"cores": cores, "budget": 0.8, "room_for_space": room}]

    assert choose_node({"a": node(0.3), "b": node(0.1)}, "a") == "b"
    assert choose_node({"a": node(0.1), "b": node(0.1)}, "b") == "b"  # a tie: no hop
    assert choose_node({"a": node(0.1, room=False), "b": node(0.5)}, "a") == "b"
    assert choose_node({"a": node(0.7, room=False)}, "a") is None
    assert choose_node({}, "a") is None
