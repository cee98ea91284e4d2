"""Blocking the thread in the store (state, starved lanes, jobs in flight) and the lints, on hand-built timelines."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from samples import build

from concurview.trace.events import Event, Footer, Lane
from concurview.trace import lints as lints_module
from concurview.trace.lints import Lint, lints
from concurview.trace.narrative import describe_event, explain
from concurview.trace.store import (
    BLOCKING, DONE, NONE, READY_S, RUNNING, WAITING, Timeline, lane_states_many, load,
)

TRACES = Path(__file__).parent.parent / "traces"
S = 1_000_000_000  # ns
GLYPH = {NONE: ".", RUNNING: "R", READY_S: "r", WAITING: "w", DONE: "d", BLOCKING: "B"}

LANES = [
    Lane(0, "main", "MainThread", pid=1, tid=7),
    Lane(1, "task", "good", parent=0, pid=1, tid=7),
    Lane(2, "task", "bad", parent=0, pid=1, tid=7),
    Lane(3, "task", "reader", parent=0, pid=1, tid=7),
    Lane(4, "thread", "worker", parent=0, pid=1, tid=8),  # another thread: never starved by bad
]
# good sleeps 0.1 s at 0; bad blocks the loop in time.sleep(1) from 0.05 to 1.05; reader waits on a
# socket (no deadline known); worker sleeps in its own thread.
ROWS = [
    (0, 0, "open", None, None, None, None),
    (0, 0, "run", "program starts", "demo.py:1", None, None),
    (0, 1, "open", None, None, 0, None),
    (0, 2, "open", None, None, 0, None),
    (0, 3, "open", None, None, 0, None),
    (0, 4, "open", None, None, 0, None),
    (0, 4, "run", None, "demo.py:30", 0, None),
    (1, 4, "wait", "sleep 2s", "demo.py:31", None, None),
    (10, 1, "run", None, "demo.py:5", 0, None),
    (20, 1, "wait", "await sleep(0.1)", "demo.py:6", None, None),
    (30, 3, "run", None, "demo.py:15", 0, None),
    (40, 3, "wait", "await sock_recv()", "demo.py:16", None, None),
    (S // 20 - 10, 2, "run", None, "demo.py:9", 0, None),
    (S // 20, 2, "block", "sleep 1s", "demo.py:10", None, None),
    (S + S // 20, 2, "run", None, "demo.py:10", None, None),
    (S + S // 20 + 10, 2, "close", "returned", None, None, None),
    (S + S // 10, 1, "ready", None, None, 0, None),
    (S + S // 10 + 10, 1, "run", None, "demo.py:6", 0, None),
    (S + S // 10 + 20, 1, "close", "returned", None, None, None),
    (S + S // 5, 3, "ready", None, None, 0, None),
    (S + S // 5 + 10, 3, "close", "returned", None, None, None),
    (2 * S + 1, 4, "run", None, "demo.py:31", None, None),
    (2 * S + 2, 4, "close", "returned", None, None, None),
    (2 * S + 5, 0, "close", "exit code 0", None, None, None),
]


def draw(tl, t0, t1, width):
    return ["".join(GLYPH[int(s)] for s in row) for row in tl.lane_states(range(len(tl.lanes)), t0, t1, width)]


def test_a_block_is_its_own_state_and_starves_a_task_past_its_deadline():
    tl = build(LANES, ROWS)
    # 12 cells of 0.1 s: bad blocks from 0.05 to 1.05; good is ready from 0.1 (its deadline), not 1.1.
    rows = draw(tl, 0, 12 * S // 10, 12)
    assert rows[2] == "BBBBBBBBBBBd"
    assert rows[1] == "wrrrrrrrrrrd"
    assert rows[3] == "wwwwwwwwwwww", "a socket wait has no deadline: it stays waiting"
    assert rows[4] == "wwwwwwwwwwww", "another thread's lane is not starved"
    # The frame path agrees with the per-lane one, extras and the blocking state included.
    many = lane_states_many(tl, list(range(len(tl.lanes))), 0, 12 * S // 10, 12)
    assert (many == tl.lane_states(range(len(tl.lanes)), 0, 12 * S // 10, 12)).all()
    # good's ready stretch belongs to its wait: the state at the cursor names the sleep it was in.
    state, ev = tl.state_at(1, S // 2)
    assert state == READY_S and tl.event(ev).reason == "await sleep(0.1)"
    assert tl.where_at(1, S // 2) == (READY_S, "demo.py:6")
    assert tl.block_spans() == [(2, 13, S // 20, S + S // 20)]
    assert tl.starved(2, S // 20, S + S // 20) == [1]
    assert tl.blocker_at(1, S // 2) == 2 and tl.blocker_at(1, S + S // 10) is None
    totals = {r["name"]: r for r in tl.summary()["lane_totals"]}
    assert abs(totals["bad"]["blocking_s"] - 1.0) < 1e-6
    assert abs(totals["good"]["ready_s"] - 1.0) < 0.001


def test_the_step_after_a_block_says_what_it_blocked_and_who_was_ready():
    tl = build(LANES, ROWS)
    k = tl.switch_index_at(S + S // 20)
    assert tl.switch(k).lane == 2
    text = explain(tl, k)
    assert "bad resumes after 1.000 s: time.sleep(1) at demo.py:10 blocked the event loop (good was ready)" in text
    assert "blocks the event loop" in describe_event(tl, 13)


def test_the_lint_names_the_blocker_the_time_and_who_was_ready():
    tl = build(LANES, ROWS)
    (lint,) = lints(tl)
    assert lint == Lint("blocking-call", lint.text, 2, S // 20, 13)
    assert lint.text.startswith("bad blocked the event loop for 1.000 s while good was ready: "
                                "time.sleep(1) at demo.py:10")
    assert lint.text.endswith("(asyncio's debug mode warns too: a step over 0.1 s)")


def test_short_blocks_are_not_worth_a_lint():
    # bad's block ends after half of MIN_BLOCK_NS (a contended lock for a moment): drawn, not warned about.
    end = S // 20 + lints_module.MIN_BLOCK_NS // 2
    rows = [(end, *r[1:]) if r[0] == S + S // 20 else r for r in ROWS]
    tl = build(LANES, rows)
    assert tl.block_spans() == [(2, 13, S // 20, end)] and not lints(tl)


def test_rules_are_a_list_of_functions(monkeypatch):
    tl = build(LANES, ROWS)

    def gil(timeline):
        return [Lint("gil", "spin-0 and spin-1 are CPU-bound: they shared the GIL")]

    monkeypatch.setattr(lints_module, "RULES", [*lints_module.RULES, gil])
    tl._lints = None  # a fresh computation with the rule added
    assert [x.rule for x in lints(tl)] == ["blocking-call", "gil"]


def test_a_block_still_open_when_the_data_stops_ends_at_the_end():
    rows = [r for r in ROWS if r[0] <= S // 2] + [(S // 2, 4, "log", "stdout", None, None, "still sleeping")]
    tl = Timeline()
    tl.add(LANES, [Event(i, *r) for i, r in enumerate(rows)])
    assert tl.block_spans() == [] and tl.blocker_at(1, S // 2) == 2, "live: the block is open"
    assert tl.state_at(2, S // 2)[0] == BLOCKING
    tl.finish(None)
    assert tl.block_spans() == [(2, 13, S // 20, S // 2)]
    assert tl.state_at(1, S // 2 - 1)[0] == READY_S


def test_gevent_hub_is_ready_while_a_greenlet_blocks_the_thread():
    lanes = [Lane(0, "main", "MainThread", pid=1, tid=7), Lane(1, "hub", "Hub", 0, 1, 7),
             Lane(2, "greenlet", "eat", 0, 1, 7)]
    rows = [
        (0, 0, "open", None, None, None, None), (0, 0, "run", None, None, None, None),
        (10, 1, "open", None, None, 0, None), (10, 0, "wait", "e.join()", None, None, None),
        (10, 1, "run", None, None, 0, None), (20, 2, "open", None, None, 0, None),
        (20, 1, "wait", "switch → eat", None, None, None), (20, 2, "run", None, "g.py:3", 1, None),
        (30, 2, "block", "sleep 1.0s", "g.py:4", None, None), (30 + S, 2, "run", None, "g.py:4", None, None),
        (40 + S, 2, "close", "returned", None, None, None), (40 + S, 1, "run", None, None, 2, None),
    ]
    tl = build(lanes, rows)
    assert draw(tl, 30, 30 + S, 4)[1:] == ["rrrr", "BBBB"]
    assert tl.state_at(1, 35 + S)[0] == WAITING, "after the block the hub waits for eat to switch back"
    (lint,) = lints(tl)
    assert lint.text == ("eat blocked the gevent hub for 1.000 s while Hub was ready: time.sleep(1.0) at g.py:4; "
                         "time.sleep is not patched (monkey.patch_all() not called)")


def test_jobs_in_flight_count_sleeping_workers_not_idle_ones():
    lanes = [Lane(0, "main", "MainThread", pid=1, tid=1)] + [Lane(i, "thread", f"w{i}", 0, 1, 1 + i) for i in (1, 2)]
    rows = [(0, 0, "open", None, None, None, None), (0, 0, "run", None, None, None, None)]
    for w in (1, 2):
        rows += [(w, w, "open", None, None, 0, None), (2 * w, w, "run", None, None, None, None),
                 (2 * w + 1, w, "wait", "waiting for work", None, None, None),
                 (10 * w, w, "run", "job()", None, None, None), (10 * w + 1, w, "wait", "sleep 1s", None, None, None),
                 (10 * w + 50, w, "run", None, None, None, None),
                 (10 * w + 51, w, "wait", "waiting for work", None, None, None)]
    rows += [(100, w, "close", None, None, None, None) for w in (1, 2)] + [(101, 0, "close", None, None, None, None)]
    tl = build(lanes, sorted(rows, key=lambda r: r[0]))
    assert tl.max_running(["thread"]) == {"thread": 1}, "they sleep: at most one runs at once"
    assert tl.max_in_flight(["thread"]) == {"thread": 2}, "both are in the middle of a job"
    mask = tl.in_flight_mask(1)
    assert mask.tolist() == [False, True, False, True, True, True, False, False]  # open, start, idle, job...


def test_old_traces_open_with_no_block_and_no_lint():
    tl = load(TRACES / "asyncio-tasks.jsonl")  # recorded before `block` existed
    assert tl.complete and not tl.block_spans() and not lints(tl)
    assert not np.isin(np.concatenate([tl.lane_intervals(x.id)[2] for x in tl.lanes]), [BLOCKING]).any()
    assert tl.summary()["max_in_flight"] == {"main": 1, "task": 2}


def test_a_block_kind_reads_back_from_a_file(tmp_path):
    from concurview.trace.tracefile import TraceWriter
    from concurview.trace.events import Header

    path = tmp_path / "t.jsonl"
    w = TraceWriter(path, Header())
    w.lanes(LANES)
    w.events([Event(i, *r) for i, r in enumerate(ROWS)])
    w.close(Footer())
    tl = load(path)
    assert [tl.event(int(i)).reason for i in tl.events_of_kind("block")] == ["sleep 1s"]
    assert len(lints(tl)) == 1
