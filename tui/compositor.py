"""A compositor that draws a partial update from the widgets it touches, and only their lines in it.

Textual's compositor (textual 8.2) answers a partial update by asking every widget whose *clip*
overlaps the changed area for all of its lines, then keeps the lines and cells that changed. On
concurview's screen a step changes a few cells spread from the status line to the explanation
line, so each step used to re-render the key bar, the log and source panes, the scroll bars and
every container behind them: about 6 ms of a 9 ms step on a slow host. This one draws only the
widgets whose visible part overlaps the changed area, only their lines in it, skips a widget whose
cells there are all covered already (a container behind its children), and does not cut a line
into cells that widgets in front of it have drawn. Full updates (the first frame, a resize, SVG
exports and snapshots) are Textual's own: every line of every widget.

The lines asked for keep the widget's whole visible width: the update is cut at widget edges, so
a line cut short of one would put its cells at the wrong place.

It subclasses Textual's private compositor and uses its private attributes: at import,
`missing_internals()` checks that everything it relies on is there, and where something is not (a
Textual release that changed them), or with CONCURVIEW_COMPOSITOR=textual, the screen keeps
Textual's own compositor (`CROPPED` is False): every update is then Textual's, a little slower.
"""

from __future__ import annotations

import inspect
import os
from collections.abc import Callable, Mapping, Sequence

from textual.css.scalar import ScalarOffset
from textual.geometry import Offset, Region
from textual.screen import Screen
from textual.strip import Strip
from textual.widget import Widget

try:
    from textual._compositor import Compositor
except ImportError:  # a Textual without it: Textual's own compositor, whatever it is now
    Compositor = object  # type: ignore[assignment,misc]

ENV_COMPOSITOR = "CONCURVIEW_COMPOSITOR"  # "textual": Textual's own compositor (the fallback)

# What of Compositor the cropped one reads and writes (attributes of an instance, then of the class).
_INSTANCE = ("_visible_map", "_full_map", "_full_map_invalidated", "_layers", "_layers_visible", "_visible_widgets",
             "_cuts", "_dirty_regions", "size")
_CLASS = ("cuts", "visible_widgets", "render_strips", "_render_chops")


def missing_internals() -> str | None:
    """The first of Textual's internals the cropped compositor relies on that is not there, or None."""
    if Compositor is object:
        return "textual._compositor.Compositor"
    for name in _CLASS:
        if not hasattr(Compositor, name):
            return f"Compositor.{name}"
    try:
        params = list(inspect.signature(Compositor._render_chops).parameters)
    except (TypeError, ValueError):
        params = []
    if params != ["self", "crop", "is_rendered_line"]:
        return "Compositor._render_chops(crop, is_rendered_line)"
    try:
        probe = Compositor()
    except Exception:  # noqa: BLE001 - a constructor that wants arguments now
        return "Compositor()"
    for name in _INSTANCE:
        if not hasattr(probe, name):
            return f"Compositor.{name}"
    for owner, name in ((Widget, "render_lines"), (Widget, "_clear_arrangement_cache"), (Strip, "divide"),
                        (Screen, "check_idle"), (Region, "intersection"), (Region, "translate")):
        if not hasattr(owner, name):
            return f"{owner.__name__}.{name}"
    return None


MISSING = "CONCURVIEW_COMPOSITOR=textual" if os.environ.get(ENV_COMPOSITOR) == "textual" else missing_internals()
CROPPED = MISSING is None  # the screen draws partial updates with CroppedCompositor


