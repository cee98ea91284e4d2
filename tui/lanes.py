"""The lane diagram: one row per lane under a ruler, rasterised from the store with the Line API."""

from __future__ import annotations

from bisect import bisect_right
from typing import TYPE_CHECKING
from rich.cells import cell_len, set_cell_size
from rich.segment import Segment
from rich.style import Style
from textual import events
from textual.binding import Binding
from textual.geometry import Region, Size
from textual.message import Message
from textual.reactive import reactive
from textual.scroll_view import ScrollView
from textual.strip import Strip
from textual.widget import Widget

from .axis import SWITCH, TIME, Window, switch_ticks, time_ticks
from .compositor import CroppedScreen
from .navigator import Cursor, Rows, build_rows
from ..trace.states import BLOCKING, DONE, NONE, READY_S, RUNNING, WAITING, LazyNumpy
from ..trace.text import clean, shorten

if TYPE_CHECKING:
    import numpy as np

    from ..trace.store import Timeline
else:
    np = LazyNumpy(globals())

ERROR = 6  # a cell holding an error event: drawn over the state
BRIEF = 7  # a cell where the lane started running but spent most of it otherwise (time axis)
# An IO read's two phases, from the lane's `phase` events ("phase 1: ...", "phase 2: ..."; any other
# phase event or the lane's close ends a band): drawn over the state. Phase 2 (the copy) lasts
# microseconds, so its band is drawn at least one column wide: magnified wherever it is shorter.
PHASE1 = 8  # waiting for the data to reach the kernel buffer
PHASE2 = 9  # copying it from the kernel buffer to the program's buffer
# A greenlet created and not started yet (`p = greenlet(play)`, nothing switched to it): from its open
# to its first run, `┄`; its label says `new`, or `never` when nothing ever switches to it.
UNSTARTED = 10
NEVER = 11  # a label's state only: the lane never runs in the whole trace
# By state (store.py's codes), then ERROR, BRIEF and the phases. Blocking the thread is a heavy wait: `━`.
GLYPHS = (" ", "█", "▒", "─", " ", "━", "✗", "▌", "░", "▓", "┄")
STATE_WORDS = ("", "run", "ready", "wait", "done", "block")
STATE_WIDTH = max(map(len, STATE_WORDS))
KIND_ICONS = {
    "main": "◆", "thread": "≡", "process": "▣", "greenlet": "ɡ", "hub": "✱", "task": "◇",
    "generator": "↻", "timer": "◷", "loop": "⟳", "kernel": "⌁", "peer": "⇄",
}
# Where the cursor crosses a cell it leaves a mark that reads without colour (the label says the state).
CURSOR_GLYPHS = {" ": "│", "─": "┼", "█": "╋", "▒": "╂", "▌": "╋", "━": "┿", "░": "┼", "▓": "▓", "┄": "┼"}
SAMPLES = 8  # switches looked at per cell when a cell covers many (switch axis)
# A folded family's cell: the share of its members present then that are busy (running, ready or
# blocking), in eighths; `─` all of them waiting; blank none present. Coloured by the busiest state.
LEVELS = "▁▂▃▄▅▆▇█"
FOLDED = "⊞"  # before a folded family's name


class CachedStyles:
    """`rich_style` and component styles looked up once per style change: each lookup walks the DOM
    (about 0.1 ms), and a repaint draws dozens of lines."""

    _style_cache: dict | None = None

    def cached_style(self, name: str | None = None) -> Style:
        """The widget's own style (name None) or a component class's."""
        cache = self._style_cache
        if cache is None:
            cache = self._style_cache = {}
        style = cache.get(name)
        if style is None:
            style = cache[name] = self.rich_style if name is None else self.get_component_rich_style(name)
        return style

    def notify_style_update(self) -> None:
        super().notify_style_update()
        self._style_cache = None


