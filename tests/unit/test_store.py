"""The timeline store on hand-built traces: lane states per cell, switches and their explanations, summaries."""

from __future__ import annotations

import pytest

from samples import LOOP, LOOP_ROWS, build

from concurview.trace.events import Event, Footer, Header, Lane
from concurview.trace.narrative import explain, format_time
from concurview.trace.store import DONE, NONE, READY_S, RUNNING, WAITING, Timeline, load

GLYPH = {NONE: ".", RUNNING: "R", READY_S: "r", WAITING: "w", DONE: "d"}


def draw(tl, t0, t1, width, lanes=None):
    lanes = range(len(tl.lanes)) if lanes is None else lanes
    return ["".join(GLYPH[int(s)] for s in row) for row in tl.lane_states(lanes, t0, t1, width)]


def test_lane_states_one_cell_per_10ns():
    tl = build(LOOP, LOOP_ROWS)
    assert draw(tl, 0, 110, 11) == [
        "RRRRwwRwwRd",
        ".rRwwwwwwRd",
        ".rrRwwRdddd",
    ]


def test_a_cell_shows_its_dominant_state():
    tl = build(LOOP, LOOP_ROWS)
    # Two cells of 55 ns. task: 10 none, 10 ready, 10 running, 25 waiting -> waiting.
    # task2: 10 none, 20 ready, 10 running, 15 waiting -> ready; then 5 w, 10 R, 40 done -> done.
    assert draw(tl, 0, 110, 2, lanes=[1, 2]) == ["ww", "rd"]


def test_cells_after_the_end_and_before_the_start():
    tl = build(LOOP, LOOP_ROWS)
    assert draw(tl, 100, 300, 4, lanes=[0]) == ["dddd"]
    assert draw(tl, -40, 0, 2, lanes=[0]) == [".."]
    live = build(LOOP, LOOP_ROWS[:8], footer=None)  # task2 waiting when the data stops
    assert draw(live, 0, 80, 8, lanes=[2]) == [".rrR...."]  # nothing known after the last event
    now = live.lane_states([2], 0, 80, 8, t_now=60)  # live: the state holds until now
    assert "".join(GLYPH[int(x)] for x in now[0]) == ".rrRww.."


def test_state_at_gives_the_event_that_caused_it():
    tl = build(LOOP, LOOP_ROWS)
    state, ev = tl.state_at(1, 50)
    assert state == WAITING and tl.event(ev).reason == "await sleep(3)"
    assert tl.state_at(1, 5) == (NONE, None)


def test_switches_are_run_events_in_order():
    tl = build(LOOP, LOOP_ROWS)
    assert tl.n_switches == 7
    assert [tl.lanes[tl.switch(k).lane].name for k in range(7)] == [
        "MainThread", "task", "task2", "MainThread", "task2", "MainThread", "task"]
    assert tl.switch_index_at(65) == 4 and tl.switch_index_at(-1) == -1
    with pytest.raises(IndexError):
        tl.switch(7)


def test_explanations_name_who_stopped_why_and_where():
    tl = build(LOOP, LOOP_ROWS)
    assert explain(tl, 0) == "#1/7  10 ns  MainThread runs (program starts) at demo.py:1".replace("10 ns", "0")
    # The loop keeps running underneath its task: a dispatch, not a hand-off (no arrow).
    assert explain(tl, 1) == "#2/7  20 ns  MainThread hands the thread to task; task runs at demo.py:5"
    assert explain(tl, 2) == ("#3/7  30 ns  task -> task2: task waits (await sleep(3) at demo.py:7); "
                             "task2 runs at demo.py:10")
    assert explain(tl, 3) == ("#4/7  60 ns  MainThread resumes after 20 ns: it waited (event loop idle: epoll at "
                             "demo.py:20); MainThread runs (epoll timed out)")
    assert explain(tl, 4).startswith("#5/7  60 ns  MainThread hands the thread to task2")


def test_threads_compete_in_their_process_only():
    lanes = [
        Lane(0, "main", "MainThread", pid=1, tid=1),
        Lane(1, "thread", "worker-0", parent=0, pid=1, tid=2),
        Lane(2, "thread", "worker-1", parent=0, pid=1, tid=3),
        Lane(3, "process", "other", pid=2, tid=9),
    ]
    rows = [
        (0, 0, "run", None, None, None, None),
        (1, 1, "run", "task('a')", "pool.py:9", None, None),
        (2, 2, "run", "task('b')", "pool.py:9", None, None),
        (3, 2, "wait", "sleep 1.0s", "pool.py:12", None, None),
        (4, 3, "wait", "sleep 5.0s", "w.py:1", None, None),
        (5, 3, "run", None, None, None, None),
        (6, 1, "run", "task('c')", "pool.py:9", None, None),
    ]
    tl = build(lanes, rows)
    # A thread starting while others run: nobody had to stop (the GIL hand-off is invisible).
    assert explain(tl, 1) == "#2/5  1 ns  worker-0 runs (task('a')) at pool.py:9"
    # The other process's wait is not this process's business; nor is worker-1's: worker-0 never
    # stopped (it was running since 1 ns), so nobody handed it a turn.
    assert explain(tl, 4) == "#5/5  6 ns  worker-0 runs (task('c')) at pool.py:9"


