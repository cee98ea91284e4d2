"""SVG snapshots of the screens (`snap_compare`): picker, every lesson trace at its first/middle/last switch, axes, dialogs, sizes, NO_COLOR.

Everything on screen comes from recorded fixtures (tests/traces/*.jsonl) at
fixed terminal sizes, so the pictures do not depend on the machine or the
clock. Update with `pytest tests/snapshots --snapshot-update` from one Python
version (see the pins in pyproject.toml), then look at the SVGs before
committing them.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from concurview.scenarios import Scenario, catalogue
from concurview.tui.app import make_app

TRACES = Path(__file__).resolve().parent.parent / "traces"
SIZE = (120, 34)
NARROW = (80, 24)
WIDE = (160, 45)

# The lesson's recorded traces, and what each shows across its switches.
LESSONS = {
    "threadpool-shutdown": "MainThread submits, three ThreadPoolExecutor workers take the tasks, main waits in shutdown",
    "threadpool-shutdown-nowait": "shutdown(wait=False): main goes on (prints 主) while the workers still run",
    "processpool-shutdown": "one lane per worker process (pid in the name), tasks spread over them",
    "timer": "a Timer thread lane waits its interval (─), then runs task(name='lqz') (█)",
    "timer-cancel": "the Timer thread is cancelled before its interval: it never runs the task",
    "generator-pingpong": "producer and consumer generator lanes on one thread, control alternating at each yield",
    "yield-from-loop": "a hand-written event loop lane driving two generator coroutines",
    "greenlet-eat-play": "switches commented out: eat runs and blocks the thread in time.sleep; play never runs",
    "greenlet-eat-play-switches": "explicit switches: control passes eat -> play -> eat on one thread",
    "gevent-eat-play": "patched: the hub lane runs while eat and play wait; total about max(sleeps)",
    "gevent-eat-play-unpatched": "unpatched: sleeps block the thread, eat then play, total about the sum",
    "asyncio-tasks": "two tasks on MainThread, each await a switch to the loop lane; total about the longer sleep",
    "asyncio-gather": "five tasks, a Semaphore lets two run at once, the others wait on it",
    "io-blocking": "recv blocks: waiting for the kernel, then wake + copy",
    "io-nonblocking": "EAGAIN polling counted per interval; the successful recv is the copy",
    "io-select": "select() is phase 1 (waiting), recv only copies (phase 2)",
    "io-poll": "poll() is phase 1 (waiting), recv only copies (phase 2)",
    "io-epoll": "epoll_wait is phase 1 (waiting), recv only copies (phase 2)",
    "io-signal": "SIGIO handler drains the socket while main keeps working",
    "io-async": "io_uring (or POSIX AIO, labelled emulated): the buffer fills while Python never calls recv",
    "io-models": "the IO models side by side, each read's two phases (waiting, then copying)",
    "socket-echo": "one thread serves every client: requests interleave on a single lane",
}

PICKER_SCENARIOS = ("threadpool-shutdown", "threadpool-shutdown-nowait", "timer", "processpool-shutdown",
                    "generator-pingpong", "greenlet-eat-play", "gevent-eat-play", "asyncio-tasks",
                    "io-blocking", "io-select")


@dataclasses.dataclass(frozen=True)
class _Unavailable(Scenario):
    unavailable: str | None = None


def picker_catalogue() -> dict[str, Scenario]:
    """A fixed selection across the topics (new scenarios do not move the picture), plus one unavailable."""
    cat = catalogue()
    out = {name: cat[name] for name in PICKER_SCENARIOS}
    base = cat["io-blocking"]
    fields = {f.name: getattr(base, f.name) for f in dataclasses.fields(Scenario)}
    fields.update(name="io-async", title="IO models: asynchronous (io_uring)", order=base.order + 100,
                  description="The kernel copies the data into the buffer while Python never calls recv.",
                  unavailable="io_uring needs Linux >= 6.14 (io_uring_setup: errno 38, ENOSYS)")
    out["io-async"] = _Unavailable(**fields)
    return out


def trace_app(name: str):
    return make_app(trace=str(TRACES / f"{name}.jsonl"))


def at_switch(where: str, *keys: str):
    """run_before: put the cursor on the first, middle or last switch, then press `keys`."""

    async def run_before(pilot) -> None:
        await pilot.pause()  # laid out first, as a user's key press would be
        app = pilot.app
        n = app.timeline.n_switches
        app.goto_switch({"first": 0, "middle": n // 2, "last": n - 1}[where])
        await pilot.pause()
        if keys:
            await pilot.press(*keys)

    return run_before


@pytest.fixture(autouse=True)
def _no_color_from_the_outside(monkeypatch):
    """The pictures are made with colour unless a test asks; a developer's NO_COLOR must not leak in."""
    monkeypatch.delenv("NO_COLOR", raising=False)


