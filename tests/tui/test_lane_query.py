"""The diagram's all-lanes query (store.lane_states_many) answers exactly what Timeline.lane_states does."""

from __future__ import annotations

import numpy as np
import pytest
from uitraces import TRACES

from concurview.trace.store import lane_states_many, load

FIXTURES = sorted(p for p in TRACES.glob("*.jsonl") if not p.name.startswith("error-unreadable"))


@pytest.mark.parametrize("path", FIXTURES, ids=lambda p: p.stem)
def test_lane_states_many_matches_lane_states(path):
    tl = load(path)
    lanes = [lane for lane, _ in tl.lane_tree()]
    rng = np.random.default_rng(7)
    lo, hi = tl.t_first, max(tl.t_end, tl.t_first + 1)
    for k in range(40):
        a = int(lo + (hi - lo) * rng.random() * (k % 3 != 0)) - (k % 5 == 0) * 1000
        b = int(a + (hi - lo) * rng.random() * 1.3) + 1
        width = int(rng.integers(1, 220))
        now = None if k % 4 else int(lo + (hi - lo) * rng.random())
        expected = tl.lane_states(lanes, a, b, width, now)
        assert (lane_states_many(tl, lanes, a, b, width, now) == expected).all(), (a, b, width, now)
