"""summary() computed for all lanes at once agrees with each lane's own track, on every recorded trace."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from concurview.trace.events import RUN as RUN_KIND
from concurview.trace.store import DONE, READY_S, RUNNING, WAITING, load

TRACES = sorted(p for p in (Path(__file__).parents[1] / "traces").glob("*.jsonl")
                if not p.name.startswith("error-unreadable"))


def _per_track(tl, lane_id: int) -> dict:
    """The row one lane's track gives (the per-lane way summary() used to work)."""
    tr = tl._track(lane_id)
    totals = {RUNNING: 0, READY_S: 0, WAITING: 0}
    t, st = tr.t.view(), tr.state.view()
    for k in range(len(t)):
        nxt = t[k + 1] if k + 1 < len(t) else tl.t_end
        if int(st[k]) in totals:
            totals[int(st[k])] += int(nxt - t[k])
    runs = int(np.count_nonzero(tl._kind.a[tr.events()] == RUN_KIND))  # `run` events: switches
    return {"switches": runs,
            "running_s": totals[RUNNING] / 1e9, "ready_s": totals[READY_S] / 1e9, "waiting_s": totals[WAITING] / 1e9,
            "first_t_s": int(t[0]) / 1e9 if len(t) else None,
            "done_t_s": int(t[-1]) / 1e9 if len(t) and st[-1] == DONE else None}


def _most_running(tl, kind: str) -> int:
    """Brute force: at each change of any lane of `kind`, count that kind's lanes running (a thread the
    GIL view saw: on a CPU as sampled, _running_mask)."""
    ids = [lane.id for lane in tl.lanes if lane.kind == kind]
    tracks = {i: tl._track(i) for i in ids}
    masks = {i: tl._running_mask(tr) for i, tr in tracks.items()}
    times = sorted({int(x) for tr in tracks.values() for x in tr.t.view()})
    best = 0
    for t in times:
        running = 0
        for i, tr in tracks.items():
            k = int(np.searchsorted(tr.t.view(), t, side="right")) - 1
            running += k >= 0 and bool(masks[i][k])
        best = max(best, running)
    return best


@pytest.mark.parametrize("path", TRACES, ids=lambda p: p.stem)
def test_lane_totals_and_most_running_match_the_tracks(path):
    tl = load(path)
    rows = tl.summary()["lane_totals"]
    assert len(rows) == len(tl.lanes)
    for lane, row in zip(tl.lanes, rows):
        expected = _per_track(tl, lane.id)
        got = {k: row[k] for k in expected}
        assert got == pytest.approx(expected, abs=1e-12), lane.name
        assert (row["id"], row["name"], row["kind"]) == (lane.id, lane.name, lane.kind)
    most = tl.max_running()
    assert set(most) == {lane.kind for lane in tl.lanes}
    for kind, n in most.items():
        assert n == _most_running(tl, kind), kind


def test_rows_are_a_sequence_made_on_demand():
    tl = load(TRACES[0])
    rows = tl.summary()["lane_totals"]
    assert rows[-1] == rows[len(rows) - 1] and rows[:2] == [rows[0], rows[1]]
    with pytest.raises(IndexError):
        rows[len(rows)]
