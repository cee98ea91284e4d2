"""The app through Textual's pilot, on recorded traces: every key, the screens, live following, tiny terminals."""

from __future__ import annotations

from pathlib import Path

import pytest
from uitraces import diagram_rows, trace, wait_for
from textual.command import CommandPalette
from textual.widgets import Input, OptionList

from concurview.scenarios import TOPICS, catalogue
from concurview.tui.app import KEYS, ConcurviewApp, make_app
from concurview.tui.axis import SWITCH, TIME
from concurview.tui.commands import ScenarioCommands
from concurview.tui.lanes import LaneDiagram
from concurview.tui.panes import LogView, SourceView
from concurview.tui.picker import ScenarioPicker
from concurview.tui.screens import ErrorScreen, ExportScreen, FindScreen, HelpScreen
from concurview.trace.store import RUNNING, WAITING, load

SIZE = (160, 45)


def explain(app: ConcurviewApp) -> str:
    return str(app.query_one("#explain").render())


def status(app: ConcurviewApp) -> str:
    return str(app.query_one("#status").render())


def diagram_text(app: ConcurviewApp) -> str:
    return "\n".join(diagram_rows(app))


def lane_id(app: ConcurviewApp, name: str) -> int:
    return next(lane.id for lane in app.timeline.lanes if lane.name == name)


# -- the picker ---------------------------------------------------------------------------------


async def test_picker_groups_every_scenario_by_topic_and_describes_the_highlighted_one():
    app = make_app()
    async with app.run_test(size=SIZE) as pilot:
        picker = app.query_one("#picker", OptionList)
        assert picker.has_focus
        options = [picker.get_option_at_index(i) for i in range(picker.option_count)]
        names = [o.id for o in options if o.id]
        assert names == list(app.scenarios), "every scenario, in catalogue order"
        assert [n for n in names if n != "compare"] == list(catalogue()), "plus the stacked compare entry"
        headings = [str(o.prompt) for o in options if o.disabled]
        topics = {s.topic for s in catalogue().values()}
        assert len(headings) == len(topics) and all(any(TOPICS.get(t, t) in h for h in headings) for t in topics)
        app.query_one(ScenarioPicker).highlight("asyncio-tasks")
        await pilot.pause()
        description = str(app.query_one("#picker-description").render())
        assert "asyncio: two tasks, one thread" in description and "Watch for" in description
        fields = {i.id: i.value for i in app.query("#picker-params Input")}
        assert fields == {"param-task_sleep": "3.0", "param-task2_sleep": "2.0"}


async def test_enter_runs_the_highlighted_scenario_with_its_edited_parameters(replays):
    runner = replays("asyncio-tasks")
    app = make_app(runner=runner)
    async with app.run_test(size=SIZE) as pilot:
        app.query_one(ScenarioPicker).highlight("asyncio-tasks")
        await pilot.pause()
        field = app.query_one("#param-task_sleep", Input)
        field.value = "0.25"
        await pilot.pause()
        assert app.overrides["asyncio-tasks"]["task_sleep"] == 0.25
        field.value = "soon"  # invalid: the last valid value stays
        await pilot.pause()
        assert field.has_class("-invalid") and app.overrides["asyncio-tasks"]["task_sleep"] == 0.25
        app.query_one("#picker").focus()
        await pilot.press("enter")
        await wait_for(pilot, lambda: runner.runs)
        target = runner.runs[0].target
        assert target.scenario == "asyncio-tasks" and target.params == {"task_sleep": 0.25, "task2_sleep": 2.0}
        assert app.query_one(LaneDiagram).has_focus, "once it runs, the keys step the diagram"


async def test_concurview_name_runs_that_scenario_at_once(replays):
    runner = replays("asyncio-tasks", parts=1)
    app = make_app(scenario="asyncio-tasks", params={"task_sleep": 0.3}, runner=runner)
    async with app.run_test(size=SIZE) as pilot:
        await wait_for(pilot, lambda: runner.runs)
        assert runner.runs[0].target.params["task_sleep"] == 0.3
        assert app.query_one(ScenarioPicker).highlighted == "asyncio-tasks"
        runner.runs[0].release()
        await wait_for(pilot, lambda: app.current_run is None)
        assert "recorded" in status(app) and explain(app).startswith("#7/7")


# -- live runs -------------------------------------------------------------------------------------