class LaneDiagram(CachedStyles, ScrollView, can_focus=True, inherit_bindings=False):
    """Draws the timeline it is given over a window of the time or switch axis; the app owns the cursor."""

    # Arrows, home and end belong to the app (they move the cursor); pages scroll the lanes.
    BINDINGS = [
        Binding("pageup", "page_up", "Page up", show=False),
        Binding("pagedown", "page_down", "Page down", show=False),
    ]

    COMPONENT_CLASSES = {
        "lanes--label", "lanes--label-selected", "lanes--ruler", "lanes--cursor", "lanes--running",
        "lanes--ready", "lanes--waiting", "lanes--blocking", "lanes--error", "lanes--selected-row",
        "lanes--phase1", "lanes--phase2",
    }

    DEFAULT_CSS = """
    LaneDiagram {
        height: 1fr;
        background: $surface;
        scrollbar-size-vertical: 1;
        & > .lanes--label { color: $text; }
        & > .lanes--label-selected { color: $text; background: $accent 30%; text-style: bold; }
        & > .lanes--ruler { color: $text-muted; }
        & > .lanes--cursor { color: $text; background: $accent 60%; text-style: bold; }
        & > .lanes--running { color: $success; }
        & > .lanes--ready { color: $warning; }
        & > .lanes--waiting { color: $text-muted; }
        & > .lanes--blocking { color: $error; }
        & > .lanes--error { color: $error; text-style: bold; }
        & > .lanes--selected-row { background: $accent 10%; }
        & > .lanes--phase1 { color: $primary; }
        & > .lanes--phase2 { color: $accent; text-style: bold; }
    }
    LaneDiagram:focus { background-tint: $foreground 3%; }
    """

    timeline: reactive[Timeline | None] = reactive(None, always_update=True)
    """The trace drawn (the app owns it; widgets only read)."""

    version: reactive[int] = reactive(0)
    """How many events the timeline held when the app last said so; a change redraws what grew."""

    axis: reactive[str] = reactive(TIME)
    """`time` (columns are equal stretches of time) or `switch` (columns are switches)."""

    window: reactive[Window] = reactive(Window(0, 1))
    """The visible part of the axis: ns on the time axis, switch numbers on the switch axis."""

    cursor: reactive[Cursor | None] = reactive(None, repaint=False)
    """The current event and switch, drawn as a vertical line (a move repaints the ruler, the labels whose
    state changes and the cursor's column, not every row)."""

    selected: reactive[int | None] = reactive(None, repaint=False)
    """The selected lane's id (a change repaints the rows it leaves and enters; a folded lane's row is its
    family's)."""

    rows: reactive[Rows | None] = reactive(None, repaint=False)
    """The rows drawn: lanes in tree order, folded families as one row, the filter's misses left out (the
    app's navigator makes them; None: every lane, families of 8 or more folded)."""

    class CellClicked(Message):
        """The user clicked a cell: `lane` is None on the ruler; `start`/`end` is None on a label."""

        def __init__(self, lane: int | None, start: float | None, end: float | None) -> None:
            super().__init__()
            self.lane, self.start, self.end = lane, start, end
            self.family: int | None = None  # set on a folded family's row (lane: the member drawn)

    class FamilyToggled(Message):
        """The user clicked a folded family's label, or an unfolded member's: fold or unfold the family."""

        def __init__(self, family: int, lane: int) -> None:
            super().__init__()
            self.family, self.lane = family, lane

    def __init__(self, *, id: str | None = None, classes: str | None = None) -> None:
        super().__init__(id=id, classes=classes)
        self._frame_key: tuple | None = None
        self._states: dict[int, np.ndarray] = {}
        self._plots: dict[tuple[int, bool], Strip] = {}
        self._errors: dict[int, np.ndarray] = {}
        self._errors_seen = 0
        self._phase_marks: dict[int, list[tuple[int, int]]] = {}  # lane -> (t, 1 | 2 | 0 = end) in arrival order
        self._phases_seen = 0
        self._phase_spans: tuple[int, dict[int, list[tuple[int, int, int]]]] | None = None
        self._label_key: tuple | None = None
        self._label_width = 0
        self._ran: np.ndarray | None = None
        self._styles: dict | None = None
        self._switch_times: np.ndarray | None = None
        self._switch_times_key: tuple | None = None
        self._drawn_labels: dict[int, tuple] = {}  # row -> (lane, state, selected) as last drawn
        self._cursor_column = CursorColumn(self)
        self._cursor_placed: tuple[int, int, int] | None = None  # (x, y, rows) in the parent; None: hidden
        self._default_rows: tuple[tuple, Rows] | None = None
        self._ran_key: tuple | None = None
        self._family_runs: dict[tuple, Segment] = {}

    def on_mount(self) -> None:
        # A ScrollView draws its own lines and cannot hold children: the cursor's column is a sibling,
        # drawn over the rows (see CursorColumn).
        self.parent.mount(self._cursor_column, after=self)

    def on_unmount(self) -> None:
        self._cursor_column.remove()

    # -- watchers ------------------------------------------------------------------

    def watch_timeline(self) -> None:
        self._errors, self._errors_seen = {}, 0
        self._phase_marks, self._phases_seen, self._phase_spans = {}, 0, None
        self._frame_key = None
        self._update_virtual_size()

    def watch_version(self) -> None:
        self._update_virtual_size()

    def watch_axis(self) -> None:
        self._place_cursor()

    def watch_window(self) -> None:
        self._place_cursor()

    def watch_cursor(self) -> None:
        ruler = Region(0, 0, self.scrollable_content_region.width, 1)  # its ▼
        self.refresh(ruler, *self._changed_labels())  # one call: each costs a walk of the widget's geometry
        self._place_cursor()

    def watch_rows(self, old: Rows | None, new: Rows | None) -> None:
        self._frame_key = None  # rows are cached by number: another list, other numbers
        self._drawn_labels.clear()
        self._update_virtual_size()
        # Unfolding, folding or filtering moves the selected lane's row: keep it in view once laid out (not
        # when lanes only arrive: a live run must not pull the view back while the user scrolls).
        if old is None or new is None or old.row_of(self.selected) != new.row_of(self.selected):
            self.call_after_refresh(self.scroll_to_lane, self.selected)

    def watch_selected(self, old: int | None, new: int | None) -> None:
        self._refresh_lane_rows(old, new)
        self.scroll_to_lane(self.selected)
        self._place_cursor()

    def watch_scroll_y(self, old: float, new: float) -> None:
        super().watch_scroll_y(old, new)
        self._place_cursor()

    def on_resize(self) -> None:
        self._update_virtual_size()

    def notify_style_update(self) -> None:
        super().notify_style_update()
        self._plots.clear()  # a theme change recolours the cached rows
        self._family_runs.clear()
        self._styles = None
        self._cursor_column.refresh()

    def on_click(self, event: events.Click) -> None:
        offset = event.get_content_offset(self)
        if offset is not None:
            self.click_at(*offset)

    def click_at(self, x: int, y: int) -> None:
        """Tell the app which cell is at (x, y) of the content (a click on the diagram or its cursor)."""
        tl = self.timeline
        if tl is None:
            return
        lane = family = None
        if y >= 1:
            rows = self._rows()
            row = y - 1 + int(self.scroll_offset.y)
            if row >= len(rows):
                return
            lane = int(rows.lane[row])
            if rows.is_family(row):
                family = int(rows.family[row])
        label_width, plot_width = self.layout_widths()
        col = x - label_width - 1
        if 0 <= col < plot_width:
            start, end = self.window.cell(col, plot_width)
            message = self.CellClicked(lane, start, end)
            message.family = family
            self.post_message(message)
        elif family is not None and lane is not None:
            self.post_message(self.FamilyToggled(family, lane))
        elif lane is not None:
            self.post_message(self.CellClicked(lane, None, None))

    # -- layout -----------------------------------------------------------------------

    @property
    def plot_width(self) -> int:
        """Columns the lanes get (after the labels and their rule)."""
        return self.layout_widths()[1]

    def layout_widths(self) -> tuple[int, int]:
        """(label columns, plot columns) at the current size."""
        width = self.scrollable_content_region.width
        tl = self.timeline
        rows = None if tl is None else self._rows()
        key = (id(tl), 0 if tl is None else len(tl.lanes), width, id(rows))
        if key != self._label_key:
            need = 0
            if tl is not None and rows is not None and len(rows):
                # Vectorised (a real trace has thousands of lanes): bytes of each name, not its cells.
                lengths = tl.lanes.name_lengths()[rows.lane] + 2 * rows.depth.astype(np.int64) + 3
                folded = rows.family >= 0
                if folded.any():
                    fam = rows.family[folded]
                    depth = rows.depth[folded].tolist()
                    lengths[folded] = [len(rows.labels[f]) + len(str(int(rows.sizes[f]))) + 5 + 2 * d
                                       for f, d in zip(fam.tolist(), depth)]
                need = int(lengths.max())
            need += 1 + STATE_WIDTH
            self._label_width = max(min(need, 40, width // 3), min(8, width))
            self._label_key = key
        return self._label_width, max(width - self._label_width - 1, 0)

    def _update_virtual_size(self) -> None:
        n = 0 if self.timeline is None else len(self._rows())
        self.virtual_size = Size(self.scrollable_content_region.width, n + 1)
        self.refresh()
        self._place_cursor()

    def _visible_rows(self) -> range:
        """The lane rows on screen (indices into lane_tree), under the ruler."""
        tl = self.timeline
        if tl is None:
            return range(0)
        top = int(self.scroll_offset.y)
        return range(top, min(top + self.scrollable_content_region.height - 1, len(self._rows())))

    def _rows(self) -> Rows:
        """The rows to draw: the app's, or (a diagram given only a timeline) every lane, families folded."""
        tl = self.timeline
        assert tl is not None
        rows = self.rows
        if rows is not None and rows.n_lanes == len(tl.lanes):
            return rows
        key = (id(tl), len(tl.lanes))
        if self._default_rows is None or self._default_rows[0] != key:
            self._default_rows = (key, build_rows(tl, True, {}, None))
        return self._default_rows[1]

    def _row_regions(self, width: int, wanted) -> list[Region]:
        """The first `width` cells of the rows on screen whose lane `wanted(row, lane)` picks."""
        tl = self.timeline
        if tl is None:
            return []
        rows = self._rows()
        top = int(self.scroll_offset.y)
        return [Region(0, row - top + 1, width, 1) for row in self._visible_rows() if wanted(row, int(rows.lane[row]))]

    def _refresh_lane_rows(self, *lanes: int | None) -> None:
        """Repaint the rows of these lanes (those on screen; a folded lane's is its family's)."""
        if self.timeline is None:
            return
        rows = self._rows()
        wanted = {rows.row_of(lane) for lane in lanes}
        regions = self._row_regions(self.scrollable_content_region.width, lambda row, lane: row in wanted)
        if regions:
            self.refresh(*regions)

    def _changed_labels(self) -> list[Region]:
        """The labels that say another state at the cursor (a step changes a few); the rows' cells stay
        as they are, the cursor's column is drawn over them."""
        tl, drawn = self.timeline, self._drawn_labels
        return self._row_regions(self.layout_widths()[0], lambda row, lane: drawn.get(row) != self._label_shows(tl, row))

    def _place_cursor(self) -> None:
        """Put the cursor's column over the rows at the cursor, or hide it (no cursor in the window)."""
        column = self._cursor_column
        if not column.is_mounted or self.parent is None:
            return
        label_width, plot_width = self.layout_widths()
        col = self._cursor_column_at(plot_width)
        rows = len(self._visible_rows())
        if col is None or rows <= 0 or not self.display:
            placed = None
        else:
            origin = self.content_region.offset - self.parent.content_region.offset
            placed = (origin.x + label_width + 1 + col, origin.y + 1, rows)
        if placed != self._cursor_placed:
            before, self._cursor_placed = self._cursor_placed, placed
            column.display = placed is not None
            if placed is not None:
                screen = self.screen
                # Along the same rows, the column moves without a layout pass (stepping on the switch axis moves
                # it every step); anything else is laid out.
                if before is None or before[2] != placed[2] or not isinstance(screen, CroppedScreen) \
                        or not screen.move_absolute(column, *placed[:2]):
                    column.styles.offset = placed[:2]
                    column.styles.height = placed[2]
        column.refresh()

    def scroll_to_lane(self, lane: int | None) -> None:
        """Scroll the least that shows `lane`'s row (the ruler stays on top)."""
        tl = self.timeline
        if tl is None or lane is None:
            return
        row = self._rows().row_of(lane)
        if row is None:
            return
        visible = max(self.scrollable_content_region.height - 1, 1)
        top = int(self.scroll_offset.y)
        if row < top:
            self.scroll_to(y=row, animate=False, immediate=True)
        elif row >= top + visible:
            self.scroll_to(y=row - visible + 1, animate=False, immediate=True)

    # -- rendering ----------------------------------------------------------------------

    def render_line(self, y: int) -> Strip:
        width = self.scrollable_content_region.width
        tl = self.timeline
        if tl is None or width <= 0:
            if y == 1 and width > 0:  # the first screen: say what to do
                hint = " Pick a scenario and press Enter to run it · ? keys and glyphs · ctrl+p commands"
                return Strip([Segment(shorten(hint, width), self.cached_style("lanes--ruler"))]
                             ).adjust_cell_length(width, self.cached_style())
            return Strip.blank(width, self.cached_style())
        label_width, plot_width = self.layout_widths()
        self._check_frame(tl, plot_width)
        if y == 0:
            return self._ruler(tl, label_width, plot_width)
        rows = self._rows()
        row = y - 1 + int(self.scroll_offset.y)
        if row >= len(rows):
            return Strip.blank(width, self.cached_style())
        lane, depth = int(rows.lane[row]), int(rows.depth[row])
        shows = self._drawn_labels[row] = self._label_shows(tl, row)
        if rows.is_family(row):
            segments = self._family_label(tl, rows, row, label_width, shows)
        else:
            segments = self._label(tl, lane, depth, label_width, shows)
        segments.append(Segment("│", self._palette()["ruler"]))
        segments += self._plot(tl, row, lane, plot_width)[1]  # the cursor's cell is drawn over it
        return Strip(segments, label_width + 1 + plot_width).crop(0, width)

    def cursor_cells(self, start: int, end: int) -> list[Strip]:
        """Lines start..end of the cursor's column: the cell under the cursor in each lane row, marked with a
        glyph that reads without colour (the label says the state); blank past the last row."""
        tl = self.timeline
        pal = self._palette()
        blank = pal["cursor-blank"]
        label_width, plot_width = self.layout_widths()
        col = self._cursor_column_at(plot_width)
        rows = self._visible_rows()
        if tl is None or col is None:
            return [blank] * max(0, end - start)
        self._check_frame(tl, plot_width)
        tree = self._rows()
        mark = pal["cursor"]
        cells = pal["cursor-cells"]  # (glyph, style) -> its strip: the same few every step, their filtered forms cached
        strips = []
        for y in range(start, end):
            if y >= len(rows):
                strips.append(blank)
                continue
            row = rows[y]
            starts, segments = self._plot(tl, row, int(tree.lane[row]), plot_width)
            if not segments:
                strips.append(blank)
                continue
            i = bisect_right(starts, col) - 1
            text, style, _ = segments[i]
            key = (text[col - starts[i]], style)
            strip = cells.get(key)
            if strip is None:
                glyph = key[0]
                strip = cells[key] = Strip([Segment(CURSOR_GLYPHS.get(glyph, glyph), (style or Style()) + mark)], 1)
            strips.append(strip)
        return strips

    def _palette(self) -> dict:
        """The styles a frame uses, looked up once (a theme change clears them)."""
        pal = self._styles
        if pal is None:
            get = self.cached_style
            base = self.cached_style()
            sel = base + get("lanes--selected-row")
            states = [self._state_style(st) for st in range(len(GLYPHS))]
            pal = self._styles = {
                "base": base, "ruler": get("lanes--ruler"), "cursor": get("lanes--cursor"),
                "label": get("lanes--label"), "label-selected": get("lanes--label-selected"),
                "states": states,
                # (state -> run length -> Segment) for plain and selected rows, filled as rows are drawn
                "runs": [_Runs(GLYPHS[i], base + st) for i, st in enumerate(states)],
                "runs-selected": [_Runs(GLYPHS[i], sel + st) for i, st in enumerate(states)],
                "cursor-cells": {}, "cursor-blank": Strip.blank(1, base),
            }
        return pal

    def _check_frame(self, tl: Timeline, plot_width: int) -> None:
        key = (id(tl), tl.n_events, self.axis, self.window, plot_width)
        if key != self._frame_key:
            self._frame_key = key
            self._states.clear()
            self._plots.clear()
            self._sample_ks = None
            self._ran = None

    def _cursor_column_at(self, plot_width: int) -> int | None:
        c = self.cursor
        if c is None:
            return None
        if self.axis == SWITCH:
            return None if c.switch < 0 else self.window.switch_column(c.switch, plot_width)
        return self.window.column(c.t, plot_width)

    def _ruler(self, tl: Timeline, label_width: int, plot_width: int) -> Strip:
        style = self.cached_style("lanes--ruler")
        chars = [" "] * plot_width
        if self.axis == SWITCH:
            ticks = switch_ticks(self.window, plot_width, tl.n_switches)
            name = "switches"
        else:
            ticks = time_ticks(self.window, plot_width)
            name = "time"
        cursor = self._cursor_column_at(plot_width)
        for col, text in ticks:
            mark = "┬" + text
            end = col + len(mark)
            if cursor is not None and col < cursor < end:
                continue  # the cursor's ▼ wins over a label it would cut
            if end <= plot_width and all(ch == " " for ch in chars[col:end]):
                chars[col:end] = mark
        segments = [Segment(name[:label_width].rjust(label_width) + "│", style)]
        if cursor is None:
            segments.append(Segment("".join(chars), style))
        else:
            segments += [Segment("".join(chars[:cursor]), style),
                         Segment("▼", style + self.cached_style("lanes--cursor")),
                         Segment("".join(chars[cursor + 1:]), style)]
        return Strip(segments, label_width + 1 + plot_width)

    def _label_shows(self, tl: Timeline, row: int) -> tuple:
        """What a label shows besides the lane's name: its state at the cursor, and whether it is selected
        (a folded family: the state most of its members present are in, the density's nearest sample; a
        greenlet created and not switched to yet, or ever: UNSTARTED / NEVER)."""
        rows = self._rows()
        lane = int(rows.lane[row])
        selected = self.selected is not None and rows.row_of(self.selected) == row
        if rows.is_family(row):
            family = int(rows.family[row])
            state = NONE if self.cursor is None else self._family_state_at(tl, rows, family, self.cursor.t)
            return lane, state, selected, family
        state, ev = (NONE, None) if self.cursor is None else tl.state_at(lane, self.cursor.t)
        if state == NONE and ev is not None and tl.lanes[lane].kind == "greenlet":
            span = self._unstarted(tl, lane)  # created, not switched to yet: or ever
            state = NEVER if span is not None and span[1] is None and tl.footer is not None else UNSTARTED
        return lane, state, selected

    def _label(self, tl: Timeline, lane: int, depth: int, width: int, shows: tuple) -> list[Segment]:
        """The label's segments, exactly `width` cells: kind icon, name under its parent, and what
        `_label_shows` says: the state at the cursor, whether the lane is selected."""
        info = tl.lanes[lane]
        _, state, selected = shows[:3]
        pal = self._palette()
        style = pal["label-selected" if selected else "label"]
        word = "new" if state == UNSTARTED else "never" if state == NEVER else STATE_WORDS[state]
        room = width - STATE_WIDTH - 1
        if room < 4:  # too narrow for a state word: all of it for the name
            room, word = width, ""
        lead = f"{'▸' if selected else ' '}{'  ' * depth}{KIND_ICONS.get(info.kind, '?')} "
        name = clean(info.name, one_line=True)  # a name from a trace or a program: never raw to the terminal
        text = set_cell_size(lead + shorten(name, max(room - cell_len(lead), 0)), room)
        if not word:
            return [Segment(set_cell_size(text, width), style)]
        rest = width - room - 1
        look = pal["states"][UNSTARTED if state == NEVER else state]
        return [Segment(text + " ", style), Segment(word.ljust(rest)[:rest], style + look)]

    def _state_style(self, state: int) -> Style:
        name = {RUNNING: "lanes--running", READY_S: "lanes--ready", WAITING: "lanes--waiting",
                BLOCKING: "lanes--blocking", ERROR: "lanes--error", BRIEF: "lanes--running",
                PHASE1: "lanes--phase1", PHASE2: "lanes--phase2", UNSTARTED: "lanes--ruler"}.get(state)
        return self.cached_style(name) if name else Style()

    def _plot(self, tl: Timeline, row: int, lane: int, plot_width: int) -> tuple[list[int], list[Segment]]:
        """The row's cells as (start column of each run, one segment per run of equal cells), cached per frame."""
        rows = self._rows()
        selected = self.selected is not None and rows.row_of(self.selected) == row
        cached = self._plots.get((row, selected))
        if cached is not None:
            return cached
        if rows.is_family(row):
            cached = self._plots[(row, selected)] = self._family_plot(tl, rows, row, plot_width, selected)
            return cached
        states = self._row_states(tl, row, lane, plot_width)
        if self.axis == TIME:
            ran = self._ran_in_cells(tl, lane, plot_width)
            if ran is not None:
                # Only over quiet cells: where the lane mostly waited (or was not there); a ready-dominant
                # cell already says the lane was busy being scheduled.
                brief = ran & ((states == WAITING) | (states == NONE) | (states == DONE))
                if brief.any():
                    states = np.where(brief, BRIEF, states).astype(np.uint8)
        bands = self._phase_columns(tl, lane, plot_width)
        if bands:
            states = states.copy()
            for c0, c1, code in bands:
                states[c0:c1] = code
        unstarted = self._unstarted_columns(tl, lane, plot_width)
        if unstarted is not None:
            c0, c1 = unstarted
            states = states.copy()
            states[c0:c1] = np.where(states[c0:c1] == NONE, UNSTARTED, states[c0:c1])
        errors = self._error_columns(tl, lane, plot_width)
        if errors is not None and len(errors):
            states = states.copy()
            states[errors] = ERROR
        runs = self._palette()["runs-selected" if selected else "runs"]
        starts = [0, *(np.flatnonzero(np.diff(states)) + 1).tolist()]
        lengths = np.diff(starts + [len(states)]).tolist()
        codes = states[starts].tolist() if len(states) else []
        # One Segment per run of equal cells, shared by every row that has a run of that state and length.
        segments = [runs[st][n] for st, n in zip(codes, lengths)]
        cached = (starts if len(states) else [], segments)
        self._plots[(row, selected)] = cached
        return cached

    def _row_states(self, tl: Timeline, row: int, lane: int, plot_width: int) -> np.ndarray:
        states = self._states.get(row)
        if states is not None:
            return states
        # Rasterise every visible row that is missing in one go.
        rows = self._rows()
        top = int(self.scroll_offset.y)
        visible = range(top, min(top + self.scrollable_content_region.height, len(rows)))
        missing = [r for r in visible if r not in self._states and not rows.is_family(r)] or [row]
        if row not in missing:
            missing.append(row)
        lanes = [int(rows.lane[r]) for r in missing]
        if self.axis == SWITCH:
            block = self._switch_states(tl, lanes, plot_width)
        else:
            from ..trace.store import lane_states_many  # loaded: a timeline exists

            w = self.window
            block = lane_states_many(tl, lanes, int(w.start), max(int(w.end), int(w.start) + 1), plot_width)
        for r, states in zip(missing, block):
            self._states[r] = states
        return self._states[row]

    def _ran_in_cells(self, tl: Timeline, lane: int, plot_width: int) -> np.ndarray | None:
        """Per column: True where `lane` was switched in during the cell (time axis), None if nowhere.

        A run far shorter than a cell (a task that starts, then sleeps) would vanish
        under the dominant state; `▌` keeps it visible.
        """
        ran = self._runs_in_cells(tl, plot_width)
        if ran is None:
            return None
        row = ran[0].get(lane)
        if row is None or not ran[1][row].any():
            return None
        return ran[1][row]

    def _runs_in_cells(self, tl: Timeline, plot_width: int) -> tuple[dict[int, int], np.ndarray] | None:
        """({lane: row}, rows x columns True where that lane was switched in during the cell) for the lanes on
        screen (time axis; once per frame and scroll position): a gather over the window's switches, never
        an array a lane of the trace (a real trace has thousands of lanes)."""
        top = int(self.scroll_offset.y)
        if self._ran is not None and self._ran_key == top:
            return self._ran
        if tl.n_switches == 0 or plot_width <= 0:
            return None
        from ..trace.events import RUN

        w = self.window
        t0, t1 = int(w.start), max(int(w.end), int(w.start) + 1)
        rows = self._rows()
        visible = range(top, min(top + self.scrollable_content_region.height, len(rows)))
        lanes = [int(rows.lane[r]) for r in visible if not rows.is_family(r)]
        slot = {lane: i for i, lane in enumerate(lanes)}
        ran = np.zeros((max(len(lanes), 1), plot_width), dtype=bool)
        kinds = tl._kind.a
        for i, lane in enumerate(lanes):
            # Each lane's own changes in the window (its track, made for drawing it anyway): not the window's
            # switches of every lane, millions at 10M events.
            tr = tl._track(lane)
            t = tr.t.view()
            a, b = np.searchsorted(t, [t0, t1], side="left")
            if a == b:
                continue
            at = t[a:b][kinds[tr.events()[a:b]] == RUN]
            ran[i, ((at - t0) * plot_width) // (t1 - t0)] = True
        self._ran, self._ran_key = (slot, ran), top
        return self._ran

    def _switch_states(self, tl: Timeline, lanes: list[int], plot_width: int) -> np.ndarray:
        """The dominant state of each lane over the switches each column covers (sampled)."""
        out = np.zeros((len(lanes), plot_width), dtype=np.uint8)
        n = tl.n_switches
        if n == 0 or plot_width == 0:
            return out
        w = self.window
        per_cell = w.span / plot_width
        m = 1 if per_cell <= 1 else min(SAMPLES, int(np.ceil(per_cell)))
        cols = np.arange(plot_width)[:, None] + (np.arange(m)[None, :] + 0.5) / m
        ks = np.floor(w.start + cols * per_cell).astype(np.int64)
        valid = (ks >= 0) & (ks < n)
        times = tl.switch_times()[np.clip(ks, 0, n - 1)]
        for i, lane in enumerate(lanes):
            st = tl.states_at(lane, times.ravel()).reshape(ks.shape)
            st[~valid] = NONE
            if m == 1:
                out[i] = st[:, 0]
            else:
                counts = np.stack([(st == s).sum(axis=1) for s in range(5)])
                out[i] = counts.argmax(axis=0)
        return out

    def _unstarted(self, tl: Timeline, lane: int) -> tuple[int, int | None] | None:
        """(open time, first run's time or None) of a greenlet lane; None for any other lane."""
        if tl.lanes[lane].kind != "greenlet":
            return None
        start, _end, state, _ev = tl.lane_intervals(lane)
        if not len(start):
            return None
        t_open = int(start[0])
        if state[0] != NONE:
            return None
        ran = np.flatnonzero(state != NONE)
        return t_open, (int(start[ran[0]]) if len(ran) else None)

    def _unstarted_columns(self, tl: Timeline, lane: int, plot_width: int) -> tuple[int, int] | None:
        """The columns from a greenlet's creation to its first run (or the end): created, not started."""
        span = self._unstarted(tl, lane)
        w = self.window
        if span is None or plot_width <= 0 or w.span <= 0:
            return None
        t0, t1 = span
        if self.axis == SWITCH:
            times = tl.switch_times()
            # The switches made after its creation and before its own first one (none: no band).
            x0 = float(np.searchsorted(times, t0))
            x1 = float(np.searchsorted(times, t1)) if t1 is not None else w.end
        else:
            x0, x1 = float(t0), float(t1) if t1 is not None else float(min(w.end, tl.t_end))
        scale = plot_width / w.span
        c0 = min(max(int(np.ceil((x0 - w.start) * scale)), 0), plot_width)  # the cells it spent whole: not started
        c1 = min(max(int((x1 - w.start) * scale), c0), plot_width)
        return (c0, c1) if c0 < c1 else None

    def _error_columns(self, tl: Timeline, lane: int, plot_width: int) -> np.ndarray | None:
        """Columns holding one of `lane`'s `error` events (collected as events arrive)."""
        if self._errors_seen < tl.n_events:
            for i in tl.events_of_kind_since(self._errors_seen, "error").tolist():
                who = tl.event_lane(i)
                self._errors[who] = np.append(self._errors.get(who, np.empty(0, np.int64)), i)
            self._errors_seen = tl.n_events
        found = self._errors.get(lane)
        if found is None:
            return None
        if self.axis == SWITCH:
            positions = [tl.switch_position(int(i)) - 1 for i in found]
            cols = [self.window.switch_column(max(k, 0), plot_width) for k in positions]
        else:
            cols = [self.window.column(tl.event_time(int(i)), plot_width) for i in found]
        return np.array([c for c in cols if c is not None], dtype=np.int64)

    def _phase_columns(self, tl: Timeline, lane: int, plot_width: int) -> list[tuple[int, int, int]]:
        """[(first column, end column, PHASE1 | PHASE2)] of `lane`'s phase bands in the window, phase 2 last
        (drawn over phase 1); each band at least one column wide."""
        spans = self._phase_bands(tl).get(lane)
        if not spans or plot_width <= 0:
            return []
        w = self.window
        if w.span <= 0:
            return []
        if self.axis == SWITCH:  # a time between two switches sits half way between their columns
            times = tl.switch_times()

            def at(t: int) -> float:
                k = int(np.searchsorted(times, t))
                return float(k) if k < len(times) and times[k] == t else k - 0.5

            spans = [(at(t0), at(t1), code) for t0, t1, code in spans]
        scale = plot_width / w.span
        out = []
        for x0, x1, code in spans:
            if x1 < w.start or x0 > w.end:
                continue
            c0 = max(int((x0 - w.start) * scale), 0)
            c1 = min(max(int((x1 - w.start) * scale), c0 + 1), plot_width)
            if c0 < c1:
                out.append((c0, c1, PHASE2 if code == 2 else PHASE1))
        return out

    def _phase_bands(self, tl: Timeline) -> dict[int, list[tuple[int, int, int]]]:
        """lane -> [(t0, t1, 1 | 2)] from the lanes' phase and close events (collected as events arrive)."""
        if self._phase_spans is not None and self._phase_spans[0] == tl.n_events:
            return self._phase_spans[1]
        if self._phases_seen < tl.n_events:
            for i in tl.events_of_kind_since(self._phases_seen, "phase", "close").tolist():
                e = tl.event(i)
                reason = e.reason or ""
                code = 1 if e.kind == "phase" and reason.startswith("phase 1") else \
                    2 if e.kind == "phase" and reason.startswith("phase 2") else 0
                if code or e.lane in self._phase_marks:
                    self._phase_marks.setdefault(e.lane, []).append((e.t, code))
            self._phases_seen = tl.n_events
        bands: dict[int, list[tuple[int, int, int]]] = {}
        for lane, marks in self._phase_marks.items():
            marks = sorted(marks, key=lambda m: m[0])  # stable: file order among equal times
            spans = [(t, marks[k + 1][0] if k + 1 < len(marks) else tl.t_end, code)
                     for k, (t, code) in enumerate(marks) if code]
            bands[lane] = sorted(spans, key=lambda s: s[2])
        self._phase_spans = (tl.n_events, bands)
        return bands

    def lane_row_region(self, lane: int) -> Region | None:
        """Where `lane`'s row is in the widget's virtual space (for scrolling)."""
        tl = self.timeline
        if tl is None:
            return None
        row = self._rows().row_of(lane)
        return None if row is None else Region(0, row + 1, self.size.width, 1)

    # -- folded families -------------------------------------------------------------------

    def _family_state_at(self, tl: Timeline, rows: Rows, family: int, t: int) -> int:
        """The state most of a folded family's members present at t are in (done: none present)."""
        from ..trace.store import family_states_at  # loaded: a timeline exists

        # A label is redrawn at every step: past a few members present, the family's nearest sample answers.
        counts = family_states_at(tl, family, rows.members(family), np.array([t], dtype=np.int64), 16)[:, 0]
        live = counts[[RUNNING, READY_S, WAITING, BLOCKING]]
        if live.sum() < 0.5:
            return DONE if counts[DONE] >= 0.5 else NONE
        return (RUNNING, READY_S, WAITING, BLOCKING)[int(live.argmax())]

    def _family_label(self, tl: Timeline, rows: Rows, row: int, width: int, shows: tuple) -> list[Segment]:
        """A folded family's label: `⊞`, kind icon, how many, the name with its numbers as N, and the state
        most of them are in at the cursor."""
        family = int(rows.family[row])
        kind = tl.lanes[int(rows.lane[row])].kind
        count = int(rows.sizes[family])
        _, state, selected, _f = shows
        pal = self._palette()
        style = pal["label-selected" if selected else "label"]
        word = STATE_WORDS[state]
        room = width - STATE_WIDTH - 1
        if room < 4:
            room, word = width, ""
        lead = f"{'▸' if selected else ' '}{'  ' * int(rows.depth[row])}{FOLDED}{KIND_ICONS.get(kind, '?')} {count} "
        name = clean(rows.labels[family], one_line=True)
        text = set_cell_size(lead + shorten(name, max(room - cell_len(lead), 0)), room)
        if not word:
            return [Segment(set_cell_size(text, width), style)]
        rest = width - room - 1
        return [Segment(text + " ", style), Segment(word.ljust(rest)[:rest], style + pal["states"][state])]

    def _family_counts(self, tl: Timeline, rows: Rows, family: int, plot_width: int) -> np.ndarray:
        """(states x columns) members in each state per column, on the axis drawn."""
        from ..trace.store import family_states, family_states_at

        members = rows.members(family)
        w = self.window
        if self.axis == SWITCH:
            n = tl.n_switches
            ks = np.floor(w.start + (np.arange(plot_width) + 0.5) * (w.span / max(plot_width, 1))).astype(np.int64)
            valid = (ks >= 0) & (ks < n)
            out = np.zeros((6, plot_width))
            if n and valid.any():
                times = tl.switch_times()[ks[valid]]
                out[:, valid] = family_states_at(tl, family, members, times)
            return out
        return family_states(tl, family, members, int(w.start), max(int(w.end), int(w.start) + 1), plot_width)

    def _family_plot(self, tl: Timeline, rows: Rows, row: int, plot_width: int,
                     selected: bool) -> tuple[list[int], list[Segment]]:
        """A folded family's row: per column the share of its members present that are busy (LEVELS),
        `─` all waiting, blank none present; runs of equal cells as one segment each."""
        counts = self._family_counts(tl, rows, int(rows.family[row]), plot_width)
        busy = counts[RUNNING] + counts[READY_S] + counts[BLOCKING]
        present = busy + counts[WAITING]
        share = np.divide(busy, present, out=np.zeros_like(busy), where=present >= 0.5)
        level = np.where(present < 0.5, -1, np.where(busy <= 0, 0, np.ceil(share * 8).clip(1, 8))).astype(np.int64)
        # The colour: the busiest state (running over ready over blocking), or waiting.
        hue = np.where(counts[RUNNING] > 0, RUNNING, np.where(counts[READY_S] > 0, READY_S,
                       np.where(counts[BLOCKING] > 0, BLOCKING, WAITING)))
        code = (level + 1) * 8 + hue
        if not len(code):
            return [], []
        starts = [0, *(np.flatnonzero(np.diff(code)) + 1).tolist()]
        lengths = np.diff(starts + [len(code)]).tolist()
        pal = self._palette()
        base = pal["base"] + (self.cached_style("lanes--selected-row") if selected else Style())
        segments = []
        for c, n in zip(code[starts].tolist(), lengths):
            key = (c, n, selected)
            seg = self._family_runs.get(key)
            if seg is None:
                lv, st = c // 8 - 1, c % 8
                glyph = " " if lv < 0 else "─" if lv == 0 else LEVELS[lv - 1]
                seg = self._family_runs[key] = Segment(glyph * n, base + pal["states"][st])
            segments.append(seg)
        return starts, segments


class _Runs(dict):
    """run length -> the Segment of that many cells of one glyph and style, made on first use."""

    def __init__(self, glyph: str, style: Style) -> None:
        super().__init__()
        self.glyph, self.style = glyph, style

    def __missing__(self, n: int) -> Segment:
        segment = self[n] = Segment(self.glyph * n, self.style)
        return segment


class CursorColumn(Widget):
    """The cursor's column, drawn over the diagram's lane rows: moving the cursor repaints this column and
    the few labels whose state changes, while the rows (hundreds of cells each) stay as they were drawn.

    The diagram owns it, places it (an absolute offset in the diagram's parent) and says what each of its
    cells shows; clicks and wheel turns on it go to the diagram.
    """

    DEFAULT_CSS = """
    CursorColumn { layer: cursor; position: absolute; width: 1; height: 1; display: none; }
    """

    def __init__(self, diagram: LaneDiagram) -> None:
        super().__init__()
        self.diagram = diagram
        self._background = None  # the background its filters see, looked up once per style change

    def render_lines(self, crop: Region) -> list[Strip]:
        # All the column's cells at once, without the per-line styles cache (nothing here has padding, a
        # border or a tint): a step repaints every cell, and that cache cost twice the cells themselves.
        # The diagram hands out the same few strips step after step, so their filtered forms are cached too.
        strips = self.diagram.cursor_cells(crop.y, crop.bottom)
        filters = self.get_line_filters()
        if filters:
            background = self._background
            if background is None:
                background = self._background = self.background_colors[1]
            for f in filters:
                strips = [strip.apply_filter(f, background) for strip in strips]
        return strips

    def notify_style_update(self) -> None:
        super().notify_style_update()
        self._background = None

    def on_click(self, event: events.Click) -> None:
        event.stop()
        region = self.diagram.content_region
        self.diagram.click_at(event.screen_x - region.x, event.screen_y - region.y)

    def on_mouse_scroll_down(self, event: events.MouseScrollDown) -> None:
        event.stop()
        self.diagram.scroll_down(animate=False)

    def on_mouse_scroll_up(self, event: events.MouseScrollUp) -> None:
        event.stop()
        self.diagram.scroll_up(animate=False)
