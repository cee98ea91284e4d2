"""Traces whose times go backwards never give negative durations; events on undeclared lanes are counted and said."""

from __future__ import annotations

import json

import numpy as np

from concurview.trace.events import Event, Footer, Header, Lane
from concurview.trace.tracefile import TraceWriter
from concurview.cli import main
from concurview.trace.store import RUNNING, WAITING, Timeline, load

LANES = [Lane(0, "main", "m", pid=1, tid=1), Lane(1, "thread", "w", parent=0, pid=1, tid=2)]


def write(path, events, lanes=LANES):
    w = TraceWriter(path, Header(scenario="times"))
    w.lanes(lanes)
    w.events([Event(i, t, lane, kind) for i, (t, lane, kind) in enumerate(events)])
    return w.close(Footer(events=len(events), lanes=len(lanes)))


# Lane 0's events as written go back in time: run at 100, wait at 50, run at 10, close at 200.
BACKWARDS = [(100, 0, "run"), (50, 0, "wait"), (10, 0, "run"), (0, 1, "open"), (5, 1, "run"), (200, 0, "close"),
             (300, 1, "close")]


def test_a_lane_going_back_in_time_has_no_negative_durations(tmp_path):
    tl = load(write(tmp_path / "b.jsonl", BACKWARDS))
    totals = {row["name"]: row for row in tl.summary()["lane_totals"]}
    # In time order: run 10..50, wait 50..100, run 100..200 (the file's order put the wait first, at 100-50 < 0).
    assert (totals["m"]["running_s"], totals["m"]["waiting_s"], totals["m"]["ready_s"]) == (140e-9, 50e-9, 0.0)
    assert totals["m"]["first_t_s"] == 10e-9 and totals["m"]["done_t_s"] == 200e-9
    assert tl.state_at(0, 60)[0] == WAITING and tl.state_at(0, 120)[0] == RUNNING and tl.state_at(0, 30)[0] == RUNNING
    starts, ends, _states, _ev = tl.lane_intervals(0)
    assert (ends > starts).all() and (np.diff(starts) >= 0).all()
    cells = tl.lane_states([0, 1], 0, 300, 30)
    assert cells[0, 2] == RUNNING and cells[0, 7] == WAITING and cells[0, 15] == RUNNING


def test_the_same_when_the_late_event_comes_in_a_later_batch():
    """A live run adds events batch by batch: a lane's back-dated change in a later batch (a probe)
    re-sorts what the lane's view already cached."""
    tl = Timeline(Header())
    tl.add(LANES, [Event(0, 100, 0, "run"), Event(1, 300, 0, "wait")])
    assert tl.summary()["lane_totals"][0]["running_s"] == 200e-9  # the caches are built here
    tl.add([], [Event(2, 200, 0, "wait"), Event(3, 250, 0, "run")])
    row = tl.summary()["lane_totals"][0]
    assert (row["running_s"], row["waiting_s"]) == (150e-9, 50e-9)


def test_summary_never_prints_a_negative_time(tmp_path, capsys):
    path = write(tmp_path / "b.jsonl", BACKWARDS)
    assert main(["summary", str(path)]) == 0
    text = capsys.readouterr().out
    rows = [line.split() for line in text.splitlines() if line.startswith("  m ") or line.startswith("  w ")]
    assert rows and not any(cell.startswith("-") for row in rows for cell in row), text
    assert main(["summary", str(path), "--json"]) == 0
    s = json.loads(capsys.readouterr().out)
    assert all(row[k] >= 0 for row in s["lane_totals"] for k in ("running_s", "waiting_s", "ready_s"))


def test_events_on_undeclared_lanes_are_counted_and_said(tmp_path, capsys):
    p = tmp_path / "u.jsonl"
    p.write_text('{"format":"concurview-trace","version":1}\n'
                 '{"type":"lane","id":0,"kind":"main","name":"m"}\n'
                 '{"seq":0,"t":1,"lane":9,"kind":"run"}\n'
                 '{"seq":1,"t":2,"lane":0,"kind":"wait"}\n'
                 '{"seq":2,"t":3,"lane":5,"kind":"run"}\n{"seq":3,"t":4,"lane":7,"kind":"log","text":"x"}\n'
                 '{"seq":4,"t":5,"lane":0,"kind":"teleport"}\n'  # an unknown kind: ignored, not counted
                 '{"type":"footer","events":5,"lanes":1}\n')
    tl = load(p)
    assert tl.n_events == 1 and tl.undeclared == 3
    assert main(["summary", str(p), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["undeclared"] == 3
    assert main(["summary", str(p)]) == 0
    assert "3 events on undeclared lanes ignored" in capsys.readouterr().out
    ok = load(write(tmp_path / "ok.jsonl", BACKWARDS))
    assert ok.undeclared == 0
    assert main(["summary", str(tmp_path / "ok.jsonl")]) == 0
    assert "undeclared" not in capsys.readouterr().out
