"""The app through Textual's pilot: pick a scenario, watch its lanes arrive, step through switches."""

from __future__ import annotations

import asyncio

from concurview.tui.app import make_app
from concurview.tui.lanes import LaneDiagram

FAST = {"asyncio-tasks": {"task_sleep": 0.3, "task2_sleep": 0.2}}


async def wait_for(pilot, predicate, timeout=20.0):
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not predicate():
        assert loop.time() < deadline, "timed out waiting for the app"
        await pilot.pause(0.05)


def screen_text(app) -> str:
    diagram = app.query_one(LaneDiagram)
    return "\n".join(diagram.render_line(y).text for y in range(diagram.size.height))


async def test_pick_a_scenario_and_watch_its_lanes_arrive():
    app = make_app(overrides=FAST, run_timeout=30)
    messages = []
    async with app.run_test(size=(160, 45), message_hook=messages.append) as pilot:
        picker = app.query_one("#picker")
        assert picker.has_focus
        assert "two tasks, one thread" in str(app.query_one("#description").render())
        await pilot.press("enter")
        await wait_for(pilot, lambda: app.timeline is not None and len(app.timeline.lanes) == 3)
        assert app.sub_title.endswith("live") or "recorded" in app.sub_title
        await wait_for(pilot, lambda: app.current_run is None)
        assert any(type(m).__name__ == "BatchArrived" for m in messages), "lanes came in live, batch by batch"
        assert app.query_one(LaneDiagram).has_focus, "once it runs, the keys step the diagram"
        text = screen_text(app)
        for name in ("MainThread", "task", "task2"):
            assert name in text
        assert "█" in text and "─" in text, "running and waiting glyphs drawn"
        assert "recorded" in app.sub_title
        explain = str(app.query_one("#explain").render())
        assert explain.startswith("#7/7") and "task runs" in explain
        log = "\n".join(line.text for line in app.query_one("#log").lines)
        assert log.count("MainThread") >= 2 and "结束了" in log


async def test_stepping_moves_through_switches_and_stops_following():
    app = make_app(scenario="asyncio-tasks", params=FAST["asyncio-tasks"], run_timeout=30)
    async with app.run_test(size=(160, 45)) as pilot:
        await wait_for(pilot, lambda: app.current_run is None and app.timeline is not None)
        await pilot.press("home")
        explain = lambda: str(app.query_one("#explain").render())  # noqa: E731
        assert explain().startswith("#1/7") and "MainThread runs (program starts)" in explain()
        await pilot.press("right", "right")
        assert explain().startswith("#3/7") and "task -> task2: task waits (await sleep(0.3)" in explain()
        await pilot.press("left")
        assert explain().startswith("#2/7") and not app.follow
        await pilot.press("end")
        assert explain().startswith("#7/7")
