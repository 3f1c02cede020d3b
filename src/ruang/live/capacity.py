"""What a media process can carry, from measured costs, and where a new space should go.

Pure arithmetic: a media process's load is its spaces and the speakers on their stages, priced
at the CPU each costs as measured by `ruang bench stage` on the reference machine
(docs/BENCHMARKS.md, "The stage"). A process takes a new (or starting) space only while a whole
full stage more would still fit in its budget, and a new speaker only while one more fits: so
the spaces already live never run out of CPU because of newcomers, who get a clear 503
instead. A node's capacity in full stages is the sum over its media processes.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass

from ruang.config import MAX_ON_STAGE

# Measured on the reference machine (2 cores), docs/BENCHMARKS.md "The stage (issue #8)":
# a silent space 0.0033–0.0046 cores (0.0066 with the machine loaded), a full stage of 13
# sendrecv speakers all talking 0.24–0.30 cores. Priced at the worse end, so that a node's
# capacity holds on a busy machine.
SPACE_CORES = 0.005  # a live or scheduled space where nobody speaks, in cores
SPEAKER_CORES = 0.023  # one more sendrecv speaker on a stage (ingest, mix-minus, return), cores
EPSILON = 1e-9  # float slack in budget comparisons


@dataclass(frozen=True, slots=True)
class Costs:
    """The prices and the budget of one media process, in cores (1.0 = one core busy)."""

    budget: float
    space: float = SPACE_CORES
    speaker: float = SPEAKER_CORES
    seats: int = MAX_ON_STAGE  # people on a full stage

    def __post_init__(self) -> None:
        if not 0 < self.budget <= 1.0:
            raise ValueError(f"a media process's budget is 0..1 core, got {self.budget}")
        if self.space <= 0 or self.speaker <= 0:
            raise ValueError(f"costs must be positive, got {self.space} and {self.speaker}")

    @property
    def full_stage(self) -> float:
        """Cores of one space with every seat on stage taken."""
        return self.space + self.seats * self.speaker

    @property
    def full_stages(self) -> int:
        """Full stages one media process holds within its budget."""
        return math.floor(self.budget / self.full_stage + EPSILON)


@dataclass(frozen=True, slots=True)
class Load:
    """What one media process carries now."""

    media: int  # its number on the node
    spaces: int  # live and scheduled spaces whose pipeline it runs
    speakers: int  # people on stage (WHIP sessions) across them

    def cores(self, costs: Costs) -> float:
        """The load priced in cores."""
        return self.spaces * costs.space + self.speakers * costs.speaker


def room_for_space(costs: Costs, load: Load) -> bool:
    """A new or starting space fits if a whole full stage more stays within the budget."""
    return load.cores(costs) + costs.full_stage <= costs.budget + EPSILON


def room_for_speaker(costs: Costs, load: Load) -> bool:
    """One more person fits on a stage of this process."""
    return load.cores(costs) + costs.speaker <= costs.budget + EPSILON


def pick(costs: Costs, loads: Iterable[Load]) -> Load | None:
    """The least-loaded process with room for a new space (lowest number on a tie), or None
    when the node is full."""
    fitting = [load for load in loads if room_for_space(costs, load)]
    return min(fitting, key=lambda load: (load.cores(costs), load.media), default=None)


def quiet_spaces(costs: Costs) -> int:
    """How many spaces where nobody speaks one process takes (each new one must still leave
    room for a full stage), at least 1."""
    return max(1, math.floor((costs.budget - costs.full_stage) / costs.space + EPSILON) + 1)


def free_stages(costs: Costs, loads: Iterable[Load]) -> int:
    """How many more full stages the node could take, across its processes."""
    return sum(
        max(0, math.floor((costs.budget - load.cores(costs)) / costs.full_stage + EPSILON))
        for load in loads
    )
