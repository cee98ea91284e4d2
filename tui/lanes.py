"""The lane diagram: one row per lane over a time ruler, rasterised from the store with the Line API."""

from __future__ import annotations

import numpy as np
from rich.segment import Segment
from textual.geometry import Size
from textual.reactive import reactive
from textual.scroll_view import ScrollView
from textual.strip import Strip

from concurview.tui.store import DONE, NONE, READY_S, RUNNING, STATE_NAMES, WAITING, Timeline, format_time

GLYPHS = {NONE: " ", RUNNING: "█", READY_S: "▒", WAITING: "─", DONE: " "}
STATE_WORDS = {NONE: "", RUNNING: "run", READY_S: "ready", WAITING: "wait", DONE: "done"}
STATE_WIDTH = max(map(len, STATE_WORDS.values()))
KIND_ICONS = {
    "main": "◆", "thread": "≡", "process": "▣", "greenlet": "ɡ", "hub": "✱", "task": "◇",
    "generator": "↻", "timer": "◷", "loop": "⟳", "kernel": "⌁", "peer": "⇄",
}
LABEL_WIDTH = 24
RULER_ROWS = 1


def nice_step(span_ns: float, cells: int, min_gap: int = 12) -> int:
    """A 1/2/5 x 10^k tick step so labels sit at least `min_gap` cells apart."""
    if span_ns <= 0 or cells <= 0:
        return 1
    raw = span_ns * min_gap / cells
    k = 10 ** int(np.floor(np.log10(raw)))
    for m in (1, 2, 5, 10):
        if m * k >= raw:
            return int(m * k)
    return int(10 * k)


