"""What a learner stepping through the lesson sees (#21 items 4, 5): play's never-ran lane, a generator's saved
locals in the step text, the axis a run ends on, and the picker, header and footer in step with what is shown."""

from __future__ import annotations

import pytest
from textual.widgets import OptionList
from uitraces import diagram_rows, trace, wait_for

from concurview.scenarios import catalogue
from concurview.tui.app import make_app
from concurview.tui.axis import SWITCH, TIME
from concurview.tui.keybar import KeyBar
from concurview.tui.picker import ScenarioPicker
from concurview.tui.screens import HelpScreen, WarningsScreen

SIZE = (160, 45)


def explain(app) -> str:
    return str(app.query_one("#explain").render())


def status(app) -> str:
    return str(app.query_one("#status").render())


def description(app) -> str:
    return str(app.query_one("#picker-description").render())


# -- greenlets as the lesson says -------------------------------------------------------------------


async def test_play_gets_a_lane_drawn_never_ran_and_a_warning():
    """greenlet-eat-play as the lesson has it: play is created (p = greenlet(play)) and never switched to."""
    app = make_app(trace=trace("greenlet-eat-play"))
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("end")
        rows = diagram_rows(app)
        (play,) = [row for row in rows if " play " in row]
        label, _, cells = play.partition("│")
        assert label.split()[-1] == "never"
        assert cells.count("┄") > len(cells) // 2, "from its creation to the end: created, never started"
        assert "2 warnings (w)" in status(app)
        await pilot.press("w")
        await wait_for(pilot, lambda: isinstance(app.screen, WarningsScreen))
        texts = [str(o.prompt) for o in app.screen.query_one(OptionList).options]
        assert any("play was never switched to: created at greenlet_eat_play.py:58" in t for t in texts)


async def test_a_selected_greenlet_that_never_ran_is_not_started():
    app = make_app(trace=trace("greenlet-eat-play"))
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("end", "down", "down")
        assert "selected: play (greenlet) · not started" in explain(app)


# -- generators' saved state ---------------------------------------------------------------------------


async def test_a_generator_switch_says_what_it_saved():
    app = make_app(trace=trace("generator-pingpong"))
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause()
        tl = app.timeline
        k = next(k for k in range(tl.n_switches) if tl.switch(k).stopped is not None
                 and tl.lanes[tl.switch(k).stopped].name == "consumer" and "n=1" in (tl.switch(k).stopped_reason or ""))
        app.goto_switch(k)
        await pilot.pause()
        assert "consumer -> MainThread: consumer waits (yield '200 OK' · saved r='200 OK', n=1" in explain(app)


# -- the axis a trace opens or a run ends on ------------------------------------------------------------


async def test_a_pingpong_run_from_the_picker_ends_on_the_switch_axis(replays):
    """Its 11 switches happen in well under a millisecond of a 80 ms run: on a time axis, one column."""
    runner = replays("generator-pingpong", parts=2)
    app = make_app(runner=runner)
    async with app.run_test(size=SIZE) as pilot:
        app.query_one(ScenarioPicker).highlight("generator-pingpong")
        await pilot.pause()
        app.query_one("#picker").focus()
        await pilot.press("enter")
        await wait_for(pilot, lambda: runner.runs)
        assert app.axis == TIME, "live: the switches are not all there yet"
        runner.runs[0].release()
        await wait_for(pilot, lambda: runner.runs[0].sent == 1)
        await pilot.pause()
        runner.runs[0].release()
        await wait_for(pilot, lambda: app.current_run is None)
        await pilot.pause()
        assert app.axis == SWITCH and "switch axis" in status(app)


async def test_an_axis_the_user_picked_is_kept_when_the_run_ends(replays):
    runner = replays("generator-pingpong", parts=2)
    app = make_app(scenario="generator-pingpong", runner=runner)
    async with app.run_test(size=SIZE) as pilot:
        await wait_for(pilot, lambda: runner.runs)
        runner.runs[0].release()
        await wait_for(pilot, lambda: app.timeline is not None and app.timeline.n_events)
        await pilot.press("t", "t")  # to the switch axis and back: the user wants time
        runner.runs[0].release()
        await wait_for(pilot, lambda: app.current_run is None)
        await pilot.pause()
        assert app.axis == TIME and "time axis" in status(app)