def test_summary_totals_and_most_running_at_once():
    lanes = [Lane(i, "thread", f"w{i}", pid=1, tid=i) for i in range(4)]
    rows = []
    # Four threads; at most three overlap: w3 starts exactly when w0 stops.
    for lane, (start, stop) in enumerate([(0, 10), (2, 12), (4, 14), (10, 20)]):
        rows += [(start, lane, "run", None, None, None, None), (stop, lane, "close", None, None, None, None)]
    rows.sort()
    tl = build(lanes, rows, Footer(exit_code=0))
    s = tl.summary()
    assert s["max_running"] == {"thread": 3}
    assert s["switches"] == 4 and s["lanes"] == 4 and s["events"] == 8
    assert [r["running_s"] * 1e9 for r in s["lane_totals"]] == pytest.approx([10, 10, 10, 10])
    assert s["duration_s"] * 1e9 == 20 and s["complete"] and s["exit_code"] == 0


def test_incomplete_and_truncated_are_reported():
    tl = build(LOOP, LOOP_ROWS, footer=Footer(complete=False, reason="timeout after 5 s"))
    assert not tl.complete and tl.summary()["incomplete_reason"] == "timeout after 5 s"
    tl = build(LOOP, LOOP_ROWS, footer=None)
    assert tl.summary()["incomplete_reason"] == "no footer: the run did not finish"


def test_unknown_kinds_and_undeclared_lanes_are_skipped():
    tl = build(LOOP[:1], [(0, 0, "run", None, None, None, None), (1, 0, "teleport", None, None, None, None),
                          (2, 5, "run", None, None, None, None)])
    assert tl.n_events == 1 and tl.n_switches == 1


def test_lanes_must_be_dense():
    tl = Timeline()
    with pytest.raises(ValueError, match="dense"):
        tl.add([Lane(3, "main", "x")], [])


def test_growing_while_live_keeps_answers_consistent():
    tl = Timeline()
    tl.add(LOOP, [])
    for i, row in enumerate(LOOP_ROWS):
        tl.add([], [Event(i, *row)])
        assert tl.n_events == i + 1
    assert draw(tl, 0, 110, 11)[0] == "RRRRwwRwwRd"


def test_strings_are_interned():
    rows = [(i, 0, "log", "stdout", None, None, "same line") for i in range(1000)]
    tl = build(LOOP[:1], rows)
    assert len(tl._details) == 1 and len(tl.strings) == 3  # None, 'stdout', 'same line'
    assert tl.event_text(999) == "same line" and tl.event(500).reason == "stdout"


@pytest.mark.parametrize("ns, text", [(0, "0"), (850, "850 ns"), (41_200_000, "41.2 ms"),
                                      (2_003_000_000, "2.003 s"), (12_345, "12 µs")])
def test_format_time(ns, text):
    assert format_time(ns) == text


def test_switches_are_in_time_order_even_when_reported_late():
    lanes = [Lane(0, "main", "m", pid=1, tid=1), Lane(1, "kernel", "k", pid=1, tid=1)]
    tl = Timeline()
    tl.add(lanes, [Event(0, 10, 0, "run"), Event(1, 50, 0, "wait")])
    tl.add([], [Event(2, 30, 1, "run", "reported late"), Event(3, 60, 0, "run")])
    assert [tl.switch(k).t for k in range(tl.n_switches)] == [10, 30, 60]
    assert tl.switch(1).reason == "reported late" and tl.switch_index_at(40) == 1


def test_a_big_file_loads_into_columns_sized_once(tmp_path):
    """load() sizes the columns from the first batch (bytes per event x file size): the same
    timeline as adding the events by hand, with little room to spare."""
    from concurview.trace.tracefile import TraceWriter

    lanes = [Lane(0, "main", "MainThread", pid=1, tid=1), Lane(1, "thread", "worker", parent=0, pid=1, tid=2)]
    rows = [(i * 10, i % 2, ("run", "wait")[(i // 2) % 2], None if i % 4 < 2 else "sleep", f"p.py:{i % 7}",
             None, None) for i in range(60_000)]
    events = [Event(i, *row) for i, row in enumerate(rows)]
    w = TraceWriter(tmp_path / "big.jsonl", Header(scenario="big"))
    w.lanes(lanes)
    w.events(events)
    w.close(Footer(events=len(events)))
    loaded = load(tmp_path / "big.jsonl")
    by_hand = build(lanes, rows)
    assert loaded.n_events == by_hand.n_events == 60_000 and loaded.n_switches == by_hand.n_switches
    assert (loaded.lane_states([0, 1], 0, 600_000, 97) == by_hand.lane_states([0, 1], 0, 600_000, 97)).all()
    assert loaded.event(59_999) == by_hand.event(59_999)
    assert loaded.memory_bytes() <= 1.15 * by_hand.memory_bytes()