async def test_live_view_follows_the_newest_switch_until_the_user_steps(replays):
    runner = replays("asyncio-tasks", parts=3)
    messages = []
    app = make_app(scenario="asyncio-tasks", runner=runner)
    async with app.run_test(size=SIZE, message_hook=messages.append) as pilot:
        await wait_for(pilot, lambda: runner.runs)
        run = runner.runs[0]
        run.release()
        # Live repaints are paced: the store may hold a batch a frame before the cursor reaches it.
        def on_newest() -> bool:
            return app.cursor is not None and app.cursor.switch == app.timeline.n_switches - 1

        await wait_for(pilot, lambda: app.timeline.n_events > 0 and on_newest())
        assert "live" in status(app) and "following" in status(app)
        first = app.timeline.n_switches
        assert app.follow, "following: the cursor is on the newest switch"
        run.release()
        await wait_for(pilot, lambda: app.timeline.n_switches > first and on_newest())
        await pilot.press("left")
        assert not app.follow and app.cursor.switch == app.timeline.n_switches - 2
        stepped = app.cursor
        run.release()
        await wait_for(pilot, lambda: app.current_run is None)
        assert app.cursor == stepped, "after a step the cursor stays put while more arrives"
        assert sum(type(m).__name__ == "BatchArrived" for m in messages) == 3
        assert "recorded" in status(app)


async def test_end_while_live_follows_again_and_stop_keeps_the_trace(replays):
    runner = replays("asyncio-tasks", parts=3)
    app = make_app(scenario="asyncio-tasks", runner=runner)
    async with app.run_test(size=SIZE) as pilot:
        await wait_for(pilot, lambda: runner.runs)
        run = runner.runs[0]
        run.release(2)
        await wait_for(pilot, lambda: run.sent == 2 and app.timeline.n_switches > 2)
        await pilot.press("home")
        assert not app.follow and app.cursor.switch == 0
        await pilot.press("end")
        assert app.follow
        await pilot.press("s")
        await wait_for(pilot, lambda: app.current_run is None)
        assert run.stop_reason == "stopped by user"
        assert not isinstance(app.screen, ErrorScreen), "a stop the user asked for is not an error"
        assert "incomplete" in status(app) and app.timeline.n_events > 0


async def test_r_reruns_the_last_scenario(replays):
    runner = replays("asyncio-tasks", parts=1)
    app = make_app(scenario="asyncio-tasks", runner=runner)
    async with app.run_test(size=SIZE) as pilot:
        await wait_for(pilot, lambda: runner.runs)
        runner.runs[0].release()
        await wait_for(pilot, lambda: app.current_run is None)
        await pilot.press("r")
        await wait_for(pilot, lambda: len(runner.runs) == 2)
        assert runner.runs[1].target.scenario == "asyncio-tasks" and app.timeline.n_events == 0


async def test_a_live_run_that_raises_shows_an_error_screen_and_keeps_the_lanes(replays):
    runner = replays("error-raises", parts=1)
    app = make_app(scenario="asyncio-tasks", runner=runner)
    async with app.run_test(size=SIZE) as pilot:
        await wait_for(pilot, lambda: runner.runs)
        runner.runs[0].release()
        await wait_for(pilot, lambda: isinstance(app.screen, ErrorScreen) and app.screen.query("#error-message"))
        assert "ValueError" in str(app.screen.query_one("#error-message").render())
        await pilot.press("escape")
        assert "MainThread" in diagram_text(app)


# -- stepping ----------------------------------------------------------------------------------------


async def test_left_right_step_between_switches_and_explain_each():
    app = make_app(trace=trace("asyncio-tasks"))
    async with app.run_test(size=SIZE) as pilot:
        assert explain(app).startswith("#1/7") and "MainThread runs (program starts)" in explain(app)
        await pilot.press("right", "right")
        assert app.query_one(LaneDiagram).cursor.switch == 2
        assert explain(app).startswith("#3/7")
        assert "task -> task2: task waits (await sleep(0.3) at asyncio_tasks.py:36); task2 runs" in explain(app)
        await pilot.press("left")
        assert explain(app).startswith("#2/7") and "MainThread hands the thread to task" in explain(app)


async def test_shift_arrows_step_through_every_event():
    app = make_app(trace=trace("asyncio-tasks"))
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("shift+right")
        assert not app.cursor.on_switch and app.cursor.switch == 0
        assert "event 3/26" in explain(app) and "task is created by MainThread" in explain(app)
        assert "after switch #1" in explain(app)
        await pilot.press("right")
        assert app.cursor.switch == 1 and app.cursor.on_switch, "→ from between switches: the next switch"
        await pilot.press("shift+left", "left")
        assert app.cursor.switch == 0, "← from between switches: the switch before"


