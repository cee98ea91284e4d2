"""The cursor model behind the keys, without Textual: stepping, lanes, jumps, follow, zoom and axis."""

from __future__ import annotations

import subprocess
import sys

from samples import LOOP, LOOP_ROWS, build

from concurview.trace.events import Footer
from concurview.trace.narrative import explain, selected_line
from concurview.tui.axis import SWITCH, TIME
from concurview.tui.navigator import Navigator


def nav_on(rows=LOOP_ROWS, live=False, footer=Footer()):
    nav = Navigator(live=lambda: live)
    nav.reset(build(LOOP, rows, footer=footer))
    return nav


def test_steps_go_through_every_switch_and_stop_at_the_ends():
    nav = nav_on()
    assert nav.step(1) and nav.cursor.switch == 0 and not nav.follow
    seen = [nav.cursor.switch]
    while nav.cursor.switch < nav.timeline.n_switches - 1:
        nav.step(1)
        seen.append(nav.cursor.switch)
    assert seen == list(range(7))
    nav.step(1)
    assert nav.cursor.switch == 6  # clamped at the last
    nav.step(-1)
    assert nav.cursor.switch == 5 and nav.cursor.on_switch
    assert explain(nav.timeline, nav.cursor.switch).startswith("#6/7")


def test_an_event_step_lands_between_switches_and_back_goes_to_the_switch_before():
    nav = nav_on()
    nav.goto_switch(2)  # task2 runs at 30 ns
    assert nav.event(1)
    c = nav.cursor
    assert not c.on_switch and c.switch == 2 and nav.timeline.event_kind(c.event) == "wait"
    nav.step(-1)
    assert nav.cursor.on_switch and nav.cursor.switch == 2  # the one before, not the one before that


def test_lane_selection_walks_the_lane_tree_and_lane_switch_finds_that_lanes_runs():
    nav = nav_on()
    nav.catch_up()
    assert nav.selected == 0
    assert nav.lane(1) and nav.selected == 1
    nav.lane(5)
    assert nav.selected == 2  # clamped at the last row
    nav.goto_switch(0)
    assert nav.lane_switch(1) and nav.timeline.lanes[nav.timeline.switch(nav.cursor.switch).lane].name == "task2"
    assert nav.lane_switch(1) and nav.cursor.switch == 4
    assert nav.lane_switch(1) is None and nav.cursor.switch == 4  # task2 never runs again: nothing moves
    assert "task2 (task)" in selected_line(nav.timeline, 2, nav.cursor.t)


def test_following_a_live_run_keeps_the_newest_switch_until_the_user_moves():
    rows = LOOP_ROWS[:8]
    nav = nav_on(rows, live=True, footer=None)
    nav.catch_up()
    newest = nav.timeline.n_switches - 1
    assert nav.follow and nav.cursor.switch == newest
    nav.step(-1)
    assert not nav.follow
    nav.jump("last")  # end during a live run: follow again
    assert nav.follow and nav.cursor.switch == newest


def test_zoom_keeps_the_cursor_in_view_and_fit_undoes_it():
    nav = nav_on([(t * 1000, *rest) for t, *rest in LOOP_ROWS])  # µs steps: room to zoom (1 ns a column)
    nav.goto_switch(3)
    lo, hi = nav.domain()
    assert nav.zoom(0.25, plot_width=10)
    w = nav.window()
    assert w.span < (hi - lo) / 2 and w.start <= nav.cursor.t <= w.end
    nav.goto_switch(6)
    w = nav.window()
    assert w.start <= nav.cursor.t <= w.end  # the window scrolled along
    nav.fit()
    assert nav.window().span == hi - lo


def test_the_switch_axis_opens_one_column_a_switch_around_the_cursor():
    nav = nav_on()
    nav.goto_switch(5)
    nav.toggle_axis(plot_width=4)
    assert nav.axis == SWITCH
    w = nav.window()
    assert w.span == 4 and w.start <= nav.position(nav.cursor) <= w.end
    nav.toggle_axis(plot_width=4)
    assert nav.axis == TIME


def test_a_click_selects_the_lane_and_moves_to_its_switch_in_the_cell():
    nav = nav_on()
    assert nav.click(2, 55, 65)  # task2 runs at 60 ns (MainThread too: the lane clicked wins)
    assert nav.selected == 2 and nav.timeline.switch(nav.cursor.switch).lane == 2


def test_the_model_and_the_narrative_need_no_textual():
    code = ("import sys, concurview.tui.navigator, concurview.trace.narrative, concurview.trace.store\n"
            "print(sorted(m for m in sys.modules if m.split('.')[0] in ('textual', 'rich')))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