class LaneDiagram(ScrollView, can_focus=True):
    """Draws the timeline it is given; the screen owns the cursor and the window."""

    COMPONENT_CLASSES = {
        "lanes--label", "lanes--label-selected", "lanes--ruler", "lanes--running", "lanes--ready",
        "lanes--waiting", "lanes--cursor",
    }

    DEFAULT_CSS = """
    LaneDiagram { height: 1fr; background: $surface; }
    LaneDiagram > .lanes--label { color: $text; }
    LaneDiagram > .lanes--label-selected { background: $accent 40%; color: $text; text-style: bold; }
    LaneDiagram > .lanes--ruler { color: $text-muted; }
    LaneDiagram > .lanes--running { color: $success; }
    LaneDiagram > .lanes--ready { color: $warning; }
    LaneDiagram > .lanes--waiting { color: $text-muted; }
    LaneDiagram > .lanes--cursor { background: $accent 50%; }
    """

    cursor_t: reactive[int | None] = reactive(None)
    """Time of the current switch (ns); drawn as a vertical cursor."""

    selected: reactive[int] = reactive(0)
    """Index of the selected lane."""

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self.timeline: Timeline | None = None
        self.window: tuple[int, int] = (0, 1)
        self._cache: tuple | None = None
        self._states: np.ndarray | None = None

    def show(self, timeline: Timeline | None, window: tuple[int, int]) -> None:
        """Draw `timeline` over the time window [t0, t1) (ns); call again when either changed."""
        self.timeline = timeline
        self.window = window
        n = 0 if timeline is None else len(timeline.lanes)
        self.virtual_size = Size(self.size.width, n + RULER_ROWS)
        self._cache = None
        self.refresh()

    def watch_cursor_t(self) -> None:
        self.refresh()

    def watch_selected(self) -> None:
        self.refresh()

    # -- rendering --------------------------------------------------------------

    @property
    def plot_width(self) -> int:
        return max(self.size.width - LABEL_WIDTH - 1, 1)  # the label, then a │ rule

    def _lane_states(self) -> np.ndarray:
        tl = self.timeline
        assert tl is not None
        key = (id(tl), tl.n_events, self.window, self.plot_width, len(tl.lanes))
        if self._cache != key:
            t0, t1 = self.window
            self._states = tl.lane_states(range(len(tl.lanes)), t0, t1, self.plot_width)
            self._cache = key
        return self._states  # type: ignore[return-value]

    def _cursor_col(self) -> int | None:
        if self.cursor_t is None:
            return None
        t0, t1 = self.window
        if not t0 <= self.cursor_t <= t1 or t1 <= t0:
            return None
        return min(int((self.cursor_t - t0) * self.plot_width / (t1 - t0)), self.plot_width - 1)

    def render_line(self, y: int) -> Strip:
        width = self.size.width
        tl = self.timeline
        if tl is None:
            return Strip.blank(width, self.rich_style)
        if y < RULER_ROWS:
            return self._ruler(width)
        row = y - RULER_ROWS + int(self.scroll_offset.y)
        if row >= len(tl.lanes):
            return Strip.blank(width, self.rich_style)
        return self._lane_row(row, width)

    def _ruler(self, width: int) -> Strip:
        t0, t1 = self.window
        pw = self.plot_width
        chars = [" "] * pw
        step = nice_step(t1 - t0, pw)
        first = -(-t0 // step) * step
        t = first
        while t < t1:
            col = int((t - t0) * pw / (t1 - t0))
            label = "┬" + format_time(t).replace(" ", "")
            if col + len(label) <= pw:
                chars[col:col + len(label)] = label
            t += step
        style = self.get_component_rich_style("lanes--ruler")
        return Strip([Segment(" " * LABEL_WIDTH + "│", style), Segment("".join(chars), style)], width)

    def _lane_row(self, row: int, width: int) -> Strip:
        tl = self.timeline
        assert tl is not None
        lane = tl.lanes[row]
        states = self._lane_states()[row]
        label_style = self.get_component_rich_style(
            "lanes--label-selected" if row == self.selected else "lanes--label")
        depth = 0
        parent = lane.parent
        while parent is not None and depth < 4:
            depth += 1
            parent = tl.lanes[parent].parent
        state_now = ""
        if self.cursor_t is not None:
            st, _ = tl.state_at(row, self.cursor_t)
            state_now = STATE_WORDS[st]
        room = LABEL_WIDTH - STATE_WIDTH - 1
        label = f"{'  ' * depth}{KIND_ICONS.get(lane.kind, '?')} {lane.name}"
        label = (label[: room - 1] + "…") if len(label) > room else label.ljust(room)
        segments = [Segment(label + " ", label_style),
                    Segment(state_now.ljust(STATE_WIDTH), label_style),
                    Segment("│", self.get_component_rich_style("lanes--ruler"))]
        styles = {
            RUNNING: self.get_component_rich_style("lanes--running"),
            READY_S: self.get_component_rich_style("lanes--ready"),
            WAITING: self.get_component_rich_style("lanes--waiting"),
        }
        base = self.rich_style
        cursor_col = self._cursor_col()
        cursor_style = self.get_component_rich_style("lanes--cursor")
        # Runs of equal state become one segment each.
        bounds = np.flatnonzero(np.diff(states)) + 1
        start = 0
        for end in list(bounds) + [len(states)]:
            st = int(states[start])
            text = GLYPHS[st] * (end - start)
            style = styles.get(st, base)
            if cursor_col is not None and start <= cursor_col < end:
                a = cursor_col - start
                segments += [Segment(text[:a], style),
                             Segment(text[a] if text[a] != " " else "│", style + cursor_style),
                             Segment(text[a + 1:], style)]
            else:
                segments.append(Segment(text, style))
            start = end
        return Strip(segments, width).crop(0, width)


def describe_state(timeline: Timeline, lane: int, t: int) -> str:
    st, ev = timeline.state_at(lane, t)
    name = STATE_NAMES[st]
    if st == WAITING and ev is not None:
        reason = timeline.event(ev).reason
        if reason:
            name += f" ({reason})"
    return name


