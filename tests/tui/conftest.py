"""Pilot test fixtures: runs replayed from recorded traces, batch by batch on the test's signal."""

from __future__ import annotations

import pytest
from uitraces import Replays, trace


@pytest.fixture
def replays():
    """`replays(name, parts=3)` -> a runner replaying tests/traces/NAME.jsonl."""
    made: list[Replays] = []

    def make(name: str, parts: int = 3) -> Replays:
        made.append(Replays(trace(name), parts))
        return made[-1]

    yield make
    for r in made:
        for run in r.runs:
            run.stop("test over")