async def test_up_down_select_lanes_and_brackets_jump_to_their_switches():
    app = make_app(trace=trace("asyncio-tasks"))
    async with app.run_test(size=SIZE) as pilot:
        assert app.selected == lane_id(app, "MainThread")
        await pilot.press("down")
        task = lane_id(app, "task")
        assert app.selected == task and app.query_one(LaneDiagram).selected == task
        assert "selected: task (task)" in explain(app)
        await pilot.press("right_square_bracket")
        assert app.cursor.switch == 1, "task's first switch"
        await pilot.press("right_square_bracket")
        assert app.cursor.switch == 6 and explain(app).startswith("#7/7"), "task's next switch: it resumes"
        await pilot.press("left_square_bracket")
        assert app.cursor.switch == 1
        await pilot.press("up", "up")
        assert app.selected == lane_id(app, "MainThread"), "the first lane stays selected at the top"


async def test_home_and_end_jump_to_the_first_and_last_switch():
    app = make_app(trace=trace("threadpool-shutdown"))
    async with app.run_test(size=SIZE) as pilot:
        n = app.timeline.n_switches
        await pilot.press("end")
        assert app.cursor.switch == n - 1 and explain(app).startswith(f"#{n}/{n}")
        await pilot.press("home")
        assert app.cursor.switch == 0


async def test_space_plays_through_the_switches_and_stops_at_the_end():
    app = make_app(trace=trace("asyncio-tasks"), play_interval=0.1)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("space")
        assert app.playing and "playing" in status(app)
        await wait_for(pilot, lambda: not app.playing)
        assert app.cursor.switch == app.timeline.n_switches - 1
        app.play_interval = 30  # no step may sneak in before the check (a loaded machine is slow)
        await pilot.press("space")
        assert app.playing and app.cursor.switch == 0, "from the end, play starts again at the first switch"
        await pilot.press("space")
        assert not app.playing


async def test_plus_minus_zoom_around_the_cursor_and_zero_fits():
    app = make_app(trace=trace("asyncio-tasks"))
    async with app.run_test(size=SIZE) as pilot:
        diagram = app.query_one(LaneDiagram)
        full = diagram.window
        await pilot.press("right", "right", "plus")
        zoomed = diagram.window
        assert zoomed.span == pytest.approx(full.span / 2)
        assert zoomed.start <= app.cursor.t <= zoomed.end
        before = (app.cursor.t - full.start) / full.span
        assert (app.cursor.t - zoomed.start) / zoomed.span == pytest.approx(before), "the cursor keeps its column"
        await pilot.press("plus", "minus")
        assert diagram.window.span == pytest.approx(full.span / 2)
        await pilot.press("0")
        assert diagram.window == full and app.windows[TIME] is None


async def test_stepping_past_a_zoomed_window_pans_it():
    app = make_app(trace=trace("asyncio-tasks"))
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("plus", "plus", "plus", "end")
        w = app.query_one(LaneDiagram).window
        assert w.start <= app.cursor.t <= w.end


async def test_t_toggles_the_time_axis_and_the_switch_axis():
    app = make_app(trace=trace("asyncio-tasks"))
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("t")
        diagram = app.query_one(LaneDiagram)
        assert diagram.axis == SWITCH and "switch axis" in status(app)
        ruler = diagram.render_line(0).text
        assert "switches" in ruler and "#1" in ruler and "#7" in ruler
        rows = diagram_text(app).splitlines()[1:4]
        # One switch per column block: each task runs in its own columns, MainThread under every one.
        assert all("█" in row for row in rows)
        await pilot.press("t")
        assert diagram.axis == TIME and "time axis" in status(app)


async def test_clicking_a_cell_selects_its_lane_and_moves_the_cursor_there():
    messages = []
    app = make_app(trace=trace("asyncio-tasks"))
    async with app.run_test(size=SIZE, message_hook=messages.append) as pilot:
        diagram = app.query_one(LaneDiagram)
        label_width, plot_width = diagram.layout_widths()
        w = diagram.window
        # task2's row (third lane), at the column of switch #5 (task2 resumes).
        t5 = app.timeline.switch_times()[4]
        col = w.column(t5, plot_width)
        await pilot.click(LaneDiagram, offset=(label_width + 1 + col, 3))
        clicked = [m for m in messages if isinstance(m, LaneDiagram.CellClicked)]
        assert clicked and clicked[-1].lane == lane_id(app, "task2")
        assert app.selected == lane_id(app, "task2")
        assert app.cursor.switch == 4, "the clicked lane's switch in that cell"


