"""The concurview app: picker, lane diagram, explanation, source and log panes, keys and runs; one make_app() factory."""

from __future__ import annotations

import re
import threading
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path, PurePath
from time import monotonic
from typing import TYPE_CHECKING

from textual import on, work
from textual.app import App, ComposeResult, SystemCommand
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.content import Content
from textual.css.query import NoMatches
from textual.message import Message
from textual.screen import ModalScreen, Screen
from textual.timer import Timer
from textual.widgets import Input

from concurview.engines.events import Event, Lane
from concurview.engines.outfile import write_output
from concurview.engines.runner import Run, Target
from concurview.scenarios import Scenario, catalogue
from concurview.tui import compare
from concurview.tui.axis import SWITCH, TIME, Window
from concurview.tui.commands import ScenarioCommands
from concurview.tui.keybar import KeyBar
from concurview.tui.lanes import Cursor, LaneDiagram
from concurview.tui.panes import InfoLine, LogView, Source, SourceMark, SourceView
from concurview.tui.picker import ScenarioPicker
from concurview.tui.compositor import CroppedScreen
from concurview.tui.screens import ErrorScreen, ExportScreen, FindScreen, Found, HelpScreen, WarningsScreen
from concurview.tui.states import BLOCKING, DONE, NONE, READY_S, RUNNING, STATE_NAMES
from concurview.tui.text import clean

if TYPE_CHECKING:
    from concurview.engines.columns import Columns
    from concurview.tui.store import Timeline


def format_time(ns: int) -> str:
    from concurview.tui.store import format_time as store_format_time  # loaded by then: a trace is shown

    return store_format_time(ns)

_SWITCH = Binding.Group("switch", compact=True)
_EVENT = Binding.Group("event", compact=True)
_LANE = Binding.Group("lane", compact=True)
_LANE_SWITCH = Binding.Group("lane switch", compact=True)
_ENDS = Binding.Group("first/last")
_ZOOM = Binding.Group("zoom", compact=True)

# What each key does, for the help screen (the footer shows the bindings themselves).
KEYS = (
    ("← →", "previous / next switch (a run of some lane)"),
    ("shift+← →", "previous / next event of any kind"),
    ("↑ ↓", "select a lane"),
    ("[ ]", "previous / next switch of the selected lane"),
    ("home end", "first / last switch (end while a run is live: follow it again)"),
    ("space", "play / pause: step through the switches at the chosen pace"),
    ("+ -", "zoom in / out around the cursor"),
    ("0", "fit the whole run"),
    ("t", "time axis ↔ switch axis (one column per switch)"),
    ("enter", "run the scenario highlighted in the picker"),
    ("r", "run the last scenario again"),
    ("s", "stop the running scenario (the trace so far is kept)"),
    ("e", "export the trace (JSON Lines) and a screenshot (SVG)"),
    ("/", "find a lane, a switch or a log line"),
    ("w", "warnings: what to notice (a task or greenlet that blocked its loop, hub or thread; threads that shared the GIL)"),
    ("p", "show / hide the scenario picker"),
    ("?", "this help"),
    ("q", "quit"),
    ("ctrl+p", "command palette: scenarios, parameters, view commands"),
    ("mouse", "click a cell to move the cursor there; click a log line to jump to it"),
)
PACES = (0.1, 0.25, 0.5, 1.0, 2.0)
LIVE_FRAME = 0.03  # seconds between repaints for a live run's new events (the keys repaint at once)
NARROW = 110  # columns below which a run hides the picker (p shows it again)


