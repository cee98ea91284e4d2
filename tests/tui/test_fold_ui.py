"""Folded families, unfolding and the lane filter through the pilot, on a recorded many-tasks trace."""

from __future__ import annotations

from uitraces import diagram_rows, trace

from concurview.tui.app import KEYS, make_app
from concurview.tui.lanes import LaneDiagram
from concurview.tui.screens import FilterScreen

SIZE = (140, 40)


def status(app) -> str:
    return str(app.query_one("#status").render())


def explain(app) -> str:
    return str(app.query_one("#explain").render())


def rows_text(app) -> str:
    return "\n".join(diagram_rows(app))


async def test_families_fold_and_enter_unfolds_and_folds_back():
    app = make_app(trace=trace("many-tasks"))
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause()
        text = rows_text(app)
        assert "⊞◇ 65 handle_connection-N" in text and "⊞◇ 46 handle_request-N" in text
        assert "handle_request-3 " not in text
        assert "2 families folded" in status(app)
        app.query_one(LaneDiagram).focus()
        await pilot.press("down", "down", "down")  # MainThread -> main -> connections -> requests
        await pilot.pause()
        assert "46 handle_request-N tasks:" in status(app)
        assert "▸      ⊞◇ 46 handle_request-N" in rows_text(app)  # the selected row is the family
        await pilot.press("enter")
        await pilot.pause()
        text = rows_text(app)
        assert "handle_request-3 " in text and "⊞◇ 46" not in text
        assert "1 family folded" in status(app)
        await pilot.press("enter")  # on a member: its family folds back
        await pilot.pause()
        assert "⊞◇ 46 handle_request-N" in rows_text(app)
        await pilot.press("f")
        await pilot.pause()
        assert "⊞" not in rows_text(app) and "folded" not in status(app)
        await pilot.press("f")
        await pilot.pause()
        assert "2 families folded" in status(app)


async def test_stepping_inside_a_folded_family_names_the_member_and_keeps_the_family_selected():
    app = make_app(trace=trace("many-tasks"))
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause()
        app.query_one(LaneDiagram).focus()
        await pilot.press("home", "down", "down", "down")
        await pilot.pause()
        for _ in range(3):
            await pilot.press("right_square_bracket")
            await pilot.pause()
            member = app.timeline.lanes[app.selected].name
            assert member.startswith("handle_request-")
            assert member in explain(app)  # the explanation names the member that ran
            assert "▸      ⊞◇ 46 handle_request-N" in rows_text(app)


async def test_clicking_a_folded_familys_label_unfolds_it():
    app = make_app(trace=trace("many-tasks"))
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause()
        diagram = app.query_one(LaneDiagram)
        diagram.click_at(3, 4)  # the label of row 4: the requests' family
        await pilot.pause()
        assert "handle_request-3 " in rows_text(app)
        assert "⊞◇ 65 handle_connection-N" in rows_text(app)


async def test_the_filter_shows_matching_lanes_and_escape_clears_it():
    app = make_app(trace=trace("many-tasks"))
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause()
        total = len(app.timeline.lanes)
        await pilot.press("l")
        await pilot.pause()
        assert isinstance(app.screen, FilterScreen)
        await pilot.press(*"waited:Lock", "enter")
        await pilot.pause()
        shown = app.nav.rows().n_shown
        assert 0 < shown < total
        assert f"{shown} of {total} lanes (filter: waited:Lock)" in status(app)
        assert "MainThread" not in rows_text(app)
        await pilot.press("escape")
        await pilot.pause()
        assert f"{total} lanes" in status(app) and " of " not in status(app).split("lanes")[0][-8:]
        assert "MainThread" in rows_text(app)
        await pilot.press("l", *"kind:main", "enter")
        await pilot.pause()
        assert f"1 of {total} lanes" in status(app)
        await pilot.press("l", "ctrl+a", "ctrl+k", "enter")  # an empty pattern clears it too
        await pilot.pause()
        assert app.nav.lane_filter is None


async def test_a_bad_filter_term_says_so_and_keeps_the_lanes():
    app = make_app(trace=trace("many-tasks"))
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause()
        await pilot.press("l", *"state:sleepy", "enter")
        await pilot.pause()
        assert app.nav.lane_filter is None and "MainThread" in rows_text(app)


def test_the_help_lists_the_new_keys():
    keys = dict(KEYS)
    assert "f" in keys and "l" in keys and "fold" in keys["f"] and "filter" in keys["l"]


async def test_a_step_reads_the_lanes_on_screen_not_every_lane(monkeypatch):
    """Work per key depends on what is on screen: ten steps over a trace of 113 lanes folded into 4 rows build
    a few Lane records per step (labels, the explanation), never one per lane of the trace."""
    from concurview.trace.store import LaneTable

    app = make_app(trace=trace("many-tasks"))
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause()
        app.goto_switch(app.timeline.n_switches // 2)
        await pilot.pause()
        built = []
        original = LaneTable._get
        monkeypatch.setattr(LaneTable, "_get", lambda self, i: built.append(i) or original(self, i))
        for _ in range(10):
            await pilot.press("right")
            await pilot.pause()
        assert len(app.timeline.lanes) == 113 and len(app.nav.rows()) == 4
        assert len(built) < 10 * 30, f"{len(built)} Lane records for 10 steps"
