"""Blocking calls the README listed as gaps, on real traced runs: each is a wait named after the call at the program's line."""

from __future__ import annotations

import sys

import pytest

from concurview.trace.store import WAITING, Timeline
from recording import events, record_program

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="epoll, pipes as stdin")

HOLD = 0.3  # seconds each call stays blocked


def waits_of(tl: Timeline, name: str) -> list:
    (lane,) = [lane.id for lane in tl.lanes if lane.name == name]
    return [e for e in events(tl, "wait") if e.lane == lane]


def check_wait(tl: Timeline, name: str, reason: str, where: str) -> None:
    waits = waits_of(tl, name)
    assert [(e.reason, e.where) for e in waits] == [(reason, where)], waits
    (lane,) = {e.lane for e in waits}
    assert tl.state_at(lane, waits[0].t + int(HOLD / 2 * 1e9))[0] == WAITING


def test_a_thread_blocked_in_stdin_readline_on_a_pipe_is_waiting(tmp_path):
    tl = record_program(tmp_path, f"""
        import os, sys, threading, time

        r, w = os.pipe()
        os.dup2(r, 0)

        def reader():
            line = sys.stdin.readline()  # line 8
            print("got", line.strip())

        t = threading.Thread(target=reader, name="reader")
        t.start()
        time.sleep({HOLD})
        os.write(w, b"hello\\n")
        t.join()
    """)
    assert tl.complete and tl.footer.exit_code == 0
    check_wait(tl, "reader", "sys.stdin.readline()", "prog.py:8")
    assert [e.text for e in events(tl, "log")] == ["got hello"]


def test_input_os_read_signal_pause_poll_and_epoll_are_waits(tmp_path):
    tl = record_program(tmp_path, f"""
        import os, select, signal, threading, time

        pipes = {{name: os.pipe() for name in ("input", "read", "poll", "epoll")}}
        os.dup2(pipes["input"][0], 0)
        signal.signal(signal.SIGUSR1, lambda *a: None)

        def with_input():
            input()  # line 9

        def with_read():
            os.read(pipes["read"][0], 10)  # line 12

        def with_pause():
            signal.pause()  # line 15

        def with_poll():
            p = select.poll()
            p.register(pipes["poll"][0], select.POLLIN)
            p.poll()  # line 20

        def with_epoll():
            with select.epoll() as ep:
                ep.register(pipes["epoll"][0], select.EPOLLIN)
                ep.poll(5)  # line 25

        threads = [threading.Thread(target=f, name=f.__name__)
                   for f in (with_input, with_read, with_pause, with_poll, with_epoll)]
        for t in threads:
            t.start()
        time.sleep({HOLD})
        for r, w in pipes.values():
            os.write(w, b"x\\n")
        signal.pthread_kill(threads[2].ident, signal.SIGUSR1)
        for t in threads:
            t.join()
        # A read that does not block records nothing: the pipe has a byte left.
        os.write(pipes["read"][1], b"y")
        os.read(pipes["read"][0], 1)
    """)
    assert tl.complete and tl.footer.exit_code == 0, tl.incomplete_reason()
    check_wait(tl, "with_input", "input()", "prog.py:9")
    (read_wait,) = waits_of(tl, "with_read")
    assert read_wait.reason.startswith("os.read(fd ") and read_wait.where == "prog.py:12"
    check_wait(tl, "with_pause", "signal.pause()", "prog.py:15")
    check_wait(tl, "with_poll", "poll.poll (1 fd)", "prog.py:20")
    check_wait(tl, "with_epoll", "epoll.poll (1 fd) (timeout 5s)", "prog.py:25")
    assert not [e for e in events(tl, "wait") if e.lane == 0 and e.reason.startswith("os.read")]
