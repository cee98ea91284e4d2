"""Textual's own compositor where the cropped one's internals are not there: the check names what is
missing, and the app on the fallback steps, moves its cursor and draws as it does on the cropped one."""

from __future__ import annotations

import subprocess
import sys

from textual._compositor import Compositor
from uitraces import cursor_at, trace

from concurview.tui import compositor
from concurview.tui.app import make_app

SIZE = (120, 36)


def test_the_textual_under_test_has_every_internal_the_cropped_compositor_uses():
    assert compositor.missing_internals() is None
    assert compositor.CROPPED


def test_a_missing_internal_is_named(monkeypatch):
    monkeypatch.delattr(Compositor, "_render_chops")
    assert compositor.missing_internals() == "Compositor._render_chops"
    monkeypatch.undo()

    class Renamed:  # a Textual whose compositor keeps its state under other names
        cuts = visible_widgets = render_strips = None

        def _render_chops(self, crop, is_rendered_line):
            return []

    monkeypatch.setattr(compositor, "Compositor", Renamed)
    assert compositor.missing_internals() == "Compositor._visible_map"
    monkeypatch.setattr(compositor, "Compositor", object)
    assert compositor.missing_internals() == "textual._compositor.Compositor"


def test_the_environment_variable_forces_textual_s_own_compositor():
    out = subprocess.run([sys.executable, "-c", "from concurview.tui import compositor as c; print(c.CROPPED, c.MISSING)"],
                         env={"CONCURVIEW_COMPOSITOR": "textual", "PATH": "/usr/bin:/bin"}, capture_output=True,
                         text=True, check=True).stdout
    assert out.split() == ["False", "CONCURVIEW_COMPOSITOR=textual"]


async def test_the_app_on_textual_s_own_compositor(monkeypatch):
    monkeypatch.setattr(compositor, "CROPPED", False)
    app = make_app(trace=trace("threadpool-shutdown"))
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause()
        assert type(app.screen._compositor) is Compositor
        if app.axis != "switch":
            await pilot.press("t")
        await pilot.press("home")
        seen = set()
        for key in ["right"] * 6 + ["left"] * 2:
            await pilot.press(key)
            await pilot.pause()
            drawn, want = cursor_at(app)
            assert drawn == want, f"after {key}"  # moved by its offset style: move_absolute said no
            seen.add(drawn)
        assert len(seen) >= 6
        text = "\n".join(strip.text for strip in app.screen._compositor.render_strips())
        assert "MainThread" in text and "ThreadPoolExecutor-0_0" in text