def test_picker_with_description(snap_compare):
    """The picker on the left, grouped by topic (Threads & pools, Processes, ...), threadpool-shutdown
    highlighted; below the list its title, description and "You should see" facts, then its parameters
    (workers 3, n_tasks 20, sleep 1.0, wait True) as editable fields; io-async dimmed with a ✗.
    The status line says "pick a scenario and press Enter"; the diagram is empty."""
    assert snap_compare(make_app(scenarios=picker_catalogue()), terminal_size=WIDE)


def test_picker_unavailable_scenario(snap_compare):
    """io-async highlighted (dimmed, ✗ after its name): the description opens with
    "✗ Unavailable here: io_uring needs Linux >= 6.14 ..." before what the scenario shows."""

    async def run_before(pilot) -> None:
        pilot.app.query_one("ScenarioPicker").highlight("io-async")

    assert snap_compare(make_app(scenarios=picker_catalogue()), terminal_size=WIDE, run_before=run_before)


@pytest.mark.parametrize("where", ["first", "middle", "last"])
@pytest.mark.parametrize("name", list(LESSONS))
def test_lesson_trace(snap_compare, name, where):
    """Recorded trace `name` opened at its first, middle or last switch, time axis. You should see
    the status line (trace file · recorded · events · lanes · switches · 0 dropped · elapsed · cursor),
    the ruler with ms/s ticks and ▼ at the cursor, one row per lane (kind icon, name indented under its
    parent, state at the cursor) drawn with █ running, ▒ ready, ─ waiting, the cursor crossing each row,
    the explanation `#k/n  time  A -> B: ...` and the selected lane's line, the source pane with ▶ at the
    running lane's line, and the output pane bright up to the cursor. What each trace shows: LESSONS."""
    assert snap_compare(trace_app(name), terminal_size=SIZE, run_before=at_switch(where))


def test_switch_axis(snap_compare):
    """threadpool-shutdown at its middle switch on the switch axis (`t`): one column per switch,
    ticks #1, #10, ..., the three workers' █ runs taking turns; status says "switch axis"."""
    assert snap_compare(trace_app("threadpool-shutdown"), terminal_size=SIZE, run_before=at_switch("middle", "t"))


def test_time_axis(snap_compare):
    """The same trace and switch on the time axis: ticks in ms/s, each worker's row mostly ─ (waiting in
    sleep 0.2s) with short █ where a task starts; status says "time axis"."""
    assert snap_compare(trace_app("threadpool-shutdown"), terminal_size=SIZE, run_before=at_switch("middle"))


def test_help_screen(snap_compare):
    """The help dialog over the app: every key with what it does, the glyph legend (█ running, ▒ ready,
    ─ waiting, blank, ✗ error, the cursor marks ▼ │ ┼ ╋ ╂), lane kind icons and the two axes."""
    assert snap_compare(trace_app("asyncio-tasks"), terminal_size=WIDE, press=["question_mark"])


def test_error_screen(snap_compare):
    """A program that raised: the red "✗ The program raised" dialog with the exception's last line
    (ValueError: invalid literal for int() ...), the exit code, and the traceback below; the lanes are
    still drawn behind it. The source pane behind says "source not stored in this trace": the fixture was
    recorded before traces stored a program's text (raises.py beside it is not read)."""
    assert snap_compare(trace_app("error-raises"), terminal_size=SIZE)


def test_unreadable_trace(snap_compare, monkeypatch):
    """A file that is not a trace: the "✗ Cannot open the trace" dialog naming the problem, over the
    picker (nothing else to show). Opened by a relative path, as typed: the checkout's location
    must not show in the picture."""
    monkeypatch.chdir(TRACES)
    assert snap_compare(make_app(trace="error-unreadable.jsonl"), terminal_size=SIZE)


def test_narrow_80x24(snap_compare):
    """threadpool-shutdown in 80x24 at its middle switch: no picker, lane names shortened in the middle
    (T…-0_0 style keeps the distinguishing end), the explanation wraps over the taller narrow box."""
    assert snap_compare(trace_app("threadpool-shutdown"), terminal_size=NARROW, run_before=at_switch("middle"))


def test_wide_160x45(snap_compare):
    """gevent-eat-play in 160x45 at its middle switch: full lane names with the hub lane, the whole
    source file beside the output pane."""
    assert snap_compare(trace_app("gevent-eat-play"), terminal_size=WIDE, run_before=at_switch("middle"))


def test_no_color(snap_compare, monkeypatch):
    """NO_COLOR=1: the same threadpool-shutdown screen in greys only; the states still read from the
    glyphs (█ ▒ ─), the cursor from ▼ and │ ┼ ╋ ╂, the label's state words (run, ready, wait, done)."""
    monkeypatch.setenv("NO_COLOR", "1")
    assert snap_compare(trace_app("threadpool-shutdown"), terminal_size=SIZE, run_before=at_switch("middle"))


