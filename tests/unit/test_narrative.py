"""The step narrative's sentences, one bad sentence of issue #21 each, on hand-built timelines (tests/samples.py)."""

from __future__ import annotations

from samples import LOOP, LOOP_ROWS, build

from concurview.trace.compare import ModelRun, merge
from concurview.trace.events import Event, Footer, Lane
from concurview.trace.narrative import describe_event, explain, format_time, place_at, selected_line
from concurview.trace.states import RUNNING
from concurview.tui.axis import Window, time_ticks

THREADS = [
    Lane(0, "main", "MainThread", pid=1, tid=1),
    Lane(1, "thread", "worker-1", parent=0, pid=1, tid=2),
    Lane(2, "thread", "worker-2", parent=0, pid=1, tid=3),
]


def _switch_of(tl, lane: int, nth: int = 0) -> int:
    ks = [k for k in range(tl.n_switches) if tl.switch(k).lane == lane]
    return ks[nth]


def test_a_cancelled_timer_never_runs_its_function():
    """timer-cancel: the Timer thread starts (its `where` is task's def), waits, is woken by cancel()
    and returns. No step says it runs task, and the source pane has no arrow on `def task`."""
    lanes = [Lane(0, "main", "MainThread", pid=1, tid=1), Lane(1, "timer", "Thread-1", parent=0, pid=1, tid=2)]
    rows = [
        (0, 0, "open", None, None, None, None),
        (1, 0, "run", "program starts", "timer.py:1", None, None),
        (10, 1, "open", None, "timer.py:58", 0, None),
        (11, 0, "wait", "Thread.start", "timer.py:58", None, None),
        (12, 1, "run", "thread starts", "timer.py:51", 0, None),
        (13, 0, "ready", None, None, 1, None),
        (14, 1, "wait", "Timer: wait 0.3s, then call task", None, None, None),
        (15, 0, "run", None, "timer.py:58", 1, None),
        (16, 0, "wait", "sleep 0.15s", "timer.py:60", None, None),
        (30, 0, "run", None, "timer.py:60", None, None),
        (31, 1, "ready", None, None, 0, None),
        (32, 0, "wait", "interpreter exit: joining non-daemon threads", None, None, None),
        (33, 1, "run", None, None, 0, None),
        (34, 1, "close", "returned", None, None, None),
        (35, 0, "run", "threads joined", None, None, None),
        (36, 0, "close", "exit code 0", None, None, None),
    ]
    tl = build(lanes, rows)
    woke = explain(tl, _switch_of(tl, 1, 1))
    assert "Thread-1 runs" not in woke and "returns without calling task" in woke, woke
    start = explain(tl, _switch_of(tl, 1, 0))
    assert "Thread-1 runs" not in start and "Thread-1 starts" in start, start
    for k in range(tl.n_switches):
        p = tl.switch_event(k)
        assert place_at(tl, 1, p)[1] is None, f"an arrow for Thread-1 at step {k + 1}"


def test_events_that_arrived_late_are_told_in_time_order():
    """socket-echo: worker-1's close arrived before worker-2's run but happened after it, and worker-1
    kept running meanwhile: worker-2's step is no hand-off from worker-1, and says nobody finished."""
    rows = [
        (0, 0, "run", "program starts", "x.py:1", None, None),
        (5, 1, "run", None, "x.py:5", 0, None),
        (6, 2, "run", None, "x.py:9", 0, None),
        (20, 2, "wait", "sleep 1s", "x.py:10", None, None),
        (50, 1, "close", "returned", "x.py:7", None, None),  # arrived early (another thread's buffer)
        (25, 2, "run", None, "x.py:10", None, None),
        (30, 1, "log", "stdout", None, None, "send"),
        (40, 1, "wait", "sleep 0.001s", "x.py:6", None, None),
        (45, 1, "run", None, "x.py:6", None, None),
    ]
    tl = build(THREADS, rows)
    text = explain(tl, _switch_of(tl, 2, 1))
    assert "->" not in text and "finished" not in text, text
    assert text.endswith("worker-2 resumes after 5 ns: it waited (sleep 1s at x.py:10); worker-2 runs at x.py:10")
    close = next(i for i in range(tl.n_events) if tl.event_kind(i) == "close")
    assert "worker-1 finished (returned at x.py:7)" in describe_event(tl, close)


