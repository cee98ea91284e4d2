"""The app's run controller: live runs, the stacked compare, opened traces, stop, rerun and export.

A mixin of `ConcurviewApp` (tui/app.py): it starts runs through the runner the app was given, feeds
their batches to the timeline on screen (a worker thread queues them; one message at a time takes
all that queued), finishes the trace when the run ends and reports what went wrong. Where the user
is in the trace is the navigator's (tui/navigator.py); what the screen shows is the app's.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Mapping
from pathlib import Path
from time import monotonic
from typing import TYPE_CHECKING

from textual import work
from textual.content import Content
from textual.message import Message

from ..trace.outfile import write_output
from ..engines.compare import run_model
from ..engines.runner import Run, Target
from ..trace import compare
from .lanes import LaneDiagram
from .panes import InfoLine
from .picker import ScenarioPicker
from .screens import ErrorScreen, ExportScreen
from ..trace.text import clean

if TYPE_CHECKING:
    from textual.timer import Timer

    from ..trace.columns import Columns
    from ..trace.events import Lane
    from ..trace.store import Timeline

LIVE_FRAME = 0.03  # seconds between repaints for a live run's new events (the keys repaint at once)
NARROW = 110  # columns below which a run hides the picker (p shows it again)


class RunControl:
    """Runs and traces for the app: what is on screen comes from here (`_reset` is the app's)."""

    def _init_runs(self, runner, program: Target | None) -> None:
        self.runner = runner or (lambda target, timeout: Run(target, timeout=timeout))
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
        self._opened_trace: str | None = None  # the trace file on screen: an export never writes over it
        self.source_name = ""  # what the status line calls the trace
        self.current_run: Run | None = None

    class BatchArrived(Message, namespace="concurview_app"):
        """Lanes and events streamed in from the running scenario (every batch queued since the last one)."""

        def __init__(self, run: Run) -> None:
            super().__init__()
            self.run = run

    class RunEnded(Message, namespace="concurview_app"):
        """The run's processes are gone; `run.footer()` says how it ended."""

        def __init__(self, run: Run) -> None:
            super().__init__()
            self.run = run

    class CompareProgressed(Message, namespace="concurview_app"):
        """The stacked compare started model `model` (number `index` of `count`)."""

        def __init__(self, token: object, model: str, index: int, count: int) -> None:
            super().__init__()
            self.token, self.model, self.index, self.count = token, model, index, count

    class CompareEnded(Message, namespace="concurview_app"):
        """Every model of the stacked compare ran: `timeline` holds them on one axis (None: stopped)."""

        def __init__(self, token: object, timeline: Timeline | None, rows: list[dict]) -> None:
            super().__init__()
            self.token, self.timeline, self.rows = token, timeline, rows


    # -- runs ------------------------------------------------------------------------------

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
        self._in_step(name)
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
        from ..trace.store import Timeline

        self._reset(Timeline(run.header))
        self.axis = self.nav.initial_axis(live=True)
        self.sub_title = self._title("live")
        self._start_view()
        self._feed(run)
        self._refresh_view()

    def _title(self, state: str) -> str:
        """The header's sub-title: what is on screen, its parameters that are not the defaults, its state
        (`gevent-eat-play · patch=false · recorded`)."""
        params = self.changed_params()
        return clean(self.source_name, one_line=True) + (f" · {clean(params, one_line=True)}" if params else "") \
            + f" · {state}"

    def changed_params(self) -> str:
        """The parameters of the scenario on screen that differ from its defaults (`patch=false`), or ""."""
        tl = self.timeline
        if tl is not None:
            name, params = tl.header.scenario, tl.header.params
        elif self._target is not None:
            name, params = self._target.scenario, self._target.params
        else:
            return ""
        scenario = self.scenarios.get(name or "")
        if scenario is None or not isinstance(params, Mapping):
            return ""
        return scenario.changed(params)

    def _in_step(self, name: str | None) -> None:
        """The picker shows the scenario on screen (its description and parameters), however it started:
        the picker, the command palette, `r`, the command line, an opened trace."""
        if name is not None and name in self.scenarios:
            self.query_one(ScenarioPicker).highlight(name)

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
        self._in_step(compare.ALL)
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

            runs.append(run_model(model, int(params["jobs"]), float(params["job_sleep"]),
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
            self.nav.move(self.nav.switch_cursor(0))
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
        from ..trace.columns import Columns

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
        self.sub_title = self._title(state)
        axis = self.nav.initial_axis()  # all its switches are in: bunched ones read on the switch axis
        if axis != self.axis:
            self.axis = axis
            self.nav.fit()
        self._refresh_view()
        if run.stop_reason == "stopped by user":
            self.notify("Stopped: the trace so far is kept, marked incomplete.", title="run stopped")
        else:
            self._report_problems(self.timeline)

    def open_trace(self, path: str) -> None:
        """Show a recorded trace; an unreadable file becomes an error screen."""
        from ..trace.tracefile import TraceFormatError
        from ..trace.store import load

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
        self._in_step(tl.header.scenario)
        self.source_name = Path(path).name
        self._reset(tl)
        self._opened_trace = path
        self.follow = False
        # Switches bunched into a moment of a longer run are invisible on a time axis: start on
        # the switch axis then (`t` goes back), else on time (or on the axis the user picked).
        self.axis = self.nav.initial_axis()
        self.sub_title = self._title("recorded" if tl.complete else "incomplete")
        if tl.n_switches:
            self.nav.move(self.nav.switch_cursor(0))
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
        from ..trace.tracefile import TraceWriter

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

