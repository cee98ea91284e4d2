"""The store's GIL view on hand-built traces: sampled facts refine running thread lanes, never a recorded wait."""

from __future__ import annotations

import numpy as np

from concurview.trace.events import Event, Footer, Header, Lane
from concurview.trace.store import DONE, READY_S, RUNNING, WAITING, Timeline

LANES = [Lane(0, "main", "MainThread", pid=1, tid=1), Lane(1, "thread", "A", 0, 1, 2),
         Lane(2, "thread", "B", 0, 1, 3)]
GIL_ON = "GIL view: on (threads sampled every 1 ms while busy)"


def trace(rows, lanes=LANES) -> Timeline:
    tl = Timeline(Header())
    tl.add(lanes, [Event(i, *row) for i, row in enumerate(rows)])
    tl.finish(Footer(events=len(rows), lanes=len(lanes)))
    return tl


# A and B start, take turns holding the GIL every 10 ns; B sleeps (a recorded wait) and the sampler
# sees it in the kernel meanwhile; A then blocks in an unhooked read.
ROWS = [
    (0, 0, "mark", GIL_ON),
    (0, 0, "run", "program starts"),
    (5, 0, "wait", "join A"),
    (10, 1, "run", "thread starts"),
    (10, 2, "run", "thread starts"),
    (11, 1, "sample", "holds the GIL"),
    (11, 2, "sample", "waiting for the GIL"),
    (21, 1, "sample", "waiting for the GIL"),
    (21, 2, "sample", "holds the GIL"),
    (31, 1, "sample", "holds the GIL"),
    (30, 2, "wait", "sleep 0.1s", "prog.py:5"),
    (31, 2, "sample", "blocked in the kernel: clock_nanosleep()"),  # during a recorded wait: no change
    (41, 1, "sample", "blocked in the kernel: read(fd 0)", "prog.py:9"),
    (50, 2, "run", None, "prog.py:5"),  # back from its sleep: running again
    (60, 1, "sample", "holds the GIL"),
    (70, 1, "close", "returned"),
    (70, 2, "close", "returned"),
    (80, 0, "close", "exit code 0"),
]


def states(tl: Timeline, lane: int, times) -> list[int]:
    return tl.states_at(lane, np.array(times, dtype=np.int64)).tolist()


def test_sampled_facts_refine_a_running_thread_and_never_a_recorded_wait():
    tl = trace(ROWS)
    assert tl.has_samples and tl.gil_view() == GIL_ON
    assert states(tl, 1, [10, 15, 25, 35, 45, 65, 75]) == [RUNNING, RUNNING, READY_S, RUNNING, WAITING, RUNNING, DONE]
    assert states(tl, 2, [10, 15, 25, 35, 55]) == [RUNNING, READY_S, RUNNING, WAITING, RUNNING]
    # The kernel block is a wait named by the call and the program's line.
    state, ev = tl.state_at(1, 45)
    e = tl.event(ev)
    assert (state, e.reason, e.where) == (WAITING, "blocked in the kernel: read(fd 0)", "prog.py:9")
    # The recorded wait stays the recorded one (the sampled clock_nanosleep changes nothing).
    assert tl.event(tl.state_at(2, 35)[1]).reason == "sleep 0.1s"
    start, end, st, _ = tl.lane_intervals(2)
    assert list(zip(start.tolist(), end.tolist(), st.tolist())) == [
        (10, 11, RUNNING), (11, 21, READY_S), (21, 30, RUNNING), (30, 50, WAITING), (50, 70, RUNNING)]


def test_per_lane_gil_numbers_and_most_running_at_once_counts_gil_holders():
    tl = trace(ROWS)
    s = tl.summary()
    a = next(r for r in s["lane_totals"] if r["name"] == "A")
    assert a["gil_wait_s"] * 1e9 == 10 and a["kernel_s"] * 1e9 == 19
    assert round(a["gil_s"] * 1e9) == 11 + 10 + 10  # 10-21, 31-41 and 60-70 (the first ns: the hooks' run)
    assert a["switches"] == 1, "sampled facts are no switches"
    # Both "running" at 10 by the hooks (the sampler looks 1 ns later): never two GIL holders.
    assert s["max_running"]["thread"] == 1
    assert "holding the GIL" in s["max_running_counts"] and s["gil_view"] == GIL_ON


def test_samples_arriving_after_the_hooks_events_give_the_same_picture():
    """The flusher drains the sampler every ~16 ms: its facts reach the store after later hook events."""
    hooks = [r for r in ROWS if r[2] != "sample"]
    samples = [r for r in ROWS if r[2] == "sample"]
    tl = Timeline(Header())
    tl.add(LANES, [Event(i, *r) for i, r in enumerate(hooks[:8])])
    first = tl.lane_states([0, 1, 2], 0, 80, 8)  # drawn before any sample came: the hooks' picture
    assert (first[1, 1:6] == RUNNING).all()
    tl.add([], [Event(len(hooks[:8]) + i, *r) for i, r in enumerate(samples + hooks[8:])])
    tl.finish(Footer())
    assert tl.lane_states([0, 1, 2], 0, 80, 80).tolist() == trace(ROWS).lane_states([0, 1, 2], 0, 80, 80).tolist()
    assert tl.summary()["lane_totals"] == trace(ROWS).summary()["lane_totals"]


def test_a_trace_without_samples_reads_as_before():
    tl = trace([r for r in ROWS if r[2] != "sample"])
    s = tl.summary()
    assert not tl.has_samples and tl.gil_view() == GIL_ON  # the mark alone: nothing sampled
    assert "max_running_counts" not in s and all("gil_s" not in r for r in s["lane_totals"])
    assert s["max_running"]["thread"] == 2
    assert states(tl, 1, [15, 45]) == [RUNNING, RUNNING]


def test_a_sample_on_a_kind_from_the_future_reason_is_ignored():
    """A reason this reader does not know leaves the lane in the hooks' state."""
    tl = trace([(0, 1, "run", "thread starts"), (5, 1, "sample", "napping on a quantum CPU"),
                (10, 1, "close", "returned")], LANES[:2])
    assert states(tl, 1, [7]) == [RUNNING]


def test_a_moment_of_two_gil_holders_shorter_than_the_sampling_is_not_most_running_at_once():
    """The sampler sees each thread at its own look: two holders for less than two sampling periods
    is its lag, not two threads running Python at once."""
    lanes = [Lane(0, "main", "MainThread", pid=1, tid=1), Lane(1, "thread", "a", parent=0, pid=1, tid=2),
             Lane(2, "thread", "b", parent=0, pid=1, tid=3)]
    ms = 1_000_000
    rows = [(0, 0, "run", "program starts"), (1 * ms, 0, "wait", "join"),
            (1 * ms, 1, "run", "thread starts"), (1 * ms, 2, "run", "thread starts"),
            (2 * ms, 1, "sample", "holds the GIL"), (2 * ms, 2, "sample", "waiting for the GIL"),
            (10 * ms, 2, "sample", "holds the GIL"), (11 * ms, 1, "sample", "waiting for the GIL"),  # 1 ms of two
            (20 * ms, 1, "close", "returned"), (20 * ms, 2, "close", "returned")]
    tl = trace(rows, lanes)
    assert tl.max_running(["thread"]) == {"thread": 1}
    longer = [r if r[:2] != (11 * ms, 1) else (15 * ms, 1, "sample", "waiting for the GIL") for r in rows]
    assert trace(sorted(longer), lanes).max_running(["thread"]) == {"thread": 2}, "5 ms of two: both ran"