class CroppedCompositor(Compositor):
    def _render_chops(
        self, crop: Region, is_rendered_line: Callable[[int], bool]
    ) -> Sequence[Mapping[int, Strip]]:
        if crop == self.size.region:
            return super()._render_chops(crop, is_rendered_line)
        # Textual's walk, front to back, with three differences: a widget is drawn only if its visible part
        # overlaps the changed area, and then only its lines in that area; a widget whose cells there are all
        # drawn already (a container behind its children) is not drawn; a line is not cut into cells that
        # widgets in front of it have drawn.
        cuts = self.cuts
        chops: list[dict[int, Strip | None]] = [dict.fromkeys(cut_set[:-1]) for cut_set in cuts]
        top, bottom, left, right = crop.y, crop.bottom, crop.x, crop.right
        for widget, (region, clip) in self.visible_widgets.items():
            x, y, width, height = region.intersection(clip)
            y0, y1 = max(y, top), min(y + height, bottom)
            if y1 <= y0 or x >= right or x + width <= left:
                continue  # nothing of it shows in the changed area
            end = x + width
            lines = []  # (y, the cuts of its line within the widget), the lines to draw
            for line_y in range(y0, y1):
                if is_rendered_line(line_y):
                    line_cuts = [cut for cut in cuts[line_y] if end >= cut >= x]
                    get = chops[line_y].get
                    if not all(get(cut) is not None for cut in line_cuts[:-1]):
                        lines.append((line_y, line_cuts))
            if not lines:
                continue
            first = lines[0][0]
            strips = widget.render_lines(Region(x - region.x, first - region.y, width, lines[-1][0] + 1 - first))
            for line_y, line_cuts in lines:
                chops_line = chops[line_y]
                pieces = strips[line_y - first].divide([cut - x for cut in line_cuts[1:]])
                for cut, piece in zip(line_cuts, pieces):
                    if chops_line[cut] is None:
                        chops_line[cut] = piece
        return chops  # type: ignore[return-value]

    def shift(self, widget: Widget, expected: Offset, delta: Offset) -> bool:
        """Move `widget`, which the last arrangement put at `expected` on the screen, by `delta`: its geometry
        in the maps the next update reads, its old and new cells marked for repainting. False (nothing
        changed) if the maps do not hold it at `expected`."""
        maps = [m for m in (self._visible_map, None if self._full_map_invalidated else self._full_map)
                if m is not None and widget in m]
        if not maps or any(m[widget].region.offset != expected for m in maps):
            return False
        old = maps[0][widget]
        new = old._replace(region=old.region.translate(delta))
        for m in maps:
            m[widget] = new
        # What the maps feed: the render order, the cuts of each line, what is under the mouse.
        self._layers = self._layers_visible = self._visible_widgets = self._cuts = None
        self._dirty_regions.update(r for r in (old.clip.intersection(old.region), new.clip.intersection(new.region)) if r)
        return True


class CroppedScreen(Screen):
    """The app's default screen, drawn by the CroppedCompositor."""

    def __init__(self, name: str | None = None, id: str | None = None, classes: str | None = None) -> None:
        super().__init__(name=name, id=id, classes=classes)
        if CROPPED and isinstance(getattr(self, "_compositor", None), Compositor):
            self._compositor = CroppedCompositor()

    def move_absolute(self, widget: Widget, x: int, y: int) -> bool:
        """Put a widget with `position: absolute` at offset (x, y) of its parent's content, as
        `widget.styles.offset = (x, y)` would, without the layout pass that setting asks for (arranging the
        whole screen, ~1 ms): only the widget's old and new cells are repainted. False (nothing done) where
        the screen's geometry of it is not the one its styles give (a layout is due anyway): set the offset then.
        """
        parent = widget.parent
        if not isinstance(self._compositor, CroppedCompositor):
            return False  # Textual's own compositor (the fallback): the caller sets the offset
        if not isinstance(parent, Widget) or widget.styles.position != "absolute":
            return False
        current = widget.styles.offset.resolve(widget.size, self.size)
        origin = parent.content_region.offset
        moved = self._compositor.shift(widget, origin + current, Offset(x, y) - current)
        if moved:
            # The style says where the next layout puts it; the parent's cached arrangement still has the old place.
            widget.styles.inline.set_rule("offset", ScalarOffset.from_offset((x, y)))
            parent._clear_arrangement_cache()
            self.check_idle()
        return moved
