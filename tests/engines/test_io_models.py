"""io-models: five reads of one message on one time axis, and the per-call cost of select/poll/epoll (real runs)."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.skipif(sys.platform != "linux", reason="epoll, SIGIO, io_uring and SO_TIMESTAMPNS are Linux")

DELAY = 0.1
MODELS = ("blocking", "non-blocking", "epoll", "signal-driven", "async")
READ_CALL = re.compile(r"\b(recv\w*|read)\(")


@pytest.fixture(scope="module")
def run():
    from recording import record_timeline

    return record_timeline("io-models", delay=DELAY, fds="1,1500", repeat=30)


def lane_events(tl, name):
    lane = next(lane.id for lane in tl.lanes if lane.name == name)
    return [tl.event(i) for i in range(tl.n_events) if tl.event(i).lane == lane]


def model(tl, name):
    """(program lane events, kernel arrival event, kernel copied-out event) of one model."""
    prog = lane_events(tl, f"MainThread · {name}")
    kernel = lane_events(tl, f"kernel buffer · {name}")
    return prog, next(e for e in kernel if e.kind == "ready"), next(e for e in kernel if e.kind == "close")


def test_five_models_one_under_another_in_order(run):
    tl = run
    assert tl.complete and tl.footer.exit_code == 0
    names = [lane.name for lane in tl.lanes]
    expected = [n for m in MODELS for n in (f"MainThread · {m}", f"kernel buffer · {m}")]
    assert [n for n in names if "·" in n] == expected, "a lane pair per model, in the lesson's order"
    spans = []
    for m in MODELS:
        prog, arrived, copied = model(tl, m)
        assert arrived.text == "stamped by the kernel (SO_TIMESTAMPNS)", m
        assert arrived.reason == "64 B arrived" and arrived.t <= copied.t, m
        assert prog[-1].kind == "close" and prog[-1].reason == f"{m}: done, 64 B in the user buffer", m
        spans.append((prog[0].t, prog[-1].t))
        # Every model's data arrives about `delay` after it starts reading.
        assert 0.7 * DELAY * 1e9 <= arrived.t - prog[0].t < 10 * DELAY * 1e9, m
    assert all(a[1] <= b[0] for a, b in zip(spans, spans[1:])), "one after another on the same time axis"


def test_blocking_and_epoll_wait_through_phase_one(run):
    from concurview.trace.store import WAITING

    tl = run
    for m, call in (("blocking", "recv(): blocked"), ("epoll", "epoll: waiting")):
        prog, arrived, copied = model(tl, m)
        wait = next(e for e in prog if e.kind == "wait")
        back = next(e for e in prog if e.kind == "run" and e.t > wait.t)
        assert wait.reason.startswith(call), m
        assert wait.t < arrived.t <= back.t <= copied.t, m
        lane = next(lane.id for lane in tl.lanes if lane.name == f"MainThread · {m}")
        assert tl.state_at(lane, (wait.t + arrived.t) // 2)[0] == WAITING, m
    prog, _, _ = model(tl, "epoll")
    assert any(e.kind == "mark" and e.reason == "recv() copied 64 B" for e in prog), "recv() only copies"


def test_nonblocking_signal_and_async_never_wait(run):
    tl = run
    for m in ("non-blocking", "signal-driven", "async"):
        prog, arrived, _ = model(tl, m)
        assert not [e for e in prog if e.kind == "wait"], f"{m}: the program lane never waits"
    prog, arrived, _ = model(tl, "non-blocking")
    (polled,) = [e for e in prog if e.kind == "mark"]
    assert int(polled.reason.split(" ")[0]) > 0 and polled.t >= arrived.t, "EAGAINs before the data came"
    prog, arrived, _ = model(tl, "signal-driven")
    handler = next(e for e in prog if e.kind == "mark" and e.reason.startswith("SIGIO handler drained"))
    assert handler.reason == "SIGIO handler drained 64 B until EAGAIN" and handler.t >= arrived.t
    work = next(e for e in prog if e.kind == "mark" and e.reason.startswith("did "))
    assert int(work.reason.split(" ")[1]) > 0, "the main thread kept working meanwhile"


def test_async_completion_finds_the_data_already_copied(run):
    tl = run
    prog, arrived, copied = model(tl, "async")
    submit = next(e for e in prog if e.kind == "phase" and e.reason.startswith("submit:"))
    done = next(e for e in prog if e.kind == "phase" and e.reason.startswith("completion:"))
    assert submit.t < arrived.t <= done.t and copied.t <= done.t
    assert done.reason == "completion: 64 B already in the user buffer"
    assert not [e for e in prog if READ_CALL.search(e.reason or "")], "no read call in the program lane"
    assert copied.reason in ("copied out by the kernel (io_uring)", "copied out by glibc's helper thread")


def test_select_poll_epoll_cost_and_select_refusal(run):
    tl = run
    main = lane_events(tl, "MainThread")
    cost = {}
    for e in main:
        m = re.fullmatch(r"(select|poll|epoll)\(\) over (\d+) idle fds: ([\d.]+) µs per call", e.reason or "")
        if m:
            cost[m[1], int(m[2])] = float(m[3])
    (refused,) = [e for e in main if e.kind == "mark" and e.reason.startswith("select() refused")]
    assert refused.reason == "select() refused 1500 fds" and "highest fd" in refused.text
    assert ("select", 1500) not in cost and ("select", 1) in cost
    assert cost["poll", 1500] > 5 * cost["poll", 1], cost
    assert cost["poll", 1500] > 5 * cost["epoll", 1500], cost
    assert cost["epoll", 1500] < 10 * cost["epoll", 1] + 5, "epoll stays flat"
    log = "\n".join(e.text for e in tl.logs() if e.kind == "log")
    assert re.search(r"^\s+1500\s+refused\s+[\d.]+\s+[\d.]+\s+select: fd \d+ >= 1024$", log, re.M), log


def test_bad_fds_is_a_one_line_error_with_status_2(tmp_path):
    src = Path(__file__).parents[2] / "scenarios"
    program = tmp_path / "io_models.py"
    program.write_text((src / "io_models.py").read_text().replace('"fds": "1,100,1000,4000"', '"fds": "1,lots"'))
    out = subprocess.run([sys.executable, str(program)], capture_output=True, text=True, timeout=30,
                         env={"PYTHONPATH": str(src), "PATH": "/usr/bin:/bin"})
    assert out.returncode == 2
    assert out.stderr.strip() == "io-models: fds must be comma-separated counts between 1 and 60000, not '1,lots'"