async def test_clicking_a_log_line_jumps_to_when_it_was_printed():
    app = make_app(trace=trace("asyncio-tasks"))
    async with app.run_test(size=SIZE) as pilot:
        await pilot.click(LogView, offset=(30, 5))  # under the title: 结束了, printed by task2
        assert app.timeline.event_kind(app.cursor.event) == "log"
        assert app.selected == lane_id(app, "task2")
        assert "task2 prints: 结束了" in explain(app)


# -- panes -------------------------------------------------------------------------------------------


async def test_source_pane_marks_where_each_lane_runs_and_waits():
    app = make_app(trace=trace("asyncio-tasks"))
    async with app.run_test(size=SIZE) as pilot:
        source = app.query_one(SourceView)
        assert source.file_name == "asyncio_tasks.py"
        await pilot.press("right", "right")  # #3: task waits at :36, task2 runs at :40
        marks = {m.lane: (m.line, m.state, m.current) for m in source.marks}
        assert marks["task2"] == (40, RUNNING, True) and marks["task"] == (36, WAITING, False)
        assert source.marks[0].lane == "task2", "the lane that runs now comes first"
        lines = [source.render_line(y).text for y in range(source.size.height)]
        assert any(line.startswith("▶40│") and "task2 runs" in line for line in lines)
        assert any(line.startswith("‖36│") and "task waits" in line for line in lines)


async def test_log_pane_dims_what_was_printed_after_the_cursor():
    app = make_app(trace=trace("asyncio-tasks"))
    async with app.run_test(size=SIZE) as pilot:
        log = app.query_one(LogView)
        await pilot.press("right", "right")
        dim = log.get_component_rich_style("log--later")
        rows = [log.render_line(y) for y in range(log.line_count)]
        bright = [r.text for r in rows if not any(s.style and s.style.color == dim.color for s in r)]
        assert [t.split()[-1] for t in bright] == ["开始了", "MainThread"], "only what task printed before #3"
        await pilot.press("end")
        rows = [log.render_line(y) for y in range(log.line_count)]
        assert sum(any(s.style and s.style.color == dim.color for s in r) for r in rows) == 2, \
            "at the last switch only its own 结束了 and the total come later"


async def test_errors_stand_out_in_the_log_and_the_lane():
    app = make_app(trace=trace("error-raises"))
    async with app.run_test(size=SIZE) as pilot:
        assert isinstance(app.screen, ErrorScreen)
        await pilot.press("escape")
        log = app.query_one(LogView)
        error = log.get_component_rich_style("log--error")
        rows = [log.render_line(y) for y in range(log.line_count)]
        assert any("ValueError" in r.text and any(s.style and s.style.color == error.color for s in r) for r in rows)
        assert "✗" in diagram_text(app)


# -- screens -----------------------------------------------------------------------------------------


async def test_help_screen_explains_every_key_and_glyph():
    app = make_app(trace=trace("asyncio-tasks"))
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("question_mark")
        assert isinstance(app.screen, HelpScreen)
        text = str(app.screen.query_one("#help-text").render())
        for keys, _ in KEYS:
            assert keys in text
        for glyph in "█▒─✗":
            assert glyph in text
        await pilot.press("escape")
        assert not isinstance(app.screen, HelpScreen)


@pytest.mark.parametrize(("name", "title", "words"), [
    ("error-raises", "The program raised", "ValueError: invalid literal for int()"),
    ("error-timeout", "The run did not finish", "timeout after 1 s"),
    ("error-empty", "Empty trace", "No events were recorded"),
    ("error-unreadable", "Cannot open the trace", "error-unreadable.jsonl"),
    ("no-such-file", "Cannot open the trace", "no such file"),
])
async def test_error_states_are_screens_not_crashes(name, title, words):
    app = make_app(trace=trace(name))
    async with app.run_test(size=SIZE) as pilot:
        assert isinstance(app.screen, ErrorScreen)
        assert title in str(app.screen.query_one(".dialog-title").render())
        assert words in str(app.screen.query_one("#error-message").render())
        await pilot.press("escape")
        assert not isinstance(app.screen, ErrorScreen)
        await pilot.press("right", "t")  # keys still work (or do nothing) on what there is