def test_finished_only_for_a_lane_with_nothing_after():
    """A close that is not the lane's last change (a damaged or merged trace) is not `finished`."""
    rows = [
        (0, 0, "run", "program starts", None, None, None),
        (5, 1, "run", None, None, 0, None),
        (6, 1, "close", "returned", None, None, None),
        (8, 1, "run", None, None, None, None),
        (9, 1, "wait", "sleep 1s", None, None, None),
    ]
    tl = build(THREADS, rows)
    close = next(i for i in range(tl.n_events) if tl.event_kind(i) == "close")
    assert "finished" not in describe_event(tl, close)


def test_a_wait_long_ago_is_not_a_hand_off():
    """threadpool-shutdown #11: a worker back from its own sleep is not handed its turn by MainThread,
    which had been waiting in shutdown() for a long time already."""
    rows = [
        (0, 0, "run", "program starts", "pool.py:1", None, None),
        (10, 1, "run", "task('a')", "pool.py:9", 0, None),
        (11, 1, "wait", "sleep 0.2s", "pool.py:12", None, None),
        (60, 0, "wait", "shutdown(wait=True): join worker-1", "pool.py:20", None, None),
        (210, 1, "run", None, "pool.py:12", None, None),
    ]
    tl = build(THREADS, rows)
    text = explain(tl, _switch_of(tl, 1, 1))
    assert "MainThread" not in text, text
    assert "worker-1 resumes after 199 ns: it waited (sleep 0.2s at pool.py:12)" in text


def test_a_hand_off_between_threads_needs_the_waker_to_stop():
    """MainThread starts a thread and waits for it: a real hand-off (`A -> B`); starting one and going
    on running is not."""
    rows = [
        (0, 0, "run", "program starts", "m.py:1", None, None),
        (1, 1, "open", None, "m.py:3", 0, None),
        (2, 0, "wait", "Thread.start", "m.py:3", None, None),
        (3, 1, "run", "thread starts", None, 0, None),
        (4, 2, "open", None, "m.py:4", 0, None),
        (5, 2, "run", "thread starts", None, 0, None),
    ]
    tl = build(THREADS, rows)
    assert "MainThread -> worker-1: MainThread waits (Thread.start at m.py:3); worker-1 runs" \
        in explain(tl, _switch_of(tl, 1))
    assert "->" not in explain(tl, _switch_of(tl, 2))  # MainThread waits still, but did not start it running


def test_the_kernel_and_the_peer_are_not_threads():
    """io-signal: the kernel buffer and the peer are told as what they are: no `kernel buffer -> peer`,
    no `kernel buffer waits`, no `peer runs`."""
    lanes = [
        Lane(0, "main", "MainThread", pid=1, tid=1),
        Lane(1, "kernel", "kernel buffer", parent=0),
        Lane(2, "peer", "peer", parent=0),
    ]
    rows = [
        (0, 0, "run", "program starts", "io.py:1", None, None),
        (1, 0, "wait", "signal.pause()", "io.py:40", None, None),
        (2, 1, "open", None, None, None, None),
        (2, 1, "wait", "empty: no data yet", None, None, None),
        (3, 1, "run", "data arrived", None, None, None),
        (4, 1, "close", "copied out by recv()", "io.py:49", None, None),
        (5, 2, "run", "sends 64 B", "io.py:91", None, None),
        (6, 0, "run", "SIGIO", "io.py:49", None, None),
    ]
    tl = build(lanes, rows)
    peer = explain(tl, _switch_of(tl, 2))
    assert "->" not in peer and "peer runs" not in peer and peer.endswith("the peer: sends 64 B at io.py:91"), peer
    kernel = explain(tl, _switch_of(tl, 1))
    assert kernel.endswith("the kernel (kernel buffer): data arrived"), kernel
    wait = next(i for i in range(tl.n_events) if tl.event_kind(i) == "wait" and tl.event_lane(i) == 1)
    assert "kernel buffer waits" not in describe_event(tl, wait)


