"""IO models on real loopback sockets: which phase of a read blocks the program (tolerant bounds, real kernel stamps)."""

from __future__ import annotations

import sys

import pytest

pytestmark = pytest.mark.skipif(sys.platform != "linux", reason="SO_TIMESTAMPNS and the IO models are Linux")

DELAY = 0.15


def lane_events(tl, name):
    lane = next(lane.id for lane in tl.lanes if lane.name == name)
    return [tl.event(i) for i in range(tl.n_events) if tl.event(i).lane == lane]


def test_blocking_recv_waits_for_the_whole_delay_then_copies(record):
    tl = record("io-blocking", delay=DELAY, size=64)
    assert tl.complete and tl.footer.exit_code == 0
    main = lane_events(tl, "MainThread")
    wait = next(e for e in main if e.kind == "wait" and e.reason.startswith("recv(): blocked"))
    woken = next(e for e in main if e.kind == "run" and e.reason.startswith("woken"))
    kernel = lane_events(tl, "kernel buffer")
    arrived = next(e for e in kernel if e.kind == "ready")
    copied = next(e for e in kernel if e.kind == "close")
    (sent,) = [e for e in lane_events(tl, "peer") if e.kind == "run"]
    # Phase 1: from the call until the kernel has the data - about the peer's delay.
    assert 0.9 * DELAY * 1e9 <= woken.t - wait.t < 10 * DELAY * 1e9
    assert woken.t == arrived.t, "the program is woken when the kernel stamps the arrival"
    # The data left the peer before the kernel stamped its arrival; the copy comes last.
    assert sent.t <= arrived.t < copied.t
    assert copied.t - arrived.t < DELAY * 1e9, "phase 2 is short next to phase 1"
    assert arrived.text == "stamped by the kernel (SO_TIMESTAMPNS)" and sent.text == "reported by the peer"
    assert wait.where.startswith("io_blocking.py:"), "where is the scenario line, not the probe helper"
    from concurview.trace.store import WAITING

    state, _ = tl.state_at(0, (wait.t + woken.t) // 2)
    assert state == WAITING, "the diagram shows the program waiting through phase 1"


def test_large_message_copy_takes_real_time(record):
    tl = record("io-blocking", delay=0.05, size=1 << 20)
    kernel = lane_events(tl, "kernel buffer")
    arrived = next(e for e in kernel if e.kind == "ready")
    copied = next(e for e in kernel if e.kind == "close")
    assert arrived.reason == f"{1 << 20} B arrived"
    assert copied.t > arrived.t
    log = [e.text for e in tl.logs() if e.kind == "log"]
    assert any("copy 1048576 B" in line for line in log)


def test_nonblocking_polls_with_eagain_and_never_waits(record):
    tl = record("io-nonblocking", delay=DELAY, size=64, report_every=0.05)
    assert tl.complete and tl.footer.exit_code == 0
    main = lane_events(tl, "MainThread")
    marks = [e for e in main if e.kind == "mark"]
    counts = [int(m.reason.split(" ")[0]) for m in marks if m.reason.endswith("× EAGAIN")]
    assert len(counts) >= 2 and all(c > 0 for c in counts), "EAGAINs counted per interval, not one event each"
    (total,) = [m for m in marks if "in all" in m.reason]
    assert int(total.reason.split(" ")[0]) >= sum(counts) > 0 and "CPU spent polling" in total.text
    assert not [e for e in main if e.kind == "wait"], "the program lane never blocks"
    kernel = lane_events(tl, "kernel buffer")
    arrived = next(e for e in kernel if e.kind == "ready")
    copied = next(e for e in kernel if e.kind == "close")
    assert arrived.text == "stamped by the kernel (SO_TIMESTAMPNS)"
    first_mark = min(m.t for m in marks)
    assert first_mark < arrived.t <= copied.t, "the polling started long before the data arrived"


@pytest.mark.parametrize("api", ["select", "poll", "epoll"])
def test_multiplexing_waits_in_the_readiness_call_and_recv_only_copies(record, api):
    tl = record(f"io-{api}", delay=DELAY, idle_fds=10)
    assert tl.complete and tl.footer.exit_code == 0
    main = lane_events(tl, "MainThread")
    wait = next(e for e in main if e.kind == "wait" and e.reason.startswith(f"{api}(): waiting"))
    back = next(e for e in main if e.kind == "run" and e.reason.startswith(f"{api}() returned"))
    copied = next(e for e in main if e.kind == "mark" and e.reason.startswith("recv() copied 64 B"))
    arrived = next(e for e in lane_events(tl, "kernel buffer") if e.kind == "ready")
    assert 0.7 * DELAY * 1e9 <= back.t - wait.t < 10 * DELAY * 1e9, "phase 1 is spent in the readiness call"
    assert arrived.t <= back.t <= copied.t, "it returns after the data arrived; the copy follows"
    assert not [e for e in main if e.kind == "wait" and e.t > back.t], "recv() never waits"


def test_select_refuses_descriptors_past_1024_and_says_so(record):
    tl = record("io-select", delay=0.05, idle_fds=1100)
    assert tl.complete and tl.footer.exit_code == 0, "reported, not crashed"
    (mark,) = [e for e in tl.logs() if e.kind == "log"]
    assert "select() cannot watch 1101 sockets" in mark.text and "1024" in mark.text


def test_per_call_cost_grows_with_idle_descriptors_for_poll_not_epoll(record):
    def cost(api, n):
        tl = record(f"io-{api}", delay=0.02, idle_fds=n)
        (m,) = [e for e in tl.events_of_kind("mark").tolist() if "per call" in (tl.event(e).reason or "")]
        return float(tl.event(m).reason.split(": ")[1].split(" ")[0])

    poll_small, poll_big, epoll_big = cost("poll", 1), cost("poll", 2000), cost("epoll", 2000)
    assert poll_big > 5 * poll_small, (poll_small, poll_big)
    assert poll_big > 5 * epoll_big, (poll_big, epoll_big)


def test_signal_driven_handler_drains_after_arrival_while_main_keeps_running(record):
    tl = record("io-signal", delay=DELAY, size=64)
    assert tl.complete and tl.footer.exit_code == 0
    main = lane_events(tl, "MainThread")
    handler = [e for e in main if e.kind == "mark" and e.reason.startswith("SIGIO handler ran")]
    assert handler and handler[0].reason == "SIGIO handler ran: drained 64 B until EAGAIN"
    arrived = next(e for e in lane_events(tl, "kernel buffer") if e.kind == "ready")
    assert arrived.t <= handler[0].t, "the handler runs after the data reached the kernel"
    waits = [e for e in main if e.kind == "wait"]
    assert not waits or waits[0].t > handler[-1].t, "the main lane never waits for data"


def test_a_long_c_call_defers_the_signal_handler(record):
    tl = record("io-signal", delay=0.3, size=64, long_c_call=True, c_call_ms=120)
    main = lane_events(tl, "MainThread")
    entered = next(e for e in main if e.kind == "mark" and e.reason.startswith("enters a 120 ms C call"))
    returned = next(e for e in main if e.kind == "mark" and e.reason == "C call returned")
    handler = next(e for e in main if e.kind == "mark" and e.reason.startswith("SIGIO handler ran"))
    arrived = next(e for e in lane_events(tl, "kernel buffer") if e.kind == "ready")
    assert entered.t < arrived.t < handler.t <= returned.t, "the data arrived while the main thread was in C"
    # The pending handler runs at the first bytecode after the C call - just before the line that
    # notes the return - and long after the data arrived.
    assert returned.t - handler.t < (handler.t - arrived.t) / 2, (arrived.t, handler.t, returned.t)