async def test_find_jumps_to_a_lane_or_to_a_log_line():
    app = make_app(trace=trace("asyncio-tasks"))
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("slash")
        assert isinstance(app.screen, FindScreen)
        app.screen.query_one(Input).value = "task2"
        await pilot.press("enter")
        assert app.selected == lane_id(app, "task2")
        await pilot.press("slash")
        app.screen.query_one(Input).value = "0.30"  # the total the program prints last
        await pilot.press("enter")
        assert app.timeline.event_kind(app.cursor.event) == "log"
        assert app.selected == lane_id(app, "MainThread")
        # A switch by its reason: the cursor lands on that wait, on its lane.
        await pilot.press("slash")
        app.screen.query_one(Input).value = "SLEEP(0.2"
        await pilot.pause()
        labels = [str(o.prompt) for o in app.screen.query_one("#find-results").options]
        assert labels and labels[0].startswith("wait") and "task2: await sleep(0.2)" in labels[0], labels
        await pilot.press("enter")
        event = app.timeline.event(app.cursor.event)
        assert (event.kind, event.lane) == ("wait", lane_id(app, "task2")) and event.reason == "await sleep(0.2)"
        assert app.selected == lane_id(app, "task2")


async def test_e_exports_the_trace_and_a_screenshot(tmp_path):
    app = make_app(trace=trace("asyncio-tasks"))
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("e")
        assert isinstance(app.screen, ExportScreen)
        app.screen.query_one(Input).value = str(tmp_path / "out.jsonl")
        await pilot.press("enter")
        await wait_for(pilot, lambda: (tmp_path / "out.jsonl").exists())
        svg = (tmp_path / "out.svg").read_text(encoding="utf-8")
        assert svg.startswith("<svg") and "MainThread" in svg
        again = load(tmp_path / "out.jsonl")
        assert again.n_events == app.timeline.n_events and again.complete


async def test_e_never_writes_over_the_trace_it_shows(tmp_path):
    """Exporting to the very file on screen (its name proposed, or typed) is refused with a dialog;
    the trace stays as it was."""
    shown = tmp_path / "asyncio-tasks.jsonl"
    shown.write_bytes(Path(trace("asyncio-tasks")).read_bytes())
    before = shown.read_bytes()
    app = make_app(trace=str(shown))
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("e")
        app.screen.query_one(Input).value = str(shown)
        await pilot.press("enter")
        await wait_for(pilot, lambda: isinstance(app.screen, ErrorScreen))
        await pilot.pause()
    assert shown.read_bytes() == before


async def test_command_palette_offers_scenarios_and_view_commands():
    app = make_app(trace=trace("asyncio-tasks"))
    async with app.run_test(size=SIZE) as pilot:
        titles = [c.title for c in app.get_system_commands(app.screen)]
        for title in ("Toggle axis", "Fit all", "Zoom in", "Play / pause", "Find", "Export", "Help"):
            assert title in titles
        provider = ScenarioCommands(app.screen)
        hits = [hit.text async for hit in provider.search("gather")]
        assert "Run asyncio-gather" in hits and "Parameters of asyncio-gather" in hits
        await pilot.press("ctrl+p")
        assert isinstance(app.screen, CommandPalette)


async def test_tiny_terminals_and_resizes_do_not_crash():
    app = make_app(trace=trace("threadpool-shutdown"))
    async with app.run_test(size=(20, 6)) as pilot:
        await pilot.press("right", "t", "plus", "down")
        for size in ((1, 1), (80, 24), (7, 3), (160, 45), (20, 6)):
            await pilot.resize_terminal(*size)
            await pilot.pause()
        assert app.is_running


async def test_p_hides_and_shows_the_picker():
    app = make_app()
    async with app.run_test(size=SIZE) as pilot:
        picker = app.query_one(ScenarioPicker)
        await pilot.press("p")
        assert not picker.display and app.query_one(LaneDiagram).has_focus
        await pilot.press("p")
        assert picker.display and app.query_one("#picker").has_focus


@pytest.mark.parametrize("name, axis", [("generator-pingpong", SWITCH), ("asyncio-tasks", TIME),
                                        ("threadpool-shutdown", TIME)])
async def test_a_trace_whose_switches_bunch_up_opens_on_the_switch_axis(name, axis):
    """generator-pingpong's eleven switches happen within a millisecond after 160 ms of start-up:
    on a time axis they would share one column, so it opens on the switch axis; `t` goes back."""
    app = make_app(trace=trace(name))
    async with app.run_test(size=SIZE) as pilot:
        assert app.axis == axis
        await pilot.press("t")
        assert app.axis == (TIME if axis == SWITCH else SWITCH)