# -- picker, header and footer in step ----------------------------------------------------------------------


async def test_a_run_from_the_command_palette_puts_its_scenario_in_the_picker(replays):
    runner = replays("generator-pingpong", parts=1)
    app = make_app(runner=runner)
    async with app.run_test(size=SIZE) as pilot:
        app.query_one(ScenarioPicker).highlight("asyncio-tasks")
        await pilot.pause()
        assert "asyncio" in description(app)
        await pilot.press("ctrl+p")
        await pilot.press(*"Run generator-pingpong")
        await pilot.pause(0.3)
        await pilot.press("enter")
        await wait_for(pilot, lambda: runner.runs)
        await pilot.pause()
        picker = app.query_one(ScenarioPicker)
        assert picker.highlighted == "generator-pingpong"
        assert "yield: save state + switch" in description(app) and "asyncio" not in description(app)[:200]
        assert [i.id for i in app.query("#picker-params Input")] == ["param-n"]


async def test_the_header_names_the_parameters_that_are_not_the_defaults():
    app = make_app(trace=trace("gevent-eat-play-unpatched"))
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause()
        assert status(app).startswith("gevent-eat-play · patch=false · eat_sleep=0.2 · play_sleep=0.3 · recorded")
        assert app.sub_title.endswith("patch=false · eat_sleep=0.2 · play_sleep=0.3 · recorded")


async def test_a_variant_shows_its_own_description():
    nowait = catalogue()["threadpool-shutdown-nowait"]
    assert "shutdown(wait=False) returns at once" in nowait.description.split("\n\n")[0]
    app = make_app()
    async with app.run_test(size=SIZE) as pilot:
        app.query_one(ScenarioPicker).highlight("threadpool-shutdown-nowait")
        await pilot.pause()
        text = description(app)
        assert "shutdown(wait=False) returns at once" in text
        assert "shutdown(wait=True) waits for all of them" not in text


async def test_what_the_lesson_got_wrong_comes_right_after_the_opening_paragraph():
    app = make_app()
    async with app.run_test(size=(80, 24)) as pilot:
        app.query_one(ScenarioPicker).highlight("gevent-eat-play")
        await pilot.pause()
        text = description(app)
        assert text.index("What the lesson's code got wrong") < text.index("Watch for")


@pytest.mark.parametrize("size", [(80, 24), (100, 30), (120, 34)])
async def test_the_footer_keeps_help_quit_the_palette_and_the_way_to_the_picker(size):
    app = make_app(trace=trace("threadpool-shutdown"))
    async with app.run_test(size=size) as pilot:
        await pilot.pause()
        footer = app.query_one(KeyBar).render().plain
        assert len(footer) <= size[0]
        for words in ("? help", "q quit", "p picker", "← switch"[1:]):
            assert words in footer, (words, footer)
        assert footer.rstrip().endswith("^p") or footer.rstrip().endswith("^p palette")


async def test_help_says_how_to_get_back_to_the_picker():
    app = make_app(trace=trace("threadpool-shutdown"))
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("question_mark")
        assert isinstance(app.screen, HelpScreen)
        text = str(app.screen.query_one("#help-text").render())
        assert "scenario picker" in text and "tab" in text


async def test_p_goes_to_the_picker_from_the_diagram(replays):
    runner = replays("generator-pingpong", parts=1)
    app = make_app(scenario="generator-pingpong", runner=runner)
    async with app.run_test(size=SIZE) as pilot:
        await wait_for(pilot, lambda: runner.runs)
        picker = app.query_one(ScenarioPicker)
        assert picker.display and not app.query_one("#picker").has_focus, "wide: the picker stays, the diagram has the keys"
        await pilot.press("p")
        assert picker.display and app.query_one("#picker").has_focus
        await pilot.press("p")
        assert not picker.display
