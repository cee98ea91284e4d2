"""Pilot test helpers: recorded trace fixtures, runs replayed from them on the test's signal."""

from __future__ import annotations

import asyncio
import threading
from pathlib import Path

from concurview.trace.events import Footer
from concurview.engines.runner import Batch, Target
from concurview.trace.columns import StringTable
from concurview.trace.tracefile import TraceReader

TRACES = Path(__file__).resolve().parent.parent / "traces"


def diagram_rows(app) -> list[str]:
    """The lane diagram's lines as the screen shows them: its rows with the cursor's column drawn over them."""
    from concurview.tui.lanes import LaneDiagram

    region = app.query_one(LaneDiagram).content_region
    lines = app.screen._compositor.render_strips()[region.y:region.bottom]
    return [line.crop(region.x, region.right).text for line in lines]


def cursor_at(app) -> tuple[int, int] | None:
    """Where the cursor's column is drawn on the screen (x, first row), None if hidden; and where it belongs."""
    from concurview.tui.lanes import CursorColumn, LaneDiagram

    diagram, column = app.query_one(LaneDiagram), app.query_one(CursorColumn)
    label_width, plot_width = diagram.layout_widths()
    col = diagram._cursor_column_at(plot_width)
    want = None if col is None else (diagram.content_region.x + label_width + 1 + col, diagram.content_region.y + 1)
    return (tuple(column.region.offset) if column.display else None), want


def trace(name: str) -> str:
    """Path of a recorded fixture (tests/traces/regenerate.py writes them)."""
    return str(TRACES / f"{name}.jsonl")


class ReplayRun:
    """Stands in for engines.runner.Run: yields a recorded trace's events in `parts` batches.

    Each batch waits for `release()`, so a test decides what has "arrived"; `stop()`
    ends the replay the way the stop key ends a real run (incomplete footer).
    """

    def __init__(self, target: Target, timeout: float | None, source: str, parts: int = 3) -> None:
        self.target, self.timeout = target, timeout
        reader = TraceReader(source)
        self.header = reader.header
        lanes, events = [], []
        for ls, es in reader.batches():
            lanes += ls
            events += es
        self._footer = reader.footer
        step = max(1, -(-len(events) // parts))
        self.batches = [events[i:i + step] for i in range(0, len(events), step)] or [[]]
        self.lanes = lanes
        self.stop_reason: str | None = None
        self._gate = threading.Semaphore(0)
        self._strings = StringTable()  # one for the run, as a real run's merger keeps
        self.sent = 0

    def release(self, n: int = 1) -> None:
        for _ in range(n):
            self._gate.release()

    def stop(self, reason: str = "stopped") -> None:
        self.stop_reason = reason
        self.release(len(self.batches) + 1)

    def __iter__(self):
        for i, events in enumerate(self.batches):
            self._gate.acquire()
            if self.stop_reason is not None:
                return
            # every lane up front: ids stay dense
            yield Batch.from_events(self.lanes if i == 0 else [], events, 0, self._strings)
            self.sent = i + 1

    def footer(self) -> Footer:
        if self.stop_reason is not None:
            return Footer(complete=False, exit_code=-9, reason=self.stop_reason)
        return self._footer or Footer()


class Replays:
    """A runner for make_app(runner=...): each run replays `source`; the runs are kept for the test."""

    def __init__(self, source: str, parts: int = 3) -> None:
        self.source, self.parts = source, parts
        self.runs: list[ReplayRun] = []

    def __call__(self, target: Target, timeout: float | None) -> ReplayRun:
        run = ReplayRun(target, timeout, self.source, self.parts)
        self.runs.append(run)
        return run


async def wait_for(pilot, predicate, timeout: float = 5.0) -> None:
    """Pause until predicate() holds (short pauses, so the app's messages get processed)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not predicate():
        assert loop.time() < deadline, "timed out waiting for the app"
        await pilot.pause(0.02)
