"""Terminal robustness (issue 7) through the pilot: tiny screens, resize storms, NO_COLOR and 16 colours, drops, input while streaming."""

from __future__ import annotations

import asyncio
import statistics
import threading
import time

import pytest
from uitraces import diagram_rows, trace, wait_for
from textual import events

from concurview.trace.events import Event, Footer, Header, Lane
from concurview.engines.runner import Batch, Target
from concurview.tui.app import make_app
from concurview.tui.lanes import CURSOR_GLYPHS, GLYPHS, LaneDiagram
from concurview.trace.store import DONE, NONE, READY_S, RUNNING, WAITING


@pytest.mark.parametrize("name", ["threadpool-shutdown", "gevent-eat-play", "error-raises"])
async def test_a_20x6_screen_draws_and_takes_every_key(name):
    app = make_app(trace=trace(name))
    async with app.run_test(size=(20, 6)) as pilot:
        for key in ("right", "right", "left", "shift+right", "down", "right_square_bracket", "t", "plus",
                    "minus", "0", "end", "home", "question_mark", "escape", "p", "p"):
            await pilot.press(key)
        await pilot.pause()
        app.export_screenshot()  # the whole screen composes at this size
        assert app.is_running


async def test_rapid_resizes_do_not_crash_while_a_replay_streams(replays):
    runner = replays("threadpool-shutdown", parts=6)
    app = make_app(scenario="threadpool-shutdown", runner=runner)
    sizes = [(20, 6), (160, 45), (21, 7), (80, 24), (12, 4), (200, 60), (1, 1), (90, 30)]
    async with app.run_test(size=(80, 24)) as pilot:
        await wait_for(pilot, lambda: runner.runs)
        for i in range(40):
            if i % 7 == 0:
                runner.runs[0].release()
            await pilot.resize_terminal(*sizes[i % len(sizes)])
            if i % 3 == 0:
                await pilot.press("right" if i % 2 else "t")
        await pilot.resize_terminal(120, 34)
        runner.runs[0].release(10)
        await wait_for(pilot, lambda: app.current_run is None)
        await pilot.pause()
        assert app.timeline.n_switches > 0 and app.is_running
        app.export_screenshot()


