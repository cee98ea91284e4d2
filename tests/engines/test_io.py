"""IO models on real loopback sockets: which phase of a read blocks the program (tolerant bounds, real kernel stamps)."""

from __future__ import annotations

import sys

import pytest

pytestmark = pytest.mark.skipif(sys.platform != "linux", reason="SO_TIMESTAMPNS and the IO models are Linux")

DELAY = 0.15

from iophases import RUNNING, WAITING, lane_events, lane_id, phases, source_line, states  # noqa: E402


def test_blocking_recv_waits_for_the_whole_delay_then_copies(record):
    tl = record("io-blocking", delay=DELAY, size=64)
    assert tl.complete and tl.footer.exit_code == 0
    p = phases(tl, "kernel buffer")
    main = lane_events(tl, "MainThread")
    wait = next(e for e in main if e.kind == "wait" and e.reason.startswith("recv(): blocked"))
    back = next(e for e in main if e.kind == "run" and e.reason.startswith("recv() returned"))
    (sent,) = [e for e in lane_events(tl, "peer") if e.kind == "run"]
    # Phase 1: from the call until the kernel has the data - about the peer's delay.
    assert wait.t == p.phase1.t and 0.9 * DELAY * 1e9 <= p.arrived.t - wait.t < 10 * DELAY * 1e9
    assert p.phase2.t == p.arrived.t, "phase 2 starts when the kernel stamps the arrival: recv() wakes to copy"
    # The data left the peer before the kernel stamped its arrival; the copy comes last.
    assert sent.t <= p.arrived.t < p.done.t == back.t
    assert p.done.t - p.arrived.t < DELAY * 1e9, "phase 2 is short next to phase 1"
    assert p.arrived.text == "stamped by the kernel (SO_TIMESTAMPNS)" and sent.text == "reported by the peer"
    assert p.program_copies, "phase 2 is done by the program's recv()"
    assert "read.phase1(" in source_line(wait.where), "where is the scenario line, not the helper's"
    assert p.phase2.where == back.where and "sock.recv_into(" in source_line(p.phase2.where), \
        "phase 2 points at the recv_into() line"
    main_id = lane_id(tl, "MainThread")
    assert states(tl, main_id, wait.t, p.arrived.t) == {WAITING}, "the program waits through phase 1"
    assert states(tl, main_id, p.phase2.t, p.done.t) == {WAITING}, "... and through phase 2"


def test_large_message_copy_takes_real_time(record):
    tl = record("io-blocking", delay=0.05, size=1 << 20)
    p = phases(tl, "kernel buffer")
    assert p.arrived.reason == f"{1 << 20} B arrived: phase 1 is over"
    assert p.done.t > p.phase2.t
    log = [e.text for e in tl.logs() if e.kind == "log"]
    assert any("copy 1048576 B (phase 2)" in line for line in log), log


def test_nonblocking_polls_with_eagain_and_never_waits_for_data(record):
    tl = record("io-nonblocking", delay=DELAY, size=64, report_every=0.05)
    assert tl.complete and tl.footer.exit_code == 0
    main = lane_events(tl, "MainThread")
    marks = [e for e in main if e.kind == "mark"]
    counts = [int(m.reason.split(" ")[0]) for m in marks if "× EAGAIN in the last" in m.reason]
    assert len(counts) >= 2 and all(c > 0 for c in counts), "EAGAINs counted per interval, not one event each"
    (total,) = [m for m in marks if "in all" in m.reason]
    assert int(total.reason.split(" ")[0]) >= sum(counts) > 0 and "CPU spent polling" in total.reason
    p = phases(tl, "kernel buffer")
    assert p.arrived.text == "stamped by the kernel (SO_TIMESTAMPNS)"
    first_mark = min(m.t for m in marks)
    assert p.phase1.t < first_mark < p.arrived.t <= p.phase2.t, "the polling started long before the data arrived"
    waits = [e for e in main if e.kind == "wait"]
    assert [w.reason for w in waits] == ["recv(): blocked while the kernel copies 64 B into the user buffer (phase 2)"], \
        "the program never waits for data; only in the recv() that copies"
    assert p.program_copies and waits[0].t == p.phase2.t
    main_id = lane_id(tl, "MainThread")
    assert states(tl, main_id, p.phase1.t, p.arrived.t) == {RUNNING}


