"""The concurview app: scenario picker, live lane diagram, explanation line and log pane; one make_app() factory."""

from __future__ import annotations

from pathlib import Path

from textual import on, work
from textual.app import App, ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.message import Message
from textual.widgets import Footer, Header, OptionList, RichLog, Static
from textual.widgets.option_list import Option

from concurview.engines.events import Event, Lane
from concurview.engines.runner import Run, Target
from concurview.scenarios import TOPICS, Scenario, catalogue
from concurview.tui.lanes import LaneDiagram
from concurview.tui.store import Timeline, format_time, load


class ConcurviewApp(App[int]):
    """Pick a scenario, watch it run, step through its switches."""

    CSS_PATH = "concurview.tcss"
    TITLE = "concurview"

    BINDINGS = [
        Binding("enter", "run_selected", "Run", show=True, priority=False),
        Binding("left", "step(-1)", "◀ switch"),
        Binding("right", "step(1)", "switch ▶"),
        Binding("home", "jump('first')", "First", show=False),
        Binding("end", "jump('last')", "Last", show=False),
        Binding("r", "rerun", "Rerun"),
        Binding("s", "stop", "Stop"),
        Binding("q", "quit", "Quit"),
    ]

    class BatchArrived(Message):
        """Lanes and events streamed in from the running scenario."""

        def __init__(self, run: Run, lanes: list[Lane], events: list[Event], dropped: int) -> None:
            super().__init__()
            self.run, self.lanes, self.events, self.dropped = run, lanes, events, dropped

    class RunEnded(Message):
        """The run's processes are gone; `run.footer()` says how it ended."""

        def __init__(self, run: Run) -> None:
            super().__init__()
            self.run = run

    def __init__(self, scenario: str | None = None, params: dict | None = None,
                 trace: str | None = None, run_timeout: float | None = 120.0,
                 overrides: dict[str, dict] | None = None) -> None:
        super().__init__()
        self._initial_scenario = scenario
        # Parameters per scenario name, applied whenever that scenario runs.
        self.overrides: dict[str, dict] = dict(overrides or {})
        if scenario and params:
            self.overrides[scenario] = dict(params)
        self._params: dict = {}
        self._trace_path = trace
        self.run_timeout = run_timeout
        self.timeline: Timeline | None = None
        self.scenario: Scenario | None = None
        self.current_run: Run | None = None
        self.switch = -1  # current switch index; -1 = follow the newest while live
        self.follow = True
        self._logged = 0

    def compose(self) -> ComposeResult:
        yield Header(show_clock=False)
        with Horizontal(id="main"):
            with Vertical(id="picker-pane"):
                yield OptionList(*self._picker_options(), id="picker")
                yield Static("", id="description")
            with Vertical(id="view"):
                yield Static("", id="status")
                yield LaneDiagram(id="lanes")
                yield Static("", id="explain")
                yield RichLog(id="log", wrap=False, markup=False, highlight=False, max_lines=5000)
        yield Footer()

    def _picker_options(self) -> list[Option | None]:
        options: list[Option | None] = []
        topic = None
        for s in catalogue().values():
            if s.topic != topic:
                topic = s.topic
                options.append(Option(f"── {TOPICS.get(topic, topic)}", disabled=True))
            options.append(Option(f"  {s.name}", id=s.name))
        return options

    def on_mount(self) -> None:
        picker = self.query_one("#picker", OptionList)
        if self._trace_path:
            self.query_one("#picker-pane").display = False
            self._open_trace(self._trace_path)
            self.query_one("#lanes", LaneDiagram).focus()
        elif self._initial_scenario:
            picker.highlighted = picker.get_option_index(self._initial_scenario)
            self.start(catalogue()[self._initial_scenario])
        else:
            first = next((i for i, o in enumerate(picker.options) if not o.disabled), None)
            picker.highlighted = first
            picker.focus()
        self._update_status()

    # -- picker --------------------------------------------------------------

    @on(OptionList.OptionHighlighted, "#picker")
    def _highlighted(self, event: OptionList.OptionHighlighted) -> None:
        s = catalogue().get(event.option.id or "")
        if s is None:
            return
        params = "  ".join(f"{k}={v}" for k, v in s.params.items())
        self.query_one("#description", Static).update(
            f"[b]{s.title}[/b]\n\n{s.description.strip()}\n\n[dim]parameters: {params or 'none'}[/dim]")

    @on(OptionList.OptionSelected, "#picker")
    def _selected(self, event: OptionList.OptionSelected) -> None:
        s = catalogue().get(event.option.id or "")
        if s is not None:
            self.start(s)

    def action_run_selected(self) -> None:
        picker = self.query_one("#picker", OptionList)
        if picker.highlighted is not None:
            option = picker.get_option_at_index(picker.highlighted)
            if option.id in catalogue():
                self.start(catalogue()[option.id])

    # -- runs ------------------------------------------------------------------

    def start(self, scenario: Scenario) -> None:
        """Run a scenario live with its overrides; any run still going is stopped first."""
        self.action_stop()
        self.scenario = scenario
        self._params = scenario.coerce({}) | self.overrides.get(scenario.name, {})
        run = Run(Target(str(scenario.path), scenario.name, self._params), timeout=self.run_timeout)
        self.current_run = run
        self._reset(Timeline(run.header))
        self.sub_title = f"{scenario.name} · live"
        self.query_one("#lanes", LaneDiagram).focus()
        self._feed(run)

    @work(thread=True, exclusive=True, group="run")
    def _feed(self, run: Run) -> None:
        for batch in run:
            self.post_message(self.BatchArrived(run, batch.lanes, batch.events, batch.dropped))
        self.post_message(self.RunEnded(run))

    def on_concurview_app_batch_arrived(self, message: BatchArrived) -> None:
        if message.run is not self.current_run or self.timeline is None:
            return
        self.timeline.add(message.lanes, message.events)
        self.timeline.dropped = message.dropped
        self._refresh_view()

    def on_concurview_app_run_ended(self, message: RunEnded) -> None:
        if message.run is not self.current_run or self.timeline is None:
            return
        footer = message.run.footer()
        self.timeline.finish(footer)
        state = "recorded" if footer.complete else f"incomplete: {footer.reason}"
        self.sub_title = f"{self.timeline.header.scenario} · {state}"
        self.current_run = None
        self._refresh_view()

    def action_stop(self) -> None:
        if self.current_run is not None:
            self.current_run.stop("stopped by user")

    def action_rerun(self) -> None:
        if self.scenario is not None:
            self.start(self.scenario)

    def _open_trace(self, path: str) -> None:
        tl = load(path)
        self.scenario = None
        self._reset(tl)
        state = "recorded" if tl.complete else "incomplete"
        self.sub_title = f"{Path(path).name} · {state}"
        self.follow = False
        self.switch = 0 if tl.n_switches else -1
        self._refresh_view()

    # -- stepping --------------------------------------------------------------

    def action_step(self, delta: int) -> None:
        tl = self.timeline
        if tl is None or tl.n_switches == 0:
            return
        current = self.switch if self.switch >= 0 else tl.n_switches - 1
        self.switch = max(0, min(tl.n_switches - 1, current + delta))
        self.follow = False
        self._refresh_view()

    def action_jump(self, where: str) -> None:
        tl = self.timeline
        if tl is None or tl.n_switches == 0:
            return
        self.switch = 0 if where == "first" else tl.n_switches - 1
        self.follow = False
        self._refresh_view()

    # -- drawing -----------------------------------------------------------------

    def _reset(self, timeline: Timeline) -> None:
        self.timeline = timeline
        self.switch = -1
        self.follow = True
        self._logged = 0
        self.query_one("#log", RichLog).clear()

    def _refresh_view(self) -> None:
        tl = self.timeline
        if tl is None:
            return
        diagram = self.query_one("#lanes", LaneDiagram)
        end = max(tl.t_end, 1)
        diagram.show(tl, (0, end + end // 50 + 1))
        explain = self.query_one("#explain", Static)
        if tl.n_switches:
            k = tl.n_switches - 1 if self.follow else self.switch
            diagram.cursor_t = tl.switch(k).t
            explain.update(tl.explain(k))
        else:
            explain.update("no switches yet")
        self._append_logs()
        self._update_status()

    def _append_logs(self) -> None:
        tl = self.timeline
        assert tl is not None
        log = self.query_one("#log", RichLog)
        entries = tl.events_of_kind("log", "error")
        for i in entries[self._logged:]:
            e = tl.event(int(i))
            who = tl.lanes[e.lane].name
            for line in (e.text or "").splitlines() or [""]:
                log.write(f"{format_time(e.t):>10}  {who:<12} {line}")
        self._logged = len(entries)

    def _update_status(self) -> None:
        tl = self.timeline
        status = self.query_one("#status", Static)
        if tl is None:
            status.update("pick a scenario and press Enter")
            return
        live = "live" if self.current_run is not None else ("recorded" if tl.complete else "incomplete")
        status.update(
            f"{tl.header.scenario or tl.header.program or ''} · {live} · {tl.n_events} events · "
            f"{len(tl.lanes)} lanes · {tl.n_switches} switches · {tl.dropped} dropped · "
            f"{format_time(tl.t_end)}")

    def on_unmount(self) -> None:
        self.action_stop()


def make_app(scenario: str | None = None, params: dict | None = None, trace: str | None = None,
             run_timeout: float | None = 120.0, overrides: dict[str, dict] | None = None) -> ConcurviewApp:
    """The one way to build the app, for the CLI and the tests alike."""
    return ConcurviewApp(scenario=scenario, params=params, trace=trace, run_timeout=run_timeout,
                         overrides=overrides)