async def test_no_color_keeps_every_state_in_the_glyphs(monkeypatch):
    """Without colour the cells, the cursor and the labels still say who runs, waits, is ready."""
    monkeypatch.setenv("NO_COLOR", "1")
    app = make_app(trace=trace("threadpool-shutdown"))
    async with app.run_test(size=(120, 34)) as pilot:
        assert app.no_color
        tl = app.timeline
        app.goto_switch(tl.n_switches // 2)
        await pilot.pause()
        await pilot.press("t")  # switch axis: one column per switch, every run visible
        rows = diagram_rows(app)
        plots = "".join(r.split("│", 1)[1] for r in rows[1:len(tl.lanes) + 1])
        assert {GLYPHS[RUNNING], GLYPHS[WAITING]} <= set(plots)
        assert "▼" in rows[0], "the ruler marks the cursor's column"
        assert set(plots) & set(CURSOR_GLYPHS.values()), "the cursor crosses the rows with its own glyphs"
        # Each lane's label says its state at the cursor in words.
        for lane, row in zip(tl.lane_tree(), rows[1:]):
            state, _ = tl.state_at(lane[0], app.cursor.t)
            word = {RUNNING: "run", READY_S: "ready", WAITING: "wait", DONE: "done", NONE: ""}[state]
            assert word in row.split("│", 1)[0]
        svg = app.export_screenshot()
        assert "█" in svg


async def test_sixteen_colours_render_the_same_glyphs():
    """A 16-colour (ANSI) terminal: the ANSI theme, and the same glyphs as in truecolour."""
    app = make_app(trace=trace("asyncio-tasks"))
    async with app.run_test(size=(120, 34)) as pilot:
        app.goto_switch(1)
        await pilot.pause()
        truecolour = diagram_rows(app)
        app.ansi_color = True
        app.theme = "ansi-dark" if "ansi-dark" in app.available_themes else "textual-ansi"  # its name before textual 8
        await pilot.pause()
        assert diagram_rows(app) == truecolour
        app.export_screenshot()
        assert app.is_running


class DroppingRun:
    """A run whose engine reports dropped events (as a flooded recorder does), streamed in two batches."""

    def __init__(self, target: Target, timeout: float | None) -> None:
        self.target, self.stop_reason = target, None
        self.header = Header(scenario=target.scenario)
        self.gate = threading.Semaphore(0)

    def stop(self, reason: str = "stopped") -> None:
        self.stop_reason = reason
        self.gate.release(3)

    def __iter__(self):
        lanes = [Lane(0, "main", "MainThread"), Lane(1, "thread", "flood", parent=0)]
        evs = [Event(0, 0, 0, "open"), Event(1, 10, 0, "run"), Event(2, 20, 1, "open", cause=0),
               Event(3, 30, 0, "wait", reason="join"), Event(4, 40, 1, "run")]
        self.gate.acquire()
        yield Batch.from_events(lanes, evs[:3], 0)
        self.gate.acquire()
        if self.stop_reason is None:
            yield Batch.from_events([], evs[3:], 12345)
        self.gate.acquire()

    def footer(self) -> Footer:
        return Footer(complete=self.stop_reason is None, exit_code=0, events=5, lanes=2, dropped=12345)


async def test_dropped_events_are_counted_in_the_header():
    runs: list[DroppingRun] = []
    app = make_app(scenario="threadpool-shutdown",
                   runner=lambda target, timeout: runs.append(DroppingRun(target, timeout)) or runs[-1])
    async with app.run_test(size=(160, 45)) as pilot:
        await wait_for(pilot, lambda: runs)
        runs[0].gate.release()
        await wait_for(pilot, lambda: app.timeline.n_events == 3)
        assert "0 dropped" in str(app.query_one("#status").render())
        runs[0].gate.release()
        await wait_for(pilot, lambda: app.timeline.n_events == 5)
        status = str(app.query_one("#status").render())
        assert "live" in status and "12345 events dropped" in status, "counted while the run goes on"
        assert status.index("dropped") < status.index("switches"), "drops come early: a narrow screen keeps them"
        runs[0].gate.release()
        await wait_for(pilot, lambda: app.current_run is None)
        assert "12345 events dropped" in str(app.query_one("#status").render()), "and from the footer after"


class StreamingRun:
    """A run that streams synthetic events as fast as the app takes them, until stopped."""

    def __init__(self, target: Target, timeout: float | None, lanes: int = 30, batch: int = 2000) -> None:
        self.target, self.stop_reason = target, None
        self.header = Header(scenario=target.scenario)
        self.n_lanes, self.batch, self.sent = lanes, batch, 0

    def stop(self, reason: str = "stopped") -> None:
        self.stop_reason = reason

    def __iter__(self):
        lanes = [Lane(i, "thread", f"worker-{i}", parent=0 if i else None) for i in range(self.n_lanes)]
        seq, t = 0, 0
        cycle = ("run", "wait", "ready")
        first = True
        while self.stop_reason is None:
            evs = []
            for _ in range(self.batch):
                lane = seq % self.n_lanes
                kind = "open" if seq < self.n_lanes else cycle[(seq // self.n_lanes) % 3]
                evs.append(Event(seq, t, lane, kind, reason="sleep 0.01s" if kind == "wait" else None))
                seq, t = seq + 1, t + 1000
            yield Batch.from_events(lanes if first else [], evs, 0)
            first = False
            self.sent = seq
            time.sleep(0.005)

    def footer(self) -> Footer:
        return Footer(complete=False, exit_code=-9, reason=self.stop_reason)


async def test_keys_repaint_promptly_while_a_replay_streams():
    """Key -> repaint of the diagram while batches keep arriving: median <= 50 ms (issue 7's bound)."""
    runs: list[StreamingRun] = []
    app = make_app(scenario="threadpool-shutdown",
                   runner=lambda target, timeout: runs.append(StreamingRun(target, timeout)) or runs[-1])
    painted: list[float] = []
    diagram_cls = LaneDiagram
    original = diagram_cls.render_line

    def render_line(self, y):
        if y == 0:
            painted.append(time.perf_counter())
        return original(self, y)

    diagram_cls.render_line = render_line
    try:
        async with app.run_test(size=(160, 45)) as pilot:
            await wait_for(pilot, lambda: app.timeline is not None and app.timeline.n_switches > 100)
            latencies = []
            for i in range(30):
                painted.clear()
                t0 = time.perf_counter()
                app.post_message(events.Key("left" if i % 2 else "right", None))
                while not painted and time.perf_counter() - t0 < 2:
                    await asyncio.sleep(0.001)
                latencies.append((painted[0] if painted else float("inf")) - t0)
                await asyncio.sleep(0.01)
            streamed = runs[0].sent
            app.action_stop()
            assert streamed > 20_000, "the run kept streaming during the test"
            assert not app.follow, "stepping stopped following the live run"
            assert statistics.median(latencies) <= 0.05, latencies
    finally:
        diagram_cls.render_line = original


@pytest.mark.parametrize("keys", [(), ("question_mark",), ("p",)], ids=["error", "help", "picker"])
async def test_a_tiny_screen_settles_instead_of_looping_on_layout(keys):
    """At 20x6 a dialog's scrollbar once came and went for ever (re-wrapping its text): the screen must go idle."""
    messages = []
    app = make_app(trace=trace("error-raises"))
    async with app.run_test(size=(20, 6), message_hook=messages.append) as pilot:
        if keys:
            await pilot.press("escape", *keys)
        await pilot.pause(0.2)
        messages.clear()
        await asyncio.sleep(0.5)
        layout = [m for m in messages if type(m).__name__ in ("Resize", "Layout", "Update")]
        assert len(layout) <= 2, layout[:10]


def test_state_codes_agree_with_the_store():
    """trace/states.py repeats the store's codes so the picker can start without numpy."""
    from concurview.trace import states
    from concurview.trace import store

    assert (states.NONE, states.RUNNING, states.READY_S, states.WAITING, states.DONE) == (
        store.NONE, store.RUNNING, store.READY_S, store.WAITING, store.DONE)
    assert states.STATE_NAMES == store.STATE_NAMES


def test_the_picker_starts_without_numpy():
    """numpy (about 90 ms to import) waits until a trace is shown: the first frame comes sooner."""
    import subprocess
    import sys

    code = ("import asyncio, sys\n"
            "from concurview.tui.app import make_app\n"
            "async def main():\n"
            "    app = make_app()\n"
            "    async with app.run_test(size=(100, 30)) as pilot:\n"
            "        await pilot.pause()\n"
            "        print('numpy' in sys.modules)\n"
            "asyncio.run(main())\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert out.stdout.strip() == "False", out.stderr