class ConcurviewApp(App[int]):
    """Pick a scenario, watch it run, step through its switches."""

    CSS_PATH = "concurview.tcss"
    TITLE = "concurview"
    COMMANDS = App.COMMANDS | {ScenarioCommands}

    BINDINGS = [
        # The stepping keys are the app's first (priority: a key reaches the app before it bubbles up
        # from the focused widget, ~0.5 ms a step), except where the focus edits text (check_action).
        Binding("left", "step(-1)", "switch", group=_SWITCH, priority=True),
        Binding("right", "step(1)", "switch", group=_SWITCH, priority=True),
        Binding("shift+left", "event(-1)", "event", key_display="⇧←", group=_EVENT, priority=True),
        Binding("shift+right", "event(1)", "event", key_display="⇧→", group=_EVENT, priority=True),
        Binding("up", "lane(-1)", "lane", group=_LANE),
        Binding("down", "lane(1)", "lane", group=_LANE),
        Binding("left_square_bracket", "lane_switch(-1)", "lane switch", key_display="[", group=_LANE_SWITCH),
        Binding("right_square_bracket", "lane_switch(1)", "lane switch", key_display="]", group=_LANE_SWITCH),
        Binding("home", "jump('first')", "first/last", group=_ENDS),
        Binding("end", "jump('last')", "first/last", group=_ENDS),
        Binding("space", "play", "play"),
        Binding("plus", "zoom(0.5)", "zoom", key_display="+", group=_ZOOM),
        Binding("minus", "zoom(2)", "zoom", key_display="-", group=_ZOOM),
        Binding("equals_sign", "zoom(0.5)", "zoom in", show=False),
        Binding("0", "fit", "fit"),
        Binding("t", "axis", "axis"),
        Binding("enter", "run_selected", "run"),
        Binding("r", "rerun", "rerun"),
        Binding("s", "stop", "stop"),
        Binding("e", "export", "export"),
        Binding("slash", "find", "find", key_display="/"),
        Binding("w", "warnings", "warnings", show=False),  # the status line says "N warnings (w)" when there are
        Binding("p", "toggle_picker", "picker", show=False),
        Binding("question_mark", "help", "help", key_display="?"),
        Binding("q", "quit", "quit"),
    ]

    class BatchArrived(Message):
        """Lanes and events streamed in from the running scenario (every batch queued since the last one)."""

        def __init__(self, run: Run) -> None:
            super().__init__()
            self.run = run

    class RunEnded(Message):
        """The run's processes are gone; `run.footer()` says how it ended."""

        def __init__(self, run: Run) -> None:
            super().__init__()
            self.run = run

    class CompareProgressed(Message):
        """The stacked compare started model `model` (number `index` of `count`)."""

        def __init__(self, token: object, model: str, index: int, count: int) -> None:
            super().__init__()
            self.token, self.model, self.index, self.count = token, model, index, count

    class CompareEnded(Message):
        """Every model of the stacked compare ran: `timeline` holds them on one axis (None: stopped)."""

        def __init__(self, token: object, timeline: Timeline | None, rows: list[dict]) -> None:
            super().__init__()
            self.token, self.timeline, self.rows = token, timeline, rows

    def __init__(self, scenario: str | None = None, params: dict | None = None,
                 trace: str | None = None, run_timeout: float | None = 120.0,
                 overrides: dict[str, dict] | None = None, *,
                 scenarios: Mapping[str, Scenario] | None = None, play_interval: float = 0.5,
                 runner: Callable[[Target, float | None], Run] | None = None,
                 program: Target | None = None) -> None:
        super().__init__()
        self.runner = runner or (lambda target, timeout: Run(target, timeout=timeout))
        self.scenarios: Mapping[str, Scenario] = _with_compare(catalogue() if scenarios is None else scenarios)
        self.program = program
        self.program_exit: int | None = None  # how the user's program ended (None: it did not run to an end)
        self._target: Target | None = None  # what `r` runs again
        self._compare_token: object | None = None
        self._compare_run: Run | None = None
        self._feed_lock = threading.Lock()
        self._feed_queue: dict[int, list] = {}
        self._feed_posted: set[int] = set()
        self._live_painted = 0.0
        self._live_timer: Timer | None = None
        self._panes_pending = False
        self._initial_scenario = scenario
        # Parameters per scenario name, applied whenever that scenario runs.
        self.overrides: dict[str, dict] = {k: dict(v) for k, v in (overrides or {}).items()}
        if scenario and params:
            self.overrides[scenario] = dict(params)
        self._trace_path = trace
        self._opened_trace: str | None = None  # the trace file on screen: an export never writes over it
        self.run_timeout = run_timeout
        self.play_interval = play_interval
        self.timeline: Timeline | None = None
        self.source_name = ""  # what the status line calls the trace
        self.scenario: Scenario | None = None
        self.current_run: Run | None = None
        self.cursor: Cursor | None = None
        self.follow = True  # while live, the cursor stays on the newest switch until the user steps
        self.axis = TIME
        self.windows: dict[str, Window | None] = {TIME: None, SWITCH: None}  # None: fit everything
        self.selected: int | None = None
        self._play_timer: Timer | None = None
        self._find_query = ""
        self._bindings_key: tuple | None = None

    def get_default_screen(self) -> Screen:
        return CroppedScreen(id="_default")

    def compose(self) -> ComposeResult:
        yield InfoLine(id="status")
        with Horizontal(id="main"):
            yield ScenarioPicker(self.scenarios, self.overrides, id="picker-pane")
            with Vertical(id="view"):
                yield LaneDiagram(id="lanes")
                yield InfoLine(id="explain")
                with Horizontal(id="panes"):
                    yield SourceView(id="source")
                    yield LogView(id="log")
        yield KeyBar()

    def on_mount(self) -> None:
        self.query_one("#source").border_title = "source"
        self.query_one("#log").border_title = "output"
        picker = self.query_one(ScenarioPicker)
        if self._trace_path:
            picker.display = False  # filled in when first shown
            self.open_trace(self._trace_path)
            self.query_one(LaneDiagram).focus()
        elif self.program is not None:
            picker.display = False
            self.run_target(self.program)
        elif self._initial_scenario:
            picker.highlight(self._initial_scenario)
            self.run_scenario(self._initial_scenario)
        else:
            picker.highlight(None)
            self.query_one("#picker").focus()
        self._refresh_view()

    def on_resize(self, event) -> None:
        narrow = event.size.width < NARROW
        self.set_class(narrow, "-narrow")
        picker = self.query_one(ScenarioPicker)
        focus_in_picker = self.focused is not None and picker in self.focused.ancestors_with_self
        if narrow and self.timeline is not None and picker.display and not focus_in_picker:
            picker.display = False  # shrunk below the room for both: the diagram wins (p brings it back)

    # -- picker and palette --------------------------------------------------------------

    @on(ScenarioPicker.RunRequested)
    def _run_requested(self, message: ScenarioPicker.RunRequested) -> None:
        self.run_scenario(message.name)

    @on(ScenarioPicker.ParamsEdited)
    def _params_edited(self, message: ScenarioPicker.ParamsEdited) -> None:
        self.overrides[message.name] = dict(message.params)

    def edit_params(self, name: str) -> None:
        """Show scenario `name` in the picker and put the focus in its parameters."""
        picker = self.query_one(ScenarioPicker)
        picker.display = True
        picker.highlight(name)
        self.call_after_refresh(picker.focus_params)

    def get_system_commands(self, screen: Screen) -> Iterable[SystemCommand]:
        yield from super().get_system_commands(screen)
        if isinstance(screen, ModalScreen):
            return
        yield SystemCommand("Toggle axis", "time axis <-> switch axis (one column per switch)", self.action_axis)
        yield SystemCommand("Fit all", "show the whole run", self.action_fit)
        yield SystemCommand("Zoom in", "around the cursor", lambda: self.action_zoom(0.5))
        yield SystemCommand("Zoom out", "around the cursor", lambda: self.action_zoom(2))
        yield SystemCommand("Play / pause", f"step every {self.play_interval:g} s", self.action_play)
        for pace in PACES:
            yield SystemCommand(f"Play pace {pace:g} s", "time between steps while playing",
                                lambda pace=pace: self.set_pace(pace))
        yield SystemCommand("First switch", "move the cursor to switch #1", lambda: self.action_jump("first"))
        yield SystemCommand("Last switch", "move the cursor to the newest switch", lambda: self.action_jump("last"))
        yield SystemCommand("Find", "a lane by name or a log line by text", self.action_find)
        yield SystemCommand("Export", "the trace (JSON Lines) and a screenshot (SVG)", self.action_export)
        yield SystemCommand("Toggle picker", "show or hide the scenario picker", self.action_toggle_picker)
        yield SystemCommand("Help", "keys and glyphs", self.action_help)
        if self._target is not None:
            yield SystemCommand("Rerun", f"run {clean(self._target_name(self._target), one_line=True)} again",
                                self.action_rerun)
        if compare.ALL in self.scenarios:
            yield SystemCommand("Compare models", "one workload on five models, stacked on one time axis",
                                lambda: self.run_scenario(compare.ALL))
        if self.current_run is not None or self._compare_token is not None:
            yield SystemCommand("Stop", "stop the running scenario", self.action_stop)

    def action_run_selected(self) -> None:
        name = self.query_one(ScenarioPicker).highlighted
        if name is not None:
            self.run_scenario(name)

    def action_toggle_picker(self) -> None:
        self._show_picker(not self.query_one(ScenarioPicker).display)

    def _show_picker(self, show: bool = True) -> None:
        picker = self.query_one(ScenarioPicker)
        picker.display = show
        if show and picker.highlighted is None:
            picker.highlight(self.scenario.name if self.scenario is not None else None)
        if show:
            self.query_one("#picker").focus()
        elif self.focused is None or picker in self.focused.ancestors:
            self.query_one(LaneDiagram).focus()

    # -- runs and traces -------------------------------------------------------------------

    def run_scenario(self, name: str) -> None:
        """Run scenario `name` live with its parameters; a run still going is stopped first.

        An unavailable scenario (`Scenario.unavailable` says why) is explained, not run.
        """
        scenario = self.scenarios.get(name)
        if scenario is None:
            return
        why = getattr(scenario, "unavailable", None)
        if why:
            self.push_screen(ErrorScreen(f"{scenario.name} cannot run here", str(why),
                                         "Pick another scenario; the picker dims the ones this machine lacks."))
            return
        params = scenario.params | self.overrides.get(name, {})
        if name == compare.ALL:
            self.run_compare(params)
            return
        self.scenario = scenario
        self.run_target(Target(str(scenario.path), scenario.name, params))

    def run_target(self, target: Target) -> None:
        """Run a scenario or the user's own program live; a run still going is stopped first."""
        self.action_stop()
        self._pause()
        if target.scenario is None:
            self.scenario = None
        self._target = target
        self.program_exit = None
        run = self.runner(target, self.run_timeout)
        self.current_run = run
        self.source_name = self._target_name(target)
        from concurview.tui.store import Timeline

        self._reset(Timeline(run.header))
        self.sub_title = clean(self.source_name, one_line=True) + " · live"
        self._start_view()
        self._feed(run)
        self._refresh_view()

    @staticmethod
    def _target_name(target: Target) -> str:
        if target.scenario:
            return target.scenario
        return f"-m {target.path}" if target.module else Path(target.path).name

    def _start_view(self) -> None:
        if self.size.width < NARROW:  # narrow: the diagram needs the room more than the picker
            self.query_one(ScenarioPicker).display = False
        self.query_one(LaneDiagram).focus()

    def run_compare(self, params: Mapping[str, object]) -> None:
        """Run compare-models on every model in turn and show the runs stacked on one time axis."""
        self.action_stop()
        self._pause()
        self.scenario = self.scenarios.get(compare.ALL)
        self._target = None
        token = self._compare_token = object()
        self.timeline = None
        self.cursor = None
        self.sub_title = "compare · running"
        self.query_one("#status", InfoLine).text = Content.assemble(
            ("compare", "bold"), f" · running {compare.MODELS[0]} (1/{len(compare.MODELS)}) ...")
        self._start_view()
        self._compare(token, dict(params))

    @work(thread=True, exclusive=True, group="run")
    def _compare(self, token: object, params: dict) -> None:
        runs = []
        for i, model in enumerate(compare.MODELS):
            if token is not self._compare_token:
                return
            self.post_message(self.CompareProgressed(token, model, i, len(compare.MODELS)))

            def started(run: Run) -> None:
                self._compare_run = run
                if token is not self._compare_token:
                    run.stop("stopped by user")

            runs.append(compare.run_model(model, int(params["jobs"]), float(params["job_sleep"]),
                                          int(params["workers"]), self.run_timeout, self.runner, started))
            self._compare_run = None
        if token is not self._compare_token:
            return
        full = {"models": list(compare.MODELS), **params}
        self.post_message(self.CompareEnded(token, compare.merge(runs, full), compare.table(runs)))

    def on_concurview_app_compare_progressed(self, message: CompareProgressed) -> None:
        if message.token is self._compare_token and not self._exit:
            self.query_one("#status", InfoLine).text = Content.assemble(
                ("compare", "bold"), f" · running {message.model} ({message.index + 1}/{message.count}) ...")

    def on_concurview_app_compare_ended(self, message: CompareEnded) -> None:
        if message.token is not self._compare_token or message.timeline is None:
            return
        self._compare_token = None
        tl = message.timeline
        self.source_name = "compare"
        self._reset(tl)
        self.follow = False
        self.sub_title = "compare · recorded"
        if tl.n_switches:
            self._move(self._switch_cursor(0))
        self._refresh_view()
        totals = "  ".join(f"{r['model']} " + ("failed" if r["total_s"] is None else f"{r['total_s']:.2f} s")
                           for r in message.rows)
        self.notify(totals, title="compare: totals", timeout=8)

    @work(thread=True, exclusive=True, group="run")
    def _feed(self, run: Run) -> None:
        # Batches queue here; one message at a time tells the app, which takes all that queued. A flood
        # then costs one fold and one repaint per turn of the app's loop, and keys never wait behind it.
        for batch in run:
            with self._feed_lock:
                queue = self._feed_queue.setdefault(id(run), [[], [], 0])
                queue[0] += batch.lanes
                queue[1].append(batch.columns)
                queue[2] = batch.dropped
                post = id(run) not in self._feed_posted
                self._feed_posted.add(id(run))
            if post:
                self.post_message(self.BatchArrived(run))
        self.post_message(self.RunEnded(run))

    def _take_batches(self, run: Run) -> tuple[list[Lane], Columns | list, int] | None:
        with self._feed_lock:
            self._feed_posted.discard(id(run))
            queued = self._feed_queue.pop(id(run), None)
        if queued is None:
            return None
        from concurview.engines.columns import Columns

        lanes, parts, dropped = queued
        return lanes, Columns.concat(parts) if parts else [], dropped

    def on_concurview_app_batch_arrived(self, message: BatchArrived) -> None:
        queued = self._take_batches(message.run)
        if message.run is not self.current_run or self.timeline is None or self._exit or queued is None:
            return
        lanes, events, dropped = queued
        self.timeline.add(lanes, events)
        self.timeline.dropped = dropped
        self._refresh_live()

    def _refresh_live(self) -> None:
        """Repaint for new events at most every LIVE_FRAME seconds (a flood would repaint per batch)."""
        now = monotonic()
        wait = self._live_painted + LIVE_FRAME - now
        if wait <= 0:
            self._live_painted = now
            with self.batch_update():
                self._refresh_view()
        elif self._live_timer is None:
            def later() -> None:
                self._live_timer = None
                self._live_painted = monotonic()
                with self.batch_update():
                    self._refresh_view()

            self._live_timer = self.set_timer(wait, later, name="live repaint")

    def on_concurview_app_run_ended(self, message: RunEnded) -> None:
        queued = self._take_batches(message.run)
        if message.run is not self.current_run or self.timeline is None or self._exit:
            return
        if queued is not None:
            self.timeline.add(queued[0], queued[1])
            self.timeline.dropped = queued[2]
        run = message.run
        footer = run.footer()
        self.timeline.finish(footer)
        self.current_run = None
        if run.stop_reason is None and footer.exit_code is not None:
            # It ran to its end by itself: its status as a shell reports it (139 for a SIGSEGV).
            code = footer.exit_code
            self.program_exit = 128 - code if code < 0 else code
        state = "recorded" if footer.complete else "incomplete"
        self.sub_title = clean(self.source_name, one_line=True) + f" · {state}"
        self._refresh_view()
        if run.stop_reason == "stopped by user":
            self.notify("Stopped: the trace so far is kept, marked incomplete.", title="run stopped")
        else:
            self._report_problems(self.timeline)

    def open_trace(self, path: str) -> None:
        """Show a recorded trace; an unreadable file becomes an error screen."""
        from concurview.engines.tracefile import TraceFormatError
        from concurview.tui.store import load

        self.action_stop()
        self._pause()
        try:
            tl = load(path)
        except (TraceFormatError, OSError, ValueError) as e:
            self._show_picker()
            self.push_screen(ErrorScreen("Cannot open the trace", str(e) or type(e).__name__,
                                         "Pick a scenario instead, or open another file: concurview open TRACE"))
            return
        self.scenario = self.scenarios.get(tl.header.scenario or "")
        self.source_name = Path(path).name
        self._reset(tl)
        self._opened_trace = path
        self.follow = False
        # Switches bunched into a moment of a longer run are invisible on a time axis: start on
        # the switch axis then (`t` goes back), else on time.
        self.axis = SWITCH if tl.switches_clustered() else TIME
        self.sub_title = clean(self.source_name, one_line=True) + f" · {'recorded' if tl.complete else 'incomplete'}"
        if tl.n_switches:
            self._move(self._switch_cursor(0))
        self._refresh_view()
        self._report_problems(tl)

    def _report_problems(self, tl: Timeline) -> None:
        """Error screens for a run that failed: nothing recorded, killed or timed out, raised."""
        footer = tl.footer
        if tl.undeclared:
            self.notify(f"{tl.undeclared} events on lanes the trace never declared were ignored.",
                        title="damaged trace", severity="warning", timeout=6)
        if tl.n_events == 0:
            why = "" if footer is None or footer.reason is None else f" ({footer.reason})"
            self.push_screen(ErrorScreen("Empty trace", f"No events were recorded{why}.",
                                         "Nothing to step through: pick a scenario and run it."))
            return
        if not tl.complete:
            reason = tl.incomplete_reason() or "incomplete"
            self.push_screen(ErrorScreen(
                "The run did not finish", f"{reason}. The trace up to that point is shown, marked incomplete.",
            ))
            return
        if footer is not None and footer.exit_code not in (0, None):
            errors = tl.events_of_kind("error")
            last = tl.event_text(int(errors[-1])) if len(errors) else None
            if last is None:  # sys.exit(n): nothing raised, the program chose its status
                self.notify(f"The program exited with status {footer.exit_code}.", title="exit status",
                            severity="warning", timeout=4)
                return
            summary = (last or "").strip().splitlines()[-1:] or [f"exit code {footer.exit_code}"]
            self.push_screen(ErrorScreen(
                "The program raised", f"{summary[0]}\nExit code {footer.exit_code}. The traceback is in the "
                "output pane; the lanes are drawn up to the failure.", (last or "").strip(),
            ))

    def action_stop(self) -> None:
        if self.current_run is not None:
            self.current_run.stop("stopped by user")
        if self._compare_token is not None:
            self._compare_token = None
            if self._compare_run is not None:
                self._compare_run.stop("stopped by user")
            self.sub_title = "compare · stopped"
            self._refresh_view()

    def action_rerun(self) -> None:
        if self.scenario is not None and self.scenario.name == compare.ALL:
            self.run_scenario(compare.ALL)
        elif self._target is not None:
            self.run_target(self._target)

    def on_unmount(self) -> None:
        self.action_stop()

    # -- the cursor ------------------------------------------------------------------------------

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if isinstance(self.screen, ModalScreen) and action not in ("quit", "command_palette"):
            return False
        if action in ("step", "event") and isinstance(self.focused, Input):
            return False  # its cursor's keys (the priority bindings above defer to it)
        needs_timeline = {"step", "event", "lane", "lane_switch", "jump", "play", "zoom", "fit", "axis",
                          "export", "find", "warnings"}
        if action in needs_timeline and (self.timeline is None or self.timeline.n_events == 0):
            return None
        if action == "stop" and self.current_run is None and self._compare_token is None:
            return None
        if action == "rerun" and self._target is None and self.scenario is None:
            return None
        return True

    def _switch_cursor(self, k: int) -> Cursor:
        tl = self.timeline
        assert tl is not None
        i = tl.switch_event(k)
        return Cursor(event=i, t=tl.event_time(i), switch=k, on_switch=True)

    def _event_cursor(self, i: int) -> Cursor:
        tl = self.timeline
        assert tl is not None
        return Cursor(event=i, t=tl.event_time(i), switch=tl.switch_position(i) - 1, on_switch=tl.is_switch(i))

    def _move(self, cursor: Cursor | None, *, user: bool = True) -> None:
        """Put the cursor somewhere; a user's move stops following the live run."""
        if user:
            self.follow = False
        self.cursor = cursor
        if cursor is not None:
            window = self.windows[self.axis]
            if window is not None:
                lo, hi = self._domain()
                self.windows[self.axis] = window.showing(self._position(cursor), lo, hi)
        self._refresh_view()

    def goto_switch(self, k: int) -> None:
        """Move the cursor to switch k (clamped; negative counts from the end)."""
        tl = self.timeline
        if tl is None or tl.n_switches == 0:
            return
        if k < 0:
            k += tl.n_switches
        self._move(self._switch_cursor(max(0, min(tl.n_switches - 1, k))))

    def goto_event(self, i: int) -> None:
        """Move the cursor to event i."""
        if self.timeline is not None and 0 <= i < self.timeline.n_events:
            self._move(self._event_cursor(i))

    def action_step(self, delta: int) -> None:
        tl = self.timeline
        if tl is None or tl.n_switches == 0:
            return
        c = self.cursor
        if c is None:
            k = 0 if delta > 0 else tl.n_switches - 1
        elif c.on_switch or delta > 0:
            k = c.switch + delta
        else:
            k = c.switch  # between switches: the one before is one step back
        self._move(self._switch_cursor(max(0, min(tl.n_switches - 1, k))))

    def action_event(self, delta: int) -> None:
        tl = self.timeline
        if tl is None or tl.n_events == 0:
            return
        if self.cursor is None:
            i = tl.event_step(0, 0) if delta > 0 else tl.event_step(0, 0)
        else:
            i = tl.event_step(self.cursor.event, delta)
        if i is not None:
            self._move(self._event_cursor(i))

    def action_lane(self, delta: int) -> None:
        tl = self.timeline
        if tl is None or not tl.lanes:
            return
        order = [lane for lane, _ in tl.lane_tree()]
        if self.selected not in order:
            row = 0 if delta > 0 else len(order) - 1
        else:
            row = max(0, min(len(order) - 1, order.index(self.selected) + delta))
        self.selected = order[row]
        self._refresh_view()

    def action_lane_switch(self, delta: int) -> None:
        tl = self.timeline
        if tl is None or tl.n_switches == 0:
            return
        if self.selected is None:
            self.selected = tl.lanes[0].id if self.cursor is None else tl.event_lane(self.cursor.event)
        c = self.cursor
        here = -1 if c is None else c.switch
        if delta < 0 and c is not None and not c.on_switch:
            here += 1  # the switch just before the cursor counts as a previous one
        k = tl.lane_switch(self.selected, here, delta)
        if k is None:
            name = clean(tl.lanes[self.selected].name, one_line=True)
            self.notify(f"{name} has no {'later' if delta > 0 else 'earlier'} switch", timeout=2, markup=False)
            self._refresh_view()
            return
        self._move(self._switch_cursor(k))

    def action_jump(self, where: str) -> None:
        tl = self.timeline
        if tl is None or tl.n_switches == 0:
            return
        if where == "last" and self.current_run is not None:
            self.follow = True  # at the newest switch of a live run: keep following it
            self._move(self._switch_cursor(tl.n_switches - 1), user=False)
            return
        self._move(self._switch_cursor(0 if where == "first" else tl.n_switches - 1))

    @on(LaneDiagram.CellClicked)
    def _cell_clicked(self, message: LaneDiagram.CellClicked) -> None:
        tl = self.timeline
        if tl is None:
            return
        if message.lane is not None:
            self.selected = message.lane
        if message.start is None or message.end is None or tl.n_switches == 0:
            self._refresh_view()
            return
        if self.axis == SWITCH:
            k = int((message.start + message.end) / 2)
        else:
            k = self._switch_in(int(message.start), int(message.end), message.lane)
        self._move(self._switch_cursor(max(0, min(tl.n_switches - 1, k))))

    def _switch_in(self, t0: int, t1: int, lane: int | None) -> int:
        """A switch in [t0, t1): the clicked lane's if it has one there, else the first; else the last before."""
        tl = self.timeline
        assert tl is not None
        first = tl.switch_index_at(t0 - 1) + 1
        last = tl.switch_index_at(t1 - 1)
        if first <= last:
            if lane is not None:
                lanes = tl.switch_lanes()[first:last + 1]
                hits = (lanes == lane).nonzero()[0]
                if len(hits):
                    return first + int(hits[0])
            return first
        return max(last, 0)

    @on(LogView.LineClicked)
    def _log_clicked(self, message: LogView.LineClicked) -> None:
        if self.timeline is not None:
            self.selected = self.timeline.event_lane(message.event)
            self._move(self._event_cursor(message.event))

    # -- play ---------------------------------------------------------------------------------------

    def action_play(self) -> None:
        if self._play_timer is not None:
            self._pause()
            self._refresh_view()
            return
        tl = self.timeline
        if tl is None or tl.n_switches == 0:
            return
        if self.cursor is None or (self.cursor.switch >= tl.n_switches - 1 and self.current_run is None):
            self._move(self._switch_cursor(0))  # at the end: play from the start
        self._play_timer = self.set_interval(self.play_interval, self._play_step, name="play")
        self._refresh_view()

    def _play_step(self) -> None:
        tl = self.timeline
        if tl is None or self.cursor is None:
            self._pause()
            return
        if self.cursor.switch >= tl.n_switches - 1:
            if self.current_run is None:  # live: more may come
                self._pause()
                self._refresh_view()
            return
        self.action_step(1)

    def _pause(self) -> None:
        if self._play_timer is not None:
            self._play_timer.stop()
            self._play_timer = None

    @property
    def playing(self) -> bool:
        return self._play_timer is not None

    def set_pace(self, seconds: float) -> None:
        """Time between steps while playing."""
        self.play_interval = seconds
        if self._play_timer is not None:
            self._pause()
            self._play_timer = self.set_interval(seconds, self._play_step, name="play")
        self.notify(f"playing at one switch every {seconds:g} s", timeout=2)

    # -- zoom and axis ----------------------------------------------------------------------------------

    def _domain(self, axis: str | None = None) -> tuple[float, float]:
        """The whole extent of an axis: time from the first event to just past the last; all switches."""
        tl = self.timeline
        axis = axis or self.axis
        if tl is None:
            return 0.0, 1.0
        if axis == SWITCH:
            return 0.0, float(max(tl.n_switches, 1))
        lo, hi = tl.t_first, tl.t_end
        return float(lo), float(hi + max((hi - lo) // 50, 1))

    def _position(self, cursor: Cursor) -> float:
        return cursor.switch + 0.5 if self.axis == SWITCH else float(cursor.t)

    def window(self) -> Window:
        """The visible window of the current axis (following a live run keeps the newest end in view)."""
        lo, hi = self._domain()
        w = self.windows[self.axis]
        if w is None:
            return Window(lo, hi)
        if self.follow and self.current_run is not None:
            return Window(hi - w.span, hi).clamped(lo, hi)
        return w.clamped(lo, hi)

    def _min_span(self) -> float:
        if self.axis == SWITCH:
            return min(4.0, self._domain()[1])
        return float(max(self.query_one(LaneDiagram).plot_width, 100))

    def action_zoom(self, factor: float) -> None:
        if self.timeline is None:
            return
        lo, hi = self._domain()
        current = self.window()
        around = self._position(self.cursor) if self.cursor is not None else (current.start + current.end) / 2
        zoomed = current.zoomed(factor, around, lo, hi, self._min_span())
        self.windows[self.axis] = None if zoomed.span >= hi - lo else zoomed
        self._refresh_view()

    def action_fit(self) -> None:
        self.windows[self.axis] = None
        self._refresh_view()

    def action_axis(self) -> None:
        self.axis = SWITCH if self.axis == TIME else TIME
        tl = self.timeline
        if self.axis == SWITCH and self.windows[SWITCH] is None and tl is not None:
            width = self.query_one(LaneDiagram).plot_width
            if tl.n_switches > width > 0:  # the teaching view: one column per switch, around the cursor
                k = self.cursor.switch if self.cursor is not None else tl.n_switches - 1
                lo, hi = self._domain()
                self.windows[SWITCH] = Window(k - width / 2, k + width / 2).clamped(lo, hi)
        self._refresh_view()

    # -- help, find, export ----------------------------------------------------------------------------

    def action_help(self) -> None:
        self.push_screen(HelpScreen(KEYS))

    def action_find(self) -> None:
        if self.timeline is None:
            return
        self.push_screen(FindScreen(self._search, self._find_query), self._found)

    def action_warnings(self) -> None:
        tl = self.timeline
        if tl is None:
            return
        from concurview.tui.lints import lints

        found = [Found(lint.text, lint.lane if lint.lane is not None else 0, lint.event) for lint in lints(tl)]
        self.push_screen(WarningsScreen(found), self._found)

    def _search(self, query: str) -> list[Found]:
        """Lanes whose name holds `query`, then runs and waits whose reason does (`work(2)`, `Lock`),
        then log lines (200 results at most)."""
        self._find_query = query
        tl = self.timeline
        if tl is None:
            return []
        q = query.lower()
        found = [Found(f"lane  {lane.name}  ({lane.kind})", lane.id) for lane in tl.lanes if q in lane.name.lower()]
        for i in tl.events_with_reason(query, limit=100).tolist():
            e = tl.event(i)
            found.append(Found(f"{e.kind:<5} {format_time(e.t):>9}  {tl.lanes[e.lane].name}: {e.reason}", e.lane, i))
        for i in tl.events_of_kind("log", "error").tolist():
            text = tl.event_text(i) or ""
            if q in text.lower():
                line = next(ln for ln in text.splitlines() if q in ln.lower()) if "\n" in text else text
                who = tl.lanes[tl.event_lane(i)].name
                found.append(Found(f"log   {format_time(tl.event_time(i)):>9}  {who}: {line.strip()}",
                                   tl.event_lane(i), i))
                if len(found) >= 200:
                    break
        return found

    def _found(self, found: Found | None) -> None:
        if found is None or self.timeline is None:
            return
        self.selected = found.lane
        if found.event is not None:
            self._move(self._event_cursor(found.event))
        else:
            self._refresh_view()

    def action_export(self) -> None:
        tl = self.timeline
        if tl is None:
            return
        # A name from the trace proposes a file name: only its plain characters (no path, no escapes).
        stem = re.sub(r"[^\w.-]+", "_", tl.header.scenario or Path(self.source_name).name.split(".")[0]).strip("._")
        stem = stem or "trace"
        self.push_screen(ExportScreen(str(Path.cwd() / f"{stem}.jsonl")), self._export_to)

    def _export_to(self, path: str | None) -> None:
        if path is None or self.timeline is None:
            return
        out = Path(path).expanduser()
        if out.suffix not in (".jsonl", ".gz"):
            out = out.with_name(out.name + ".jsonl")
        if not out.parent.is_dir():
            self.push_screen(ErrorScreen("Cannot export", f"{out.parent}: no such directory"))
            return
        svg = out.with_name(out.name.split(".")[0] + ".svg")
        inputs = [self._opened_trace] if self._opened_trace else []
        try:
            # Through the same safe output as the trace: never over the trace on screen, a device
            # node or a planted link.
            write_output(svg, self.export_screenshot().encode("utf-8"), inputs)
        except OSError as e:
            self.push_screen(ErrorScreen("Cannot export", str(e)))
            return
        self._write_trace(self.timeline, out, svg, inputs)

    @work(thread=True, group="export")
    def _write_trace(self, tl: Timeline, out: Path, svg: Path, inputs: list[str]) -> None:
        from concurview.engines.tracefile import TraceWriter

        try:
            writer = TraceWriter(out, tl.header, inputs)
            writer.lanes(list(tl.lanes))
            step = 65536
            for start in range(0, tl.n_events, step):
                writer.events([tl.event(i) for i in range(start, min(start + step, tl.n_events))])
            writer.close(tl.footer)
        except OSError as e:
            self.call_from_thread(self.push_screen, ErrorScreen("Cannot export", str(e)))
            return
        self.call_from_thread(self.notify, clean(f"{out}\n{svg}"), title="exported", markup=False)

    # -- drawing ------------------------------------------------------------------------------------------

    def _reset(self, timeline: Timeline) -> None:
        self.timeline = timeline
        self._opened_trace = None
        self.cursor = None
        self.follow = True
        self.selected = None
        self.windows = {TIME: None, SWITCH: None}
        self.query_one(LaneDiagram).timeline = timeline
        self.query_one(LogView).timeline = timeline
        source = self._source(timeline)
        view = self.query_one(SourceView)
        view.source = source
        view.border_title = Content(f"source · {clean(source.name, one_line=True)}" if source else "source · none")

    def _source(self, tl: Timeline) -> Source | None:
        """What the source pane shows: a scenario's own file from the catalogue (concurview's: never a path
        the trace names), else the program's text the trace stores, else why there is none. Nothing here
        opens a file a trace names: a trace is data from anywhere ("source": "/etc/shadow")."""
        h = tl.header
        scenario = self.scenarios.get(h.scenario or "") or catalogue().get(h.scenario or "")
        if scenario is not None:
            try:
                return Source(scenario.path.name, scenario.path.read_text(encoding="utf-8", errors="replace"))
            except OSError as e:
                return Source(scenario.path.name, None, f"cannot read {scenario.path.name}: {e.strerror}")
        named = h.source or h.program
        if named is None and h.scenario is None and h.source_text is None:
            return None
        name = PurePath(named).name if named else h.scenario or "program"
        if h.source_text is not None:
            return Source(name, h.source_text)
        if h.scenario is not None and named is None:
            return Source(name, None, f"scenario {h.scenario} is not in this concurview; its source is not stored "
                                      "in this trace")
        return Source(name, None, h.source_missing or "source not stored in this trace")

    def _refresh_view(self) -> None:
        tl = self.timeline
        try:
            status = self.query_one("#status", InfoLine)
            explain = self.query_one("#explain", InfoLine)
        except NoMatches:
            return  # shutting down: a run's last messages arrive after the widgets left
        if tl is None:
            if self._compare_token is not None:
                return  # the compare's progress is on the status line
            status.text = Content.assemble(("concurview", "bold"), " · pick a scenario and press Enter")
            explain.text = ""
            self._refresh_footer()
            return
        if self.follow and tl.n_switches:
            self.cursor = self._switch_cursor(tl.n_switches - 1)
        elif self.follow and tl.n_events and self.cursor is None:
            self.cursor = self._event_cursor(tl.n_events - 1)
        if self.selected is None and tl.lanes:
            self.selected = tl.lanes[0].id
        diagram = self.query_one(LaneDiagram)
        diagram.version = tl.n_events
        diagram.axis = self.axis
        diagram.window = self.window()
        diagram.cursor = self.cursor
        diagram.selected = self.selected
        explain.text = self._explanation(tl)
        status.text = self._status(tl)
        self._refresh_footer()
        # The diagram and the explanation paint first; the source and output panes follow a frame later
        # (their scrolling repaints most of the screen: done together, a step took three times as long).
        if not self._panes_pending:
            self._panes_pending = True
            self.call_after_refresh(self._refresh_panes)

    def _refresh_panes(self) -> None:
        self._panes_pending = False
        tl = self.timeline
        if tl is None or self._exit:
            return
        try:
            log = self.query_one(LogView)
            source = self.query_one(SourceView)
        except NoMatches:
            return
        log.version = tl.n_events
        log.cursor_t = None if (self.follow and self.current_run is not None) or self.cursor is None \
            else self.cursor.t
        source.marks = self._source_marks(tl)

    def _refresh_footer(self) -> None:
        """Re-check which keys apply, only when that can have changed (the footer rebuilds itself)."""
        key = (self.timeline is None or self.timeline.n_events == 0, self.current_run is None and
               self._compare_token is None, self.scenario is None and self._target is None)
        if key != self._bindings_key:
            self._bindings_key = key
            self.refresh_bindings()

    def _explanation(self, tl: Timeline) -> Content:
        c = self.cursor
        if c is None:
            return Content("waiting for the first switch ..." if self.current_run is not None else "no switches")
        if c.on_switch:
            text = tl.explain(c.switch)
        else:
            after = f"  · after switch #{c.switch + 1}" if c.switch >= 0 else "  · before the first switch"
            text = tl.describe_event(c.event) + after
        line = Content(clean(text, one_line=True))  # names, reasons, output: the trace's text
        if self.selected is not None:
            line = Content.assemble(line, "\n", self._selected_line(tl, self.selected, c.t))
        return line

    def _selected_line(self, tl: Timeline, lane: int, t: int) -> Content:
        state, ev = tl.state_at(lane, t)
        info = tl.lanes[lane]
        words = [f"{info.name} ({info.kind})", STATE_NAMES[state]]
        blocker = tl.blocker_at(lane, t) if tl.block_spans() or state == READY_S else None
        if ev is not None and state == BLOCKING:
            from concurview.tui.store import blocking_call  # loaded: a trace is shown

            e = tl.event(ev)
            words[-1] = f"blocking: {blocking_call(e.reason)}" + (f" at {e.where}" if e.where else "")
            words[-1] += f" blocks {tl.blocked_what(lane)}"
            words.append(f"since {format_time(e.t)}")
        elif ev is not None and state not in (NONE, DONE):
            e = tl.event(ev)
            if blocker is not None and state == READY_S:
                words[-1] = f"ready, but {tl.blocked_what(blocker)} is blocked by {tl.lanes[blocker].name}"
            elif e.reason:
                words[-1] += f": {e.reason}"
            if e.where:
                words[-1] += f" at {e.where}"
            if blocker is not None and state != READY_S:
                words[-1] += f" (its thread is blocked by {tl.lanes[blocker].name})"
            words.append(f"since {format_time(e.t)}")
        return Content.styled(clean("selected: " + " · ".join(words), one_line=True), "$text-muted")

    def _status(self, tl: Timeline) -> Content:
        if self.current_run is not None:
            state = ("live", "bold $text-success")
        elif tl.complete:
            state = ("recorded", "")
        else:
            state = ("incomplete", "bold $text-error")
        name = clean(tl.header.scenario or PurePath(tl.header.program or self.source_name or "trace").name,
                     one_line=True)
        # Most important first: a narrow terminal cuts the end of the line.
        parts: list = [(name, "bold"), " · ", state]
        n_warn = self._warning_count(tl)
        if n_warn:
            parts += [" · ", (f"{n_warn} warning{'s' if n_warn != 1 else ''} (w)", "bold $text-warning")]
        if tl.dropped:
            parts += [" · ", (f"{tl.dropped} events dropped", "bold $text-warning")]
        gil = tl.gil_view()  # what the GIL view saw, in one line ("GIL view: on", "free-threaded: no GIL")
        if gil:
            short = gil.split(" (", 1)[0]
            parts.append((f" · {clean(short, one_line=True)}", "" if short == "GIL view: on" else "$text-warning"))
        if self.playing:
            parts.append((" · ▶ playing", "bold $text-accent"))
        elif self.follow and self.current_run is not None:
            parts.append((" · following", "$text-accent"))
        if self.cursor is not None:
            parts.append(f" · cursor {format_time(self.cursor.t)} of {format_time(tl.t_end)}")
        else:
            parts.append(f" · elapsed {format_time(tl.t_end)}")
        parts.append(" · switch axis" if self.axis == SWITCH else " · time axis")
        window = self.windows[self.axis]
        if window is not None:
            lo, hi = self._domain()
            parts.append(f" ×{(hi - lo) / window.span:.3g}")
        parts.append(f" · {tl.n_switches} switches · {len(tl.lanes)} lanes · {tl.n_events} events")
        if not tl.dropped:
            parts.append(" · 0 dropped")
        return Content.assemble(*parts)

    def _warning_count(self, tl: Timeline) -> int:
        """How many lints the trace has so far (none without a block or the GIL view: nothing to compute)."""
        if not tl.block_spans() and not tl.has_samples:
            return 0
        from concurview.tui.lints import lints

        return len(lints(tl))

    def _source_marks(self, tl: Timeline) -> tuple[SourceMark, ...]:
        """Where each lane is at the cursor, for the source pane: the lane that runs now first."""
        name = self.query_one(SourceView).file_name
        c = self.cursor
        if name is None or c is None:
            return ()
        current = tl.event_lane(c.event) if c.on_switch else (
            tl.switch_lanes()[c.switch] if c.switch >= 0 else None)
        lanes = [lane.id for lane in tl.lanes[:256]]
        if current is not None and current not in lanes:
            lanes.insert(0, int(current))
        marks = []
        for lane in lanes:
            state, where = tl.where_at(lane, c.t)
            if where is None or state in (NONE, DONE):
                continue
            file, _, line = where.rpartition(":")
            if not line.isdigit() or Path(file).name != name:
                continue
            marks.append(SourceMark(int(line), tl.lanes[lane].name, state, lane == current))
        marks.sort(key=lambda m: (not m.current, m.state != RUNNING))
        return tuple(marks)


def _with_compare(scenarios: Mapping[str, Scenario]) -> Mapping[str, Scenario]:
    """The picker's catalogue plus the stacked compare entry, just before compare-models."""
    base = scenarios.get(compare.SCENARIO)
    if base is None or compare.ALL in scenarios:
        return scenarios
    out: dict[str, Scenario] = {}
    for name, s in scenarios.items():
        if name == compare.SCENARIO:
            out[compare.ALL] = compare.picker_entry(base)
        out[name] = s
    return out


def make_app(scenario: str | None = None, params: dict | None = None, trace: str | None = None,
             run_timeout: float | None = 120.0, overrides: dict[str, dict] | None = None, *,
             scenarios: Mapping[str, Scenario] | None = None, play_interval: float = 0.5,
             runner: Callable[[Target, float | None], Run] | None = None,
             program: Target | None = None) -> ConcurviewApp:
    """The one way to build the app, for the CLI and the tests alike.

    `scenarios` replaces the catalogue the picker shows (tests pin it); `play_interval`
    is the time between steps while playing; `runner(target, timeout)` starts a run
    (default: a real traced child; tests replay recorded traces). `program` runs the
    user's own program live (`concurview run SCRIPT`); when the app quits,
    `app.program_exit` is the program's exit code if it ran to its end, else None.
    """
    return ConcurviewApp(scenario=scenario, params=params, trace=trace, run_timeout=run_timeout,
                         overrides=overrides, scenarios=scenarios, play_interval=play_interval, runner=runner,
                         program=program)