def test_the_selected_line_says_what_the_thread_runs_now():
    """asyncio: MainThread's selected line while a task runs on it names the task, not `program starts`."""
    tl = build(LOOP, LOOP_ROWS)
    k = _switch_of(tl, 1)
    p = tl.switch_event(k)
    for line in (selected_line(tl, 0, tl.event_time(p)), selected_line(tl, 0, tl.event_time(p), p)):
        assert "program starts" not in line and "running task (a task on this thread) at demo.py:5" in line, line
    # The loop's own arrow would sit on line 1 (`program starts`): none while the task runs.
    assert place_at(tl, 0, p) == (RUNNING, None)
    assert place_at(tl, 1, p) == (RUNNING, "demo.py:5")


def test_one_time_format_picks_its_unit_after_rounding():
    assert format_time(999_960_000) == "1.000 s"  # never "1000.0 ms"
    assert format_time(999_700) == "1.0 ms"  # never "1000 µs"
    assert format_time(2_003_456_789) == "2.003 s"
    assert format_time(41_234_567) == "41.2 ms"
    assert format_time(850_400) == "850 µs"
    assert format_time(120) == "120 ns"


def test_ruler_labels_are_round():
    """`┬1.2s`, never `┬1.21226s` (deep zoom) or `┬0.1ns` (a step under the clock's unit)."""
    for window, width in ((Window(0, 2e9), 100), (Window(1.212255e9, 1.212355e9), 100), (Window(0, 5), 100),
                          (Window(1.2e9, 1.3e9), 40)):
        labels = [label for _c, label in time_ticks(window, width)]
        assert labels, window
        for label in labels:
            digits = label.lstrip("+-").rstrip("sµmn").replace(".", "").lstrip("0")
            assert len(digits) <= 5 and not label.endswith(".1ns"), (window, labels)
        assert not any("." in x and x.endswith("ns") for x in labels)
    assert "1.2s" in [x for _c, x in time_ticks(Window(0, 2e9), 100)]
    deep = [x for _c, x in time_ticks(Window(1.212255e9, 1.212355e9), 100)]
    assert "1.21226s" not in deep and sum(not x.startswith(("+", "-")) for x in deep) == 1, deep


def test_compare_closes_each_run_s_lanes_at_its_end():
    """compare: the gevent run's Hub (never closed by the program) ends with its 1 s run, so the
    stacked timeline does not count it waiting until the 4 s run's end."""
    def run(model: str, end: int, hub: bool) -> ModelRun:
        lanes = [Lane(0, "main", "MainThread", pid=1, tid=1)] + ([Lane(1, "hub", "Hub", 0, 1, 1)] if hub else [])
        events = [Event(0, 0, 0, "run", "program starts"), Event(1, end, 0, "close", "exit code 0")]
        if hub:
            events[1:1] = [Event(2, 10, 1, "run"), Event(3, 20, 1, "wait", "event loop idle: epoll")]
        return ModelRun(model, lanes, events, Footer(duration=end), 0.0, 0.0)

    tl = merge([run("gevent", 1_000_000_000, True), run("sequential", 4_400_000_000, False)], {})
    hub = next(lane.id for lane in tl.lanes if lane.name == "gevent · Hub")
    waiting = next(r for r in tl.summary()["lane_totals"] if r["id"] == hub)["waiting_s"]
    assert waiting < 1.0, waiting
