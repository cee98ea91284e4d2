"""The UI on a 1M-event trace at 200x50: open, frame, key -> repaint; and the first frame of `concurview`.

- open: `make_app(trace=FILE)` to the lane diagram's first line drawn from the
  loaded trace (load + layout + first rasterisation), in this process.
- frame: every line of the diagram (its rows and the cursor's column over them)
  rendered for a new window of the axis (caches cold: each sample pans or zooms
  first), median over many windows.
- key -> repaint: a Key event posted to the app as the driver posts it, until
  the screen update that repaints the diagram has been composed and encoded into
  the bytes a terminal driver writes (headless, Textual skips the encoding: the
  benchmark does it, with a truecolour console); arrows step through switches,
  `+`/`-` zoom (re-rasterise), `t` switches axis. Samples are spaced so each
  starts idle.
- first frame: wall time from spawning `concurview` in a pseudo-terminal to the
  first bytes of its picker's status line on that terminal.
"""

from __future__ import annotations

import asyncio
import os
import pty
import select
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from benchmarks import REPO, Result, concurview_command, median, publish

NAME = "ui"
TITLE = "UI on a 1M-event trace at 200x50 (open, frame, key -> repaint) and first frame of `concurview`"
SIZE = (200, 50)


def missing() -> str | None:
    return None


def write_trace(path: Path, n: int, n_threads: int = 8, tasks_per_thread: int = 6) -> None:
    """A synthetic n-event trace through the real writer: threads running asyncio-like tasks, run/wait/ready
    with a few dozen reasons and source lines, 1 % log lines."""
    import numpy as np

    from concurview.trace.events import Event, Footer, Header, Lane
    from concurview.trace.tracefile import TraceWriter

    rng = np.random.default_rng(11)
    lanes = [Lane(0, "process", "python", pid=100)]
    for th in range(n_threads):
        tid = len(lanes)
        lanes.append(Lane(tid, "thread", f"worker-{th}", parent=0, pid=100, tid=1000 + th))
        for k in range(tasks_per_thread):
            lanes.append(Lane(len(lanes), "task", f"task-{th}-{k}", parent=tid, pid=100, tid=1000 + th))
    reasons = [f"await sleep({i / 10:.1f})" for i in range(20)] + ["Lock.acquire", "Queue.get", "recv fd=5"]
    wheres = [f"app.py:{line}" for line in range(10, 60)]
    writer = TraceWriter(path, Header(scenario="synthetic-ui", params={"events": n}))
    writer.lanes(lanes)
    seq, t = 0, 0
    for lane in lanes:
        writer.events([Event(seq, t, lane.id, "open")])
        seq, t = seq + 1, t + 1000
    state = {lane.id: "wait" for lane in lanes}
    batch = 100_000
    while seq < n:
        m = min(batch, n - seq)
        who = rng.integers(1, len(lanes), m)
        gaps = rng.integers(200, 20_000, m)
        rs = rng.integers(0, len(reasons), m)
        ws = rng.integers(0, len(wheres), m)
        logs = rng.random(m) < 0.01
        events = []
        for j in range(m):
            lane = int(who[j])
            t += int(gaps[j])
            if logs[j]:
                events.append(Event(seq, t, lane, "log", text=f"item {seq} done"))
            else:
                kind = {"wait": "ready", "ready": "run", "run": "wait"}[state[lane]]
                state[lane] = kind
                events.append(Event(seq, t, lane, kind, reason=reasons[rs[j]] if kind == "wait" else None,
                                    where=wheres[ws[j]]))
            seq += 1
        writer.events(events)
    writer.close(Footer(complete=True, exit_code=0, events=seq, lanes=len(lanes), duration=t))


class ScreenUpdates:
    """Times every screen update the app displays, encoded as a terminal driver encodes it (App._display
    returns early when headless); `repaints(since)` are those that drew any of the diagram's lines."""

    def __init__(self) -> None:
        from rich.console import Console
        from textual.app import App

        self.seen: list[tuple[float, bool]] = []  # (time encoded, repaints the diagram)
        self.diagram = None  # set once the app is up
        self._console = Console(color_system="truecolor", force_terminal=True, legacy_windows=False,
                                file=open(os.devnull, "w"))
        self._original = App._display
        updates = self

        def display(app, screen, renderable):
            updates._original(app, screen, renderable)
            if renderable is not None and hasattr(renderable, "render_segments") and not app._batch_count:
                renderable.render_segments(updates._console)
                updates.seen.append((time.perf_counter(), updates._covers_diagram(renderable)))

        App._display = display

    def _covers_diagram(self, update) -> bool:
        if self.diagram is None:
            return False
        region = self.diagram.content_region
        spans = getattr(update, "spans", None)
        if spans is None:  # a full update
            return True
        return any(region.y <= y < region.bottom and x1 < region.right and x2 > region.x for y, x1, x2 in spans)

    def first_repaint(self, after: float) -> float | None:
        return next((t for t, covers in self.seen if covers and t > after), None)

    def close(self) -> None:
        from textual.app import App

        App._display = self._original
        self._console.file.close()


