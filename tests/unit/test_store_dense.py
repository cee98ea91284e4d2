"""The store's dense layout: chunked passes agree with whole-trace ones, narrow columns hold their boundary values."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from concurview.tui import store
from concurview.tui.store import _CHANGES, load

TRACES = sorted(p for p in (Path(__file__).parents[1] / "traces").glob("*.jsonl")
                if not p.name.startswith("error-unreadable"))


def _plain_index(tl):
    """The change index as one stable argsort of every change by lane (the way it was built before)."""
    n = tl.n_events
    at = np.flatnonzero(_CHANGES[tl._kind.a[:n]])
    lanes = tl._lane.a[:n][at]
    order = np.argsort(lanes, kind="stable")
    start = np.zeros(len(tl.lanes) + 1, dtype=np.int64)
    np.cumsum(np.bincount(lanes, minlength=len(tl.lanes)), out=start[1:])
    return at[order], start


def _summary(tl):
    s = tl.summary()
    s["lane_totals"] = list(s["lane_totals"])
    return s, tl.max_running(), tl.max_in_flight()


@pytest.mark.parametrize("path", TRACES, ids=lambda p: p.stem)
def test_chunked_index_and_summary_match_one_pass(path, monkeypatch):
    first = load(path)
    whole = _summary(first)
    changes = [a.tolist() for a in first.state_changes()]
    for chunk in (1, 3, 17):
        monkeypatch.setattr(store, "_CHUNK_EVENTS", chunk)
        tl = load(path)
        got = _summary(tl)
        assert got == whole, chunk
        ev, start = _plain_index(tl)
        assert tl._index_ev.tolist() == ev.tolist()
        assert tl._index_start.tolist() == start.tolist()
        assert [a.tolist() for a in tl.state_changes()] == changes