async def test_the_cursor_column_stays_on_its_rows_when_the_lanes_scroll():
    """The cursor's column is drawn over the rows: after a wheel scroll of the lanes every visible row shows
    its own cell under the cursor, marked, and nothing else of the row changes."""
    from concurview.tui.lanes import CURSOR_GLYPHS

    app = make_app(trace=trace("socket-echo-asyncio"))  # 12 lanes (io-models has 6 since its phases)
    async with app.run_test(size=(120, 22)) as pilot:
        diagram = app.query_one(LaneDiagram)
        app.goto_switch(app.timeline.n_switches // 2)
        await pilot.pause()
        for _ in range(3):
            diagram.scroll_down(animate=False)  # what a wheel turn does
            await pilot.pause()
        assert diagram.scroll_offset.y > 0, "more lanes than rows: the diagram scrolled"
        label_width, plot_width = diagram.layout_widths()
        x = label_width + 1 + diagram._cursor_column_at(plot_width)
        shown = diagram_text(app).splitlines()
        rows = len(app.timeline.lanes) - int(diagram.scroll_offset.y)
        assert rows > 1
        for y in range(1, min(rows + 1, len(shown))):
            drawn = diagram.render_line(y).text
            row = shown[y][:len(drawn)]  # (the scrollbar is past the row)
            glyph = drawn[x]
            assert row[:x] == drawn[:x] and row[x + 1:] == drawn[x + 1:], f"row {y} otherwise unchanged"
            assert row[x] == CURSOR_GLYPHS.get(glyph, glyph), f"row {y}: its own cell, marked"


async def test_clicking_on_the_cursor_column_selects_that_row_s_lane():
    messages = []
    app = make_app(trace=trace("asyncio-tasks"))
    async with app.run_test(size=SIZE, message_hook=messages.append) as pilot:
        diagram = app.query_one(LaneDiagram)
        app.goto_switch(3)
        await pilot.pause()
        label_width, plot_width = diagram.layout_widths()
        col = diagram._cursor_column_at(plot_width)
        await pilot.click(LaneDiagram, offset=(label_width + 1 + col, 3))
        clicked = [m for m in messages if isinstance(m, LaneDiagram.CellClicked)]
        assert clicked and clicked[-1].lane == lane_id(app, "task2"), "the click went through to the row under it"
        assert app.selected == lane_id(app, "task2")


async def test_arrows_edit_a_parameter_field_and_step_everywhere_else(replays):
    """left/right step the diagram from anywhere (they are the app's before the focused widget's), but in a
    parameter field they move its text cursor: a user editing `3.0` must not lose switches."""
    runner = replays("asyncio-tasks", parts=1)
    app = make_app(scenario="asyncio-tasks", runner=runner)
    async with app.run_test(size=SIZE) as pilot:
        await wait_for(pilot, lambda: runner.runs)
        runner.runs[0].release()
        await wait_for(pilot, lambda: app.current_run is None and app.timeline.n_switches > 2)
        app.goto_switch(1)
        if not app.query_one("#picker-params").display:
            await pilot.press("p")
        field = app.query_one("#param-task_sleep", Input)
        field.focus()
        await pilot.pause()
        field.cursor_position = len(field.value)
        await pilot.press("left", "left")
        assert field.cursor_position == len(field.value) - 2, "the field's cursor moved"
        assert app.cursor.switch == 1, "the diagram did not step"
        app.query_one("#source").focus()  # a pane has the focus: the arrows still step
        await pilot.press("right")
        assert app.cursor.switch == 2


async def test_batches_that_queue_up_are_taken_together_with_their_strings(replays):
    """A flood queues batches faster than the app takes them: joined into one, their texts stay right."""
    runner = replays("socket-echo-gevent", parts=6)
    app = make_app(scenario="socket-echo-gevent", runner=runner)
    async with app.run_test(size=(120, 40)) as pilot:
        await wait_for(pilot, lambda: runner.runs)
        run = runner.runs[0]
        run.release(len(run.batches))  # all at once: the feed thread queues them before the app looks
        await wait_for(pilot, lambda: app.current_run is None)
        tl = app.timeline
        expected = [e for batch in run.batches for e in batch]
        assert tl.n_events == len(expected)
        assert [tl.event(i).text for i in range(tl.n_events)] == [e.text for e in expected]
        assert [tl.event(i).reason for i in range(tl.n_events)] == [e.reason for e in expected]