async def _key_latency(app, pilot, updates: ScreenUpdates, key: str, character: str | None) -> float:
    """Seconds from a Key event, posted as the driver posts it, to the encoded update that repaints the diagram."""
    from textual import events

    await pilot.pause()
    await asyncio.sleep(0.01)
    k0 = time.perf_counter()
    app.post_message(events.Key(key, character))
    while time.perf_counter() < k0 + 2.0:
        done = updates.first_repaint(k0)
        if done is not None:
            return done - k0
        await asyncio.sleep(0)
    return float("inf")


def watch_diagram_lines() -> tuple[list[tuple[float, int]], object]:
    """(renders, restore): every diagram line drawn with a trace on it, as (time, y), until restore() is called
    (the first one is when a trace opened on screen)."""
    from concurview.tui.lanes import LaneDiagram

    rendered: list[tuple[float, int]] = []
    original = LaneDiagram.render_line

    def render_line(self, y):
        strip = original(self, y)
        if self.timeline is not None:
            rendered.append((time.perf_counter(), y))
        return strip

    LaneDiagram.render_line = render_line
    return rendered, lambda: setattr(LaneDiagram, "render_line", original)


async def _measure_app(path: Path, quick: bool) -> dict:
    from concurview.tui.app import make_app
    from concurview.tui.axis import TIME, Window
    from concurview.tui.lanes import LaneDiagram

    rendered, restore = watch_diagram_lines()
    updates = ScreenUpdates()
    try:
        t0 = time.perf_counter()
        app = make_app(trace=str(path))
        async with app.run_test(size=SIZE) as pilot:
            while not rendered:
                await asyncio.sleep(0.001)
            open_s = rendered[0][0] - t0
            await pilot.pause()
            diagram = updates.diagram = app.query_one(LaneDiagram)
            tl = app.timeline
            height = diagram.scrollable_content_region.height
            cursor_rows = min(height - 1, len(tl.lanes))

            # Frames: a new window each time (cold rasterisation), every line of the diagram.
            lo, hi = app.nav.domain()
            frames = []
            n_frames = 15 if quick else 60
            for i in range(n_frames):
                span = (hi - lo) / (1 + (i % 6) * 3)  # fit all, then narrower windows
                start = lo + (hi - lo - span) * ((i * 7919) % 97) / 96
                app.windows[TIME] = Window(start, start + span)
                app.follow = False
                app._refresh_view()
                f0 = time.perf_counter()
                for y in range(height):
                    diagram.render_line(y)
                diagram.cursor_cells(0, cursor_rows)
                frames.append(time.perf_counter() - f0)
            app.windows[TIME] = None
            app._refresh_view()
            await pilot.pause()

            # Warm frames: the same window drawn again (what a cursor move costs without the overlay).
            warm = []
            for _ in range(20):
                f0 = time.perf_counter()
                for y in range(height):
                    diagram.render_line(y)
                warm.append(time.perf_counter() - f0)

            def key_latency(key: str, character: str | None):
                return _key_latency(app, pilot, updates, key, character)

            app.goto_switch(tl.n_switches // 2)
            steps = []
            for i in range(40 if quick else 200):
                steps.append(await key_latency("right" if (i // 20) % 2 == 0 else "left", None))
            zooms = []
            for i in range(10 if quick else 40):
                zooms.append(await key_latency("plus" if i % 4 < 2 else "minus", "+" if i % 4 < 2 else "-"))
            axis = []
            for _ in range(6 if quick else 20):
                axis.append(await key_latency("t", "t"))
            result = {
                "open_s": open_s, "frames_s": frames, "warm_frames_s": warm, "step_s": steps, "zoom_s": zooms,
                "axis_s": axis, "events": tl.n_events, "switches": tl.n_switches, "lanes": len(tl.lanes),
                "rows": height,
            }
            await pilot.press("q")
        return result
    finally:
        restore()
        updates.close()


async def _lesson_steps(quick: bool, axis: str) -> list[float]:
    """Key -> repaint stepping through a recorded lesson (threadpool-shutdown) at 200x50 on the time or the switch
    axis: what a learner feels. On the switch axis every step moves the cursor's column."""
    from concurview.tui.app import make_app
    from concurview.tui.lanes import LaneDiagram

    updates = ScreenUpdates()
    try:
        app = make_app(trace=str(REPO / "tests" / "traces" / "threadpool-shutdown.jsonl"))
        async with app.run_test(size=SIZE) as pilot:
            await pilot.pause()
            updates.diagram = app.query_one(LaneDiagram)
            if app.axis != axis:
                await pilot.press("t")
                await pilot.pause()
            out = []
            for i in range(30 if quick else 120):
                out.append(await _key_latency(app, pilot, updates, "right" if (i // 10) % 2 == 0 else "left", None))
            await pilot.press("q")
        return out
    finally:
        updates.close()


# The floor under `concurview`'s first frame: a bare Textual app with one line of text, same terminal.
BARE_APP = """
from textual.app import App
from textual.widgets import Static
class Bare(App):
    def compose(self):
        yield Static("pick a scenario")
Bare().run()
"""


def first_frame(timeout: float = 10.0, cmd: list[str] | None = None) -> float:
    """Seconds from spawning `concurview` (or `cmd`) in a 200x50 pseudo-terminal to its picker's status line."""
    import fcntl
    import struct
    import termios

    master, slave = pty.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", SIZE[1], SIZE[0], 0, 0))
    env = dict(os.environ, TERM="xterm-256color", COLUMNS=str(SIZE[0]), LINES=str(SIZE[1]))
    env.pop("NO_COLOR", None)
    # As on a user's machine: byte code cached (a warm-up run writes what is missing).
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    t0 = time.perf_counter()
    proc = subprocess.Popen(cmd or concurview_command(), stdin=slave, stdout=slave, stderr=slave, env=env, start_new_session=True)
    os.close(slave)
    seen = b""
    try:
        while time.perf_counter() - t0 < timeout:
            r, _, _ = select.select([master], [], [], 0.05)
            if r:
                try:
                    data = os.read(master, 1 << 16)
                except OSError:
                    break
                seen += data
                if b"pick a scenario" in seen:
                    return time.perf_counter() - t0
        return float("inf")
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        os.close(master)


def _p95(xs: list[float]) -> float:
    return statistics.quantiles(xs, n=20)[-1] if len(xs) >= 20 else max(xs)


def run(quick: bool = False) -> list[Result]:
    n = 200_000 if quick else 1_000_000
    with tempfile.TemporaryDirectory(prefix="cv-bench-ui-") as tmp:
        path = Path(tmp) / "synthetic.jsonl"
        w0 = time.perf_counter()
        write_trace(path, n)
        print(f"#   wrote a {n:,}-event trace in {time.perf_counter() - w0:.1f} s", flush=True)
        m = asyncio.run(_measure_app(path, quick))
    lesson = asyncio.run(_lesson_steps(quick, "time"))
    lesson_switch = asyncio.run(_lesson_steps(quick, "switch"))
    first_frame()  # warm-up: byte code written, files in the page cache
    firsts, bares = [], []
    for _ in range(3 if quick else 7):  # interleaved: the machine's load hits both alike
        firsts.append(first_frame())
        bares.append(first_frame(cmd=[sys.executable, "-c", BARE_APP]))
    ms = 1e3
    frame = median(m["frames_s"]) * ms
    step_med, step_p95 = median(m["step_s"]) * ms, _p95(m["step_s"]) * ms
    zoom_med, axis_med = median(m["zoom_s"]) * ms, median(m["axis_s"]) * ms
    first = median(firsts) * ms
    details = {"events": m["events"], "switches": m["switches"], "lanes": m["lanes"], "size": SIZE,
               "diagram_rows": m["rows"]}
    results = [
        Result(NAME, f"open {m['events']:,}-event trace to first diagram line", m["open_s"] * ms, " ms",
               "<= 1000 ms", m["open_s"] <= 1.0, details),
        Result(NAME, "frame (all diagram lines, new window) median", frame, " ms", "<= 4 ms", frame <= 4,
               {"p95_ms": _p95(m["frames_s"]) * ms, "warm_median_ms": median(m["warm_frames_s"]) * ms}),
        Result(NAME, "key -> repaint (step) median", step_med, " ms", "<= 5 ms", step_med <= 5),
        Result(NAME, "key -> repaint (step) p95", step_p95, " ms", "<= 10 ms", step_p95 <= 10),
        Result(NAME, "key -> repaint (step) median on the recorded threadpool-shutdown lesson", median(lesson) * ms,
               " ms", "", None, {"p95_ms": _p95(lesson) * ms}),
        Result(NAME, "key -> repaint (step) median on the same lesson, switch axis", median(lesson_switch) * ms,
               " ms", "", None, {"p95_ms": _p95(lesson_switch) * ms}),
        Result(NAME, "key -> repaint (zoom +/-) median", zoom_med, " ms", "", None,
               {"p95_ms": _p95(m["zoom_s"]) * ms}),
        Result(NAME, "key -> repaint (t, axis) median", axis_med, " ms", "", None),
        Result(NAME, "first frame of `concurview` (pty, 200x50)", first, " ms", "<= 400 ms", first <= 400,
               {"samples_ms": [f * ms for f in firsts]}),
        Result(NAME, "first frame of a bare Textual app, same terminal (the floor)", median(bares) * ms, " ms",
               "", None, {"samples_ms": [f * ms for f in bares]}),
    ]
    publish(NAME, results, {k: v for k, v in m.items() if k.endswith("_s") and isinstance(v, list)}
            | {"first_frame_s": firsts, "bare_textual_first_frame_s": bares, "lesson_step_s": lesson,
               "lesson_switch_axis_step_s": lesson_switch})
    return results


if __name__ == "__main__":
    import benchmarks

    benchmarks.QUICK = "--quick" in sys.argv
    run(quick=benchmarks.QUICK)
