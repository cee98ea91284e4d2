"""The concurview app: the view wiring of the picker, lane diagram, explanation, source and log panes.

Three parts, three files: this one composes the screen, binds the keys and repaints the panes from
the state of the other two; the run controller (tui/runs.py, a mixin) starts runs and opens traces;
the navigator (tui/navigator.py, no Textual) is the cursor, selection, axis and zoom the keys move.
The words come from the narrative (trace/narrative.py). One make_app() factory builds it.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import replace
from pathlib import Path, PurePath
from typing import TYPE_CHECKING

from textual import on
from textual.app import App, ComposeResult, SystemCommand
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.content import Content
from textual.css.query import NoMatches
from textual.screen import ModalScreen, Screen
from textual.timer import Timer
from textual.widgets import Input

from ..engines.runner import Run, Target
from ..scenarios import Scenario, catalogue
from ..trace import compare
from .axis import SWITCH, Window
from .commands import ScenarioCommands
from .keybar import KeyBar
from ..trace.narrative import describe_event, explain, format_time, place_at, selected_line
from .lanes import LaneDiagram
from .navigator import Navigator
from .panes import InfoLine, LogView, Source, SourceMark, SourceView
from .picker import ScenarioPicker
from .compositor import CroppedScreen
from .runs import NARROW, RunControl
from .screens import FilterScreen, FindScreen, Found, HelpScreen, WarningsScreen
from ..trace.states import BLOCKING, DONE, NONE, READY_S, RUNNING, WAITING
from ..trace.text import clean

if TYPE_CHECKING:
    from ..trace.store import Timeline


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
    ("f", "fold / unfold every family (lanes named alike but for their numbers: 8 or more fold into one row)"),
    ("enter", "on the diagram: unfold the selected family's row, or fold the selected lane's family back"),
    ("l", "filter the lanes: name, kind:task, state:wait (at the cursor), waited:Lock; esc clears it"),
    ("w", "warnings: what to notice (a task or greenlet that blocked its loop, hub or thread; threads that shared the GIL)"),
    ("p", "the scenario picker: show it and go to it; p again hides it"),
    ("tab", "move between the picker, its parameters and the diagram"),
    ("?", "this help"),
    ("q", "quit"),
    ("ctrl+p", "command palette: scenarios, parameters, view commands"),
    ("mouse", "click a cell to move the cursor there; click a log line to jump to it"),
)
PACES = (0.1, 0.25, 0.5, 1.0, 2.0)


class ConcurviewApp(RunControl, App[int]):
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
        Binding("f", "fold", "fold", show=False),  # in the ? help and the palette; the footer is full
        Binding("l", "filter", "filter", show=False),
        Binding("escape", "clear_filter", "clear filter", show=False),
        Binding("w", "warnings", "warnings", show=False),  # the status line says "N warnings (w)" when there are
        Binding("p", "toggle_picker", "picker"),
        Binding("question_mark", "help", "help", key_display="?"),
        Binding("q", "quit", "quit"),
    ]

    def __init__(self, scenario: str | None = None, params: dict | None = None,
                 trace: str | None = None, run_timeout: float | None = 120.0,
                 overrides: dict[str, dict] | None = None, *,
                 scenarios: Mapping[str, Scenario] | None = None, play_interval: float = 0.5,
                 runner: Callable[[Target, float | None], Run] | None = None,
                 program: Target | None = None) -> None:
        super().__init__()
        self.nav = Navigator(live=lambda: self.current_run is not None)
        self._init_runs(runner, program)
        self.scenarios: Mapping[str, Scenario] = _with_compare(catalogue() if scenarios is None else scenarios)
        self._panes_pending = False
        self._initial_scenario = scenario
        # Parameters per scenario name, applied whenever that scenario runs.
        self.overrides: dict[str, dict] = {k: dict(v) for k, v in (overrides or {}).items()}
        if scenario and params:
            self.overrides[scenario] = dict(params)
        self._trace_path = trace
        self.run_timeout = run_timeout
        self.play_interval = play_interval
        self.scenario: Scenario | None = None
        self._play_timer: Timer | None = None
        self._find_query = ""
        self._bindings_key: tuple | None = None
        self._lint_count: tuple | None = None

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
        if self.timeline is not None:
            yield SystemCommand("Fold / unfold families", "lanes named alike but for their numbers, 8 or more: "
                                "one row each (f)", self.action_fold)
            yield SystemCommand("Filter lanes", "name, kind:task, state:wait, waited:Lock (l)", self.action_filter)
            if self.nav.lane_filter is not None:
                yield SystemCommand("Clear the lane filter", "show every lane again (esc)", self.action_clear_filter)
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
        if self._toggle_selected_family():
            return
        name = self.query_one(ScenarioPicker).highlighted
        if name is not None:
            self.run_scenario(name)

    def action_toggle_picker(self) -> None:
        picker = self.query_one(ScenarioPicker)
        inside = self.focused is not None and picker in self.focused.ancestors_with_self
        self._show_picker(not picker.display or not inside)  # shown but not focused: go to it

    def _show_picker(self, show: bool = True) -> None:
        picker = self.query_one(ScenarioPicker)
        picker.display = show
        if show and picker.highlighted is None:
            picker.highlight(self.scenario.name if self.scenario is not None else None)
        if show:
            self.query_one("#picker").focus()
        elif self.focused is None or picker in self.focused.ancestors:
            self.query_one(LaneDiagram).focus()

    # -- the cursor: the navigator's state, and the keys that move it --------------------------------

    timeline = property(lambda self: self.nav.timeline, lambda self, v: setattr(self.nav, "timeline", v))
    cursor = property(lambda self: self.nav.cursor, lambda self, v: setattr(self.nav, "cursor", v))
    follow = property(lambda self: self.nav.follow, lambda self, v: setattr(self.nav, "follow", v))
    axis = property(lambda self: self.nav.axis, lambda self, v: setattr(self.nav, "axis", v))
    windows = property(lambda self: self.nav.windows, lambda self, v: setattr(self.nav, "windows", v))
    selected = property(lambda self: self.nav.selected, lambda self, v: setattr(self.nav, "selected", v))

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if isinstance(self.screen, ModalScreen) and action not in ("quit", "command_palette"):
            return False
        if action in ("step", "event") and isinstance(self.focused, Input):
            return False  # its cursor's keys (the priority bindings above defer to it)
        needs_timeline = {"step", "event", "lane", "lane_switch", "jump", "play", "zoom", "fit", "axis",
                          "export", "find", "warnings", "fold", "filter"}
        if action in needs_timeline and (self.timeline is None or self.timeline.n_events == 0):
            return None
        if action == "clear_filter" and self.nav.lane_filter is None:
            return None
        if action == "stop" and self.current_run is None and self._compare_token is None:
            return None
        if action == "rerun" and self._target is None and self.scenario is None:
            return None
        return True

    def _moved(self, moved: bool | None) -> None:
        if moved:
            self._refresh_view()

    def goto_switch(self, k: int) -> None:
        """Move the cursor to switch k (clamped; negative counts from the end)."""
        self._moved(self.nav.goto_switch(k))

    def goto_event(self, i: int) -> None:
        """Move the cursor to event i."""
        self._moved(self.nav.goto_event(i))

    def action_step(self, delta: int) -> None:
        self._moved(self.nav.step(delta))

    def action_event(self, delta: int) -> None:
        self._moved(self.nav.event(delta))

    def action_lane(self, delta: int) -> None:
        self._moved(self.nav.lane(delta))

    def action_lane_switch(self, delta: int) -> None:
        moved = self.nav.lane_switch(delta)
        if moved is None:
            tl, lane = self.nav.timeline, self.nav.selected
            assert tl is not None and lane is not None
            name = clean(tl.lanes[lane].name, one_line=True)
            self.notify(f"{name} has no {'later' if delta > 0 else 'earlier'} switch", timeout=2, markup=False)
            moved = True  # the selection may have changed
        self._moved(moved)

    def action_jump(self, where: str) -> None:
        self._moved(self.nav.jump(where))

    @on(LaneDiagram.CellClicked)
    def _cell_clicked(self, message: LaneDiagram.CellClicked) -> None:
        self._moved(self.nav.click(message.lane, message.start, message.end, message.family))

    @on(LaneDiagram.FamilyToggled)
    def _family_toggled(self, message: LaneDiagram.FamilyToggled) -> None:
        self.selected = message.lane
        self._moved(self.nav.toggle_family(message.family))

    # -- folding and the lane filter ------------------------------------------------------------------

    def action_fold(self) -> None:
        self.nav.toggle_folding()
        self.notify("families folded (8 lanes or more)" if self.nav.folding else "every lane on its own row",
                    timeout=2)
        self._refresh_view()

    def action_filter(self) -> None:
        current = self.nav.lane_filter.text if self.nav.lane_filter is not None else ""
        self.push_screen(FilterScreen(current), self._filter_typed)

    def _filter_typed(self, text: str | None) -> None:
        if text is None:
            return
        try:
            self.nav.set_filter(text)
        except ValueError as e:
            self.notify(str(e), severity="error", timeout=4, markup=False)
            return
        self.query_one(LaneDiagram).scroll_to(y=0, animate=False, immediate=True)
        self._refresh_view()

    def action_clear_filter(self) -> None:
        self._filter_typed("")

    def _toggle_selected_family(self) -> bool:
        """Enter on the diagram: unfold the selected family's row, or fold the selected lane's family."""
        if self.timeline is None or self.focused is not self.query_one(LaneDiagram):
            return False
        family = self.nav.family_of_selected()
        if family is None:
            return False
        self._moved(self.nav.toggle_family(family))
        return True

    @on(LogView.LineClicked)
    def _log_clicked(self, message: LogView.LineClicked) -> None:
        if self.timeline is not None:
            self.selected = self.timeline.event_lane(message.event)
            self._moved(self.nav.goto_event(message.event))

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
            self.nav.move(self.nav.switch_cursor(0))  # at the end: play from the start
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

    def window(self) -> Window:
        """The visible window of the current axis (following a live run keeps the newest end in view)."""
        return self.nav.window()

    def action_zoom(self, factor: float) -> None:
        self._moved(self.nav.zoom(factor, self.query_one(LaneDiagram).plot_width))

    def action_fit(self) -> None:
        self.nav.fit()
        self._refresh_view()

    def action_axis(self) -> None:
        self.nav.toggle_axis(self.query_one(LaneDiagram).plot_width)
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
        from ..trace.lints import lints

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
            self.nav.goto_event(found.event)
        self._refresh_view()

    # -- drawing ------------------------------------------------------------------------------------------

    def _reset(self, timeline: Timeline) -> None:
        self.nav.reset(timeline)
        self._opened_trace = None
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
        self.nav.catch_up()
        diagram = self.query_one(LaneDiagram)
        diagram.rows = self.nav.rows()  # first: the watchers below lay out these rows
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
            text = explain(tl, c.switch)
        else:
            after = f"  · after switch #{c.switch + 1}" if c.switch >= 0 else "  · before the first switch"
            text = describe_event(tl, c.event) + after
        line = Content(clean(text, one_line=True))  # names, reasons, output: the trace's text
        if self.selected is not None:
            line = Content.assemble(line, "\n", self._selected_line(tl, self.selected, c.t, c.event))
        return line

    def _selected_line(self, tl: Timeline, lane: int, t: int, event: int | None = None) -> Content:
        return Content.styled(clean(selected_line(tl, lane, t, event), one_line=True), "$text-muted")

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
        changed = self.changed_params()  # a `patch=false` run must not look like the default one
        if changed:
            parts[1:1] = [" · ", (clean(changed, one_line=True), "bold")]
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
            lo, hi = self.nav.domain()
            parts.append(f" ×{(hi - lo) / window.span:.3g}")
        parts.append(f" · {tl.n_switches} switches · {self._lanes_shown(tl)} · {tl.n_events} events")
        if not tl.dropped:
            parts.append(" · 0 dropped")
        return Content.assemble(*parts)

    def _lanes_shown(self, tl: Timeline) -> str:
        """`M lanes`; with a filter `N of M lanes (filter: ...)`; with folded families how many rows they
        took; a folded family selected: how many of its members are in each state at the cursor."""
        rows = self.nav.rows()
        text = f"{len(tl.lanes)} lanes"
        if self.nav.lane_filter is not None:
            text = f"{rows.n_shown} of {len(tl.lanes)} lanes (filter: {clean(self.nav.lane_filter.text, one_line=True)})"
        n_folded = int((rows.family >= 0).sum())
        if n_folded:
            text += f" · {n_folded} famil{'y' if n_folded == 1 else 'ies'} folded"
        row = rows.row_of(self.selected)
        if row is not None and rows.is_family(row) and self.cursor is not None:
            from ..trace.store import family_counts_at

            family = int(rows.family[row])
            counts, exact = family_counts_at(tl, rows.members(family), self.cursor.t)
            busy = int(counts[RUNNING] + counts[READY_S])
            kind = tl.lanes[int(rows.lane[row])].kind
            about = "" if exact else "≈"  # many present at once: the family's nearest sample, scaled
            text += (f" · {int(rows.sizes[family])} {clean(rows.labels[family], one_line=True)} {kind}s: "
                     f"{about}{busy} running-ready, {about}{int(counts[WAITING])} waiting")
            if counts[BLOCKING]:
                text += f", {int(counts[BLOCKING])} blocking"
        return text

    def _warning_count(self, tl: Timeline) -> int:
        """How many lints the trace has so far (none without a block, the GIL view or a finished run's
        greenlets: nothing to compute); counted once per trace version (lints walk the lanes: a key press
        must not)."""
        if not tl.block_spans() and not tl.has_samples and (
                tl.footer is None or "greenlet" not in tl.lanes.kind_codes()[1]):
            return 0
        key = (id(tl), tl.n_events)
        if self._lint_count is None or self._lint_count[0] != key:
            from ..trace.lints import lints

            self._lint_count = (key, len(lints(tl)))
        return self._lint_count[1]

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
            state, where = place_at(tl, lane, c.event)
            if where is None or state in (NONE, DONE):
                continue
            file, _, line = where.rpartition(":")
            if not line.isdigit() or Path(file).name != name:
                continue
            marks.append(SourceMark(int(line), tl.lanes[lane].name, state, lane == current))
        marks.sort(key=lambda m: (not m.current, m.state != RUNNING))
        return tuple(marks)


def _compare_entry(base: Scenario) -> Scenario:
    """The picker's `compare` entry: compare-models on every model, stacked (its parameters minus `model`)."""
    return replace(
        base, name=compare.ALL, title="Compare: all five models, stacked",
        description=("Runs the same IO-bound jobs on each model in turn - " + ", ".join(compare.MODELS)
                     + " - and stacks the runs on one time axis, each starting at 0, so the lesson's "
                     "\"which is faster, and why\" is one screen (as `concurview compare -o` saves it)."
                     "\n\n" + base.description.split("\n\n", 1)[-1]),
        params={k: v for k, v in base.params.items() if k != "model"}, order=base.order - 1,
    )


def _with_compare(scenarios: Mapping[str, Scenario]) -> Mapping[str, Scenario]:
    """The picker's catalogue plus the stacked compare entry, just before compare-models."""
    base = scenarios.get(compare.SCENARIO)
    if base is None or compare.ALL in scenarios:
        return scenarios
    out: dict[str, Scenario] = {}
    for name, s in scenarios.items():
        if name == compare.SCENARIO:
            out[compare.ALL] = _compare_entry(base)
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
