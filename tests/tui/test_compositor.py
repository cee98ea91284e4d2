"""The cropped compositor: a terminal that applies only the partial updates shows what a full redraw shows."""

from __future__ import annotations

import pytest
from rich.cells import cell_len
from textual._compositor import ChopsUpdate, LayoutUpdate
from textual.app import App
from uitraces import cursor_at, trace

from concurview.tui.app import make_app
from concurview.tui.compositor import CroppedCompositor
from textual.screen import Screen

SIZE = (160, 45)


def cells(strip) -> list[tuple[str, object]]:
    out = []
    for segment in strip:
        if segment.control:
            continue
        for ch in segment.text:
            out.append((ch, segment.style))
            out.extend([("", segment.style)] * (cell_len(ch) - 1))
    return out


class Terminal:
    """The cells a terminal holds after the updates the app sent it (headless, App._display drops them)."""

    def __init__(self, width: int, height: int) -> None:
        self.grid = [[(" ", None)] * width for _ in range(height)]
        self.partial = 0

    def apply(self, update) -> None:
        if isinstance(update, LayoutUpdate):
            for y, line in enumerate(update.strips, update.region.y):
                x = update.region.x
                for strip in line:
                    row = cells(strip)
                    self.grid[y][x:x + len(row)] = row
                    x += len(row)
        elif isinstance(update, ChopsUpdate):
            self.partial += 1
            for y, x1, x2 in update.spans:
                for end, (x, strip) in zip(update.chop_ends[y], update.chops[y].items()):
                    if strip is None or x >= x2 or end <= x1:
                        continue
                    for i, cell in enumerate(cells(strip)):
                        if x1 <= x + i < x2:
                            self.grid[y][x + i] = cell

    def lines(self) -> list[list[tuple[str, object]]]:
        return [list(row) for row in self.grid]


@pytest.mark.parametrize("name", ["threadpool-shutdown", "gevent-eat-play"])
async def test_partial_updates_paint_what_a_full_redraw_paints(monkeypatch, name):
    """Step, select lanes, zoom, scroll and switch axis with the terminal fed only what the app sends: after each
    key the terminal's cells (text and style) equal the whole screen drawn afresh, so a line a widget did not
    repaint, or a cell the compositor left out or put at the wrong place, fails."""
    terminal = Terminal(*SIZE)
    original = App._display

    def display(app, screen, renderable):
        original(app, screen, renderable)
        if renderable is not None and not app._batch_count:
            terminal.apply(renderable)

    monkeypatch.setattr(App, "_display", display)
    app = make_app(trace=trace(name))
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause()
        assert isinstance(app.screen._compositor, CroppedCompositor)
        keys = ["right"] * 30 + ["down", "down", "right_square_bracket", "shift+right", "left", "plus", "plus",
                                "right", "right", "end", "minus", "up", "t", "left", "left", "home", "pagedown",
                                "right", "right", "right", "left", "right"]
        for key in keys:
            await pilot.press(key)
            await pilot.pause()
            for widget in app.screen.walk_children(with_self=True):
                widget._styles_cache.clear()  # drawn afresh: a line a widget forgot to refresh shows up
            full = [cells(strip) for strip in app.screen._compositor.render_strips()]
            assert terminal.lines() == full, f"after {key}"
    assert terminal.partial >= len(keys) // 2  # the keys were answered by partial updates, not full redraws


async def test_stepping_on_the_switch_axis_moves_the_cursor_without_a_layout(monkeypatch):
    """On the switch axis every step moves the cursor's column: it goes to its new column without a layout pass
    of the screen (the step's cost), is where the cursor is after each step, and stays there when the screen is
    laid out again (its parent's cached arrangement must not put it back)."""
    layouts = []
    original = Screen._refresh_layout

    def refresh_layout(self, *args, **kwargs):
        layouts.append(1)
        return original(self, *args, **kwargs)

    monkeypatch.setattr(Screen, "_refresh_layout", refresh_layout)
    app = make_app(trace=trace("threadpool-shutdown"))
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause()
        if app.axis != "switch":
            await pilot.press("t")
        await pilot.press("home", "right")
        await pilot.pause()
        layouts.clear()
        seen = set()
        for key in ["right"] * 8 + ["left"] * 3:
            await pilot.press(key)
            await pilot.pause()
            drawn, want = cursor_at(app)
            assert drawn == want, f"after {key}"
            seen.add(drawn)
        assert len(seen) >= 8  # it did move, a column a switch
        assert layouts == []
        # Laid out again, at the same size (cached arrangements are used) and at another: it stays with the cursor.
        app.query_one("#status").refresh(layout=True)
        await pilot.pause()
        assert layouts
        assert cursor_at(app)[0] == cursor_at(app)[1]
        await pilot.resize_terminal(SIZE[0], SIZE[1] + 1)
        await pilot.pause()
        assert cursor_at(app)[0] == cursor_at(app)[1]
