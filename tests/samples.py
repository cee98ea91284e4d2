"""Hand-built timelines shared by the unit tests (on pytest's pythonpath)."""

from __future__ import annotations

from concurview.trace.events import Event, Footer, Header, Lane
from concurview.trace.store import Timeline


def build(lanes, rows, footer=Footer()):
    """rows: (t, lane, kind, reason, where, cause, text) tuples."""
    tl = Timeline(Header(scenario="hand-built"))
    events = [Event(i, *row) for i, row in enumerate(rows)]
    tl.add(lanes, events)
    tl.finish(footer)
    return tl


# An event loop thread with two tasks, like asyncio-tasks, in 10 ns steps.
LOOP = [
    Lane(0, "main", "MainThread", pid=1, tid=7),
    Lane(1, "task", "task", parent=0, pid=1, tid=7),
    Lane(2, "task", "task2", parent=0, pid=1, tid=7),
]
LOOP_ROWS = [
    (0, 0, "open", None, None, None, None),
    (0, 0, "run", "program starts", "demo.py:1", None, None),
    (10, 1, "open", None, "demo.py:20", 0, None),
    (10, 2, "open", None, "demo.py:20", 0, None),
    (20, 1, "run", None, "demo.py:5", 0, None),
    (30, 1, "wait", "await sleep(3)", "demo.py:7", None, None),
    (30, 2, "run", None, "demo.py:10", 0, None),
    (40, 2, "wait", "await sleep(2)", "demo.py:12", None, None),
    (40, 0, "wait", "event loop idle: epoll", "demo.py:20", None, None),
    (60, 0, "run", "epoll timed out", None, None, None),
    (60, 2, "run", None, "demo.py:12", 0, None),
    (70, 2, "close", "returned", "demo.py:12", None, None),
    (70, 0, "wait", "event loop idle: epoll", "demo.py:20", None, None),
    (90, 0, "run", "epoll timed out", None, None, None),
    (90, 1, "run", None, "demo.py:7", 0, None),
    (100, 1, "close", "returned", "demo.py:7", None, None),
    (100, 0, "log", "stdout", None, None, "3.0"),
    (100, 0, "close", "exit code 0", None, None, None),
]