@pytest.mark.parametrize("api", ["select", "poll", "epoll"])
def test_multiplexing_waits_in_the_readiness_call_and_recv_only_copies(record, api):
    tl = record(f"io-{api}", delay=DELAY, idle_fds=10)
    assert tl.complete and tl.footer.exit_code == 0
    main = lane_events(tl, "MainThread")
    wait = next(e for e in main if e.kind == "wait" and e.reason.startswith(f"{api}() on 11 sockets: blocked"))
    back = next(e for e in main if e.kind == "run" and e.reason.startswith(f"{api}() returned"))
    p = phases(tl, "kernel buffer")
    assert wait.t == p.phase1.t
    assert 0.7 * DELAY * 1e9 <= back.t - wait.t < 10 * DELAY * 1e9, "phase 1 is spent in the readiness call"
    assert p.arrived.t <= back.t <= p.phase2.t <= p.done.t, "it returns after the data arrived; the copy follows"
    later = [e for e in main if e.kind == "wait" and e.t > back.t]
    assert [e.reason for e in later] == ["recv(): blocked while the kernel copies 64 B into the user buffer (phase 2)"]
    assert p.program_copies and "sock.recv_into(" in source_line(p.phase2.where)
    assert states(tl, lane_id(tl, "MainThread"), p.phase2.t, p.done.t) == {WAITING}


def test_select_refuses_descriptors_past_1024_and_says_so(record):
    tl = record("io-select", delay=0.05, idle_fds=1100)
    assert tl.complete and tl.footer.exit_code == 0, "reported, not crashed"
    (mark,) = [e for e in tl.logs() if e.kind == "log"]
    assert "select() cannot watch 1101 sockets" in mark.text and "1024" in mark.text


def test_per_call_cost_grows_with_idle_descriptors_for_poll_not_epoll(record):
    def cost(api, n):
        tl = record(f"io-{api}", delay=0.02, idle_fds=n)
        (line,) = [e.text for e in tl.logs() if e.kind == "log" and "a call" in e.text]
        return float(line.split(" costs ")[1].split(" ")[0])

    poll_small, poll_big, epoll_big = cost("poll", 1), cost("poll", 2000), cost("epoll", 2000)
    assert poll_big > 5 * poll_small, (poll_small, poll_big)
    assert poll_big > 5 * epoll_big, (poll_big, epoll_big)


def test_signal_driven_handler_drains_after_arrival_while_main_keeps_running(record):
    tl = record("io-signal", delay=DELAY, size=64)
    assert tl.complete and tl.footer.exit_code == 0
    main = lane_events(tl, "MainThread")
    handler = [e for e in main if e.kind == "mark" and e.reason.startswith("SIGIO handler ran")]
    assert handler and handler[0].reason == "SIGIO handler ran: drained 64 B until EAGAIN"
    p = phases(tl, "kernel buffer")
    assert p.arrived.t <= handler[0].t <= p.phase2.t, "the handler runs after the data reached the kernel"
    waits = [e for e in main if e.kind == "wait"]
    assert [w.reason for w in waits] == [
        "recv() in the SIGIO handler: blocked while the kernel copies 64 B into the user buffer (phase 2)"], \
        "the main lane never waits for data, only in the handler's recv() that copies"
    assert p.program_copies and "sock.recv(" in source_line(p.phase2.where), "the handler's recv() line"
    main_id = lane_id(tl, "MainThread")
    assert states(tl, main_id, p.phase1.t, p.arrived.t) == {RUNNING}
    assert states(tl, main_id, p.phase2.t, p.done.t) == {WAITING}


def test_a_long_c_call_defers_the_signal_handler(record):
    tl = record("io-signal", delay=0.3, size=64, long_c_call=True, c_call_ms=120)
    main = lane_events(tl, "MainThread")
    entered = next(e for e in main if e.kind == "mark" and e.reason.startswith("enters a 120 ms C call"))
    returned = next(e for e in main if e.kind == "mark" and e.reason == "C call returned")
    handler = next(e for e in main if e.kind == "mark" and e.reason.startswith("SIGIO handler ran"))
    arrived = phases(tl, "kernel buffer").arrived
    assert entered.t < arrived.t < handler.t <= returned.t, "the data arrived while the main thread was in C"
    # The pending handler runs at the first bytecode after the C call - just before the line that
    # notes the return - and long after the data arrived.
    assert returned.t - handler.t < (handler.t - arrived.t) / 2, (arrived.t, handler.t, returned.t)