# -- blocking the thread (issue 18): the state, the starved lanes, the warnings --------------------------


def test_blocking_state_unpatched_gevent(snap_compare):
    """gevent-eat-play unpatched, cursor inside eat's time.sleep(0.2), the hub lane selected: eat's row is
    ━ (red: blocking the thread, label "block"), the Hub's row ▒ ready for the same stretch (it could have run
    the loop and started play), MainThread waits in e.join(). The status line says "2 warnings (w)"; the
    selected line reads "Hub (hub) · ready, but the gevent hub is blocked by eat"; the source pane marks line
    49 "◀ eat blocks the thread"."""

    async def run_before(pilot) -> None:
        await pilot.pause()
        app = pilot.app
        tl = app.timeline
        eat = next(x.id for x in tl.lanes if x.name == "eat")
        block = next(int(i) for i in tl.events_of_kind("block") if tl.event_lane(int(i)) == eat)
        app.selected = next(x.id for x in tl.lanes if x.kind == "hub")
        app.goto_event(block)
        await pilot.pause()

    assert snap_compare(trace_app("gevent-eat-play-unpatched"), terminal_size=SIZE, run_before=run_before)


def test_warnings_screen(snap_compare):
    """`w` on gevent-eat-play unpatched: the "2 warnings: what to notice in this run" dialog, one line each,
    "! eat blocked the gevent hub for 200.2 ms while Hub was ready: time.sleep(0.2) at gevent_eat_play.py:49;
    time.sleep is not patched (monkey.patch_all() not called)" and the same for play (300.2 ms, line 55)."""
    assert snap_compare(trace_app("gevent-eat-play-unpatched"), terminal_size=WIDE, run_before=at_switch("first", "w"))


def test_blocking_state_no_color(snap_compare, monkeypatch):
    """NO_COLOR=1, greenlet-eat-play (the lesson's code, switches commented out) at its last switch: eat's
    time.sleep reads without colour as the heavy line ━ (waiting is the light ─), MainThread waits
    (switch → eat) meanwhile; the status line says "1 warning (w)"."""
    monkeypatch.setenv("NO_COLOR", "1")
    assert snap_compare(trace_app("greenlet-eat-play"), terminal_size=SIZE, run_before=at_switch("last"))


# -- the GIL view (issue 18) -------------------------------------------------------------------------


def at_sample(lane_name: str, reason: str):
    """run_before: put the cursor on the first sampled fact `reason` of lane `lane_name`, and select that lane."""
    async def run_before(pilot) -> None:
        await pilot.pause()
        app = pilot.app
        tl = app.timeline
        (lane,) = [lane.id for lane in tl.lanes if lane.name == lane_name]
        i = next(int(i) for i in tl.events_of_kind("sample")
                 if tl.event_lane(int(i)) == lane and (tl.event(int(i)).reason or "").startswith(reason))
        app.selected = lane
        app.goto_event(i)
        await pilot.pause()
    return run_before


def test_gil_view_threads_take_turns(snap_compare):
    """gil-threads (recorded on 3.11): spin-1 and spin-2 alternate between █ (holding the GIL) and ▒
    (waiting for the GIL), never both █ in one cell for long; reader is ─ (blocked in the kernel in readv)
    from its start until main writes. The header says "GIL view: on"; the explanation line is the sampled
    fact (spin-2 holds the GIL (sampled)); the selected line says reader's state and why."""
    assert snap_compare(trace_app("gil-threads"), terminal_size=SIZE,
                        run_before=at_sample("reader", "blocked in the kernel"))


def test_gil_view_no_color(snap_compare, monkeypatch):
    """The same trace with NO_COLOR=1 and the cursor on spin-1 waiting for the GIL: the states still read
    from the glyphs alone (█ holding, ▒ waiting for the GIL, ─ blocked), and the selected line says
    "spin-1 (thread) · ready: waiting for the GIL"."""
    monkeypatch.setenv("NO_COLOR", "1")
    assert snap_compare(trace_app("gil-threads"), terminal_size=SIZE,
                        run_before=at_sample("spin-1", "waiting for the GIL"))


def test_no_picture_or_fixture_shows_where_a_checkout_was():
    """Not a picture: recorded traces and snapshots name the fixtures' files by name, never by the absolute
    path of the checkout they were made in (a regression shows on another machine, or when the tree moves)."""
    import re

    leak = re.compile(r"/[\w.+-]+(?:/[\w.+-]+)*/tests/(?:traces|snapshots)/")
    here = Path(__file__).parent
    for path in [*sorted((here / "__snapshots__").rglob("*.svg")), *sorted(TRACES.glob("*.jsonl"))]:
        found = leak.search(path.read_text(encoding="utf-8"))
        assert found is None, f"{path.name}: {found.group(0)}"
