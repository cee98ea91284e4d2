"""The source pane (the program, with where each lane runs or waits) and the log pane (output per lane, dimmed after the cursor)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING
from rich.cells import cell_len, set_cell_size
from rich.segment import Segment
from rich.style import Style
from textual import events
from textual.binding import Binding
from textual.content import Content
from textual.geometry import Region, Size
from textual.message import Message
from textual.reactive import reactive
from textual.scroll_view import ScrollView
from textual.strip import Strip
from textual.widget import Widget

from ..trace.narrative import format_time
from .lanes import CachedStyles
from ..trace.text import clean, shorten
from ..trace.states import BLOCKING, READY_S, RUNNING, LazyNumpy

if TYPE_CHECKING:
    import numpy as np

    from ..trace.store import Timeline
else:
    np = LazyNumpy(globals())



SOURCE_MARKS = {RUNNING: "▶", READY_S: "▷"}  # any other live state: suspended
SUSPENDED_MARK = "‖"
SOURCE_SHOWN_MAX = 1 << 20  # characters of source the pane shows (a trace stores up to 1 MB of it)
HIGHLIGHT_MAX = 128 << 10  # characters it syntax-highlights (pygments: ~5 s a MB, on the UI's thread)
LINE_MAX = 1024  # characters of a source line kept (wider than any pane; a minified line costs every repaint)


class InfoLine(Widget):
    """A line or two of text (status, explanation) that repaints without a layout pass."""

    DEFAULT_CSS = """
    InfoLine { height: 1; }
    """

    text: reactive[Content | str] = reactive(Content(""))
    """What to show; markup is not parsed. Text from a trace or a program goes through text.clean()
    first (a str here is cleaned; a Content is assembled from cleaned parts)."""

    def validate_text(self, text: Content | str) -> Content | str:
        return clean(text).expandtabs(4) if isinstance(text, str) else text

    def render(self) -> Content:
        return self.text if isinstance(self.text, Content) else Content(self.text)


@dataclass(frozen=True)
class Source:
    """What the source pane shows: a program's text and its file name (events' `where` say `name:line`),
    or, without text, why there is none. The pane never opens a file: the app passes text it holds."""

    name: str
    text: str | None
    note: str = ""


@dataclass(frozen=True)
class SourceMark:
    """A lane at a line of the program: running there, or suspended there."""

    line: int
    lane: str
    state: int
    current: bool  # the lane the current switch handed control to


# The panes' own keys: up and down scroll; left, right, home and end stay the app's (they move the cursor).
_SCROLL_KEYS = [
    Binding("up", "scroll_up", "Scroll up", show=False),
    Binding("down", "scroll_down", "Scroll down", show=False),
    Binding("pageup", "page_up", "Page up", show=False),
    Binding("pagedown", "page_down", "Page down", show=False),
]


class SourceView(CachedStyles, ScrollView, can_focus=True, inherit_bindings=False):
    """The program's source, syntax highlighted, with the lanes' lines marked; follows the current switch."""

    BINDINGS = _SCROLL_KEYS

    COMPONENT_CLASSES = {
        "source--gutter", "source--current", "source--running", "source--suspended", "source--note",
        "source--missing",
    }

    DEFAULT_CSS = """
    SourceView {
        background: $surface;
        overflow-x: hidden;  /* long lines are cropped: no horizontal bar coming and going */
        scrollbar-size-vertical: 1;
        & > .source--gutter { color: $text-muted; }
        & > .source--current { background: $success 25%; }
        & > .source--running { background: $success 12%; }
        & > .source--suspended { background: $warning 12%; }
        & > .source--note { color: $text-accent; text-style: italic; }
        & > .source--missing { color: $text-muted; text-style: italic; }
    }
    """

    source: reactive[Source | None] = reactive(None)
    """The program shown (None: nothing to show)."""

    marks: reactive[tuple[SourceMark, ...]] = reactive((), repaint=False)
    """The lines where lanes are at the cursor, current lane first (the watcher repaints what changed)."""

    def __init__(self, *, id: str | None = None, classes: str | None = None) -> None:
        super().__init__(id=id, classes=classes)
        self._lines: list[str] = []
        self._highlighted: list | None = None
        self._strips: dict[int, Strip] = {}
        self._problem = ""

    @property
    def file_name(self) -> str | None:
        """The file name of the program shown (None: no source text shown)."""
        return None if self.source is None or not self._lines else self.source.name

    def watch_source(self, source: Source | None) -> None:
        self._lines, self._highlighted, self._strips = [], None, {}
        self._problem = ""
        if source is not None and source.text is not None and len(source.text) > SOURCE_SHOWN_MAX:
            self._problem = f"{clean(source.name, one_line=True)}: source too large to show " \
                            f"({len(source.text) / 2**20:.1f} MB)"
        elif source is not None and source.text is not None:
            # The text comes from a trace: its control characters are shown escaped, never sent.
            self._lines = [line.expandtabs(4)[:LINE_MAX] for line in clean(source.text).splitlines()]
            if len(source.text) > HIGHLIGHT_MAX:
                self._highlighted = []  # shown plain
        elif source is not None:
            self._problem = clean(source.note or "source not stored in this trace", one_line=True)
        self.virtual_size = Size(self.size.width, max(len(self._lines), 1))
        self.scroll_to(y=0, animate=False, immediate=True)
        self.refresh()

    def watch_marks(self, old: tuple[SourceMark, ...], marks: tuple[SourceMark, ...]) -> None:
        top = self.scroll_offset.y
        if marks:
            self.scroll_to_line(marks[0].line)
        if self.scroll_offset.y != top or self.scrollable_content_region.height <= 0:
            self.refresh()
            return
        # Only the lines that gain or lose a mark change.
        for line in {m.line for m in old} | {m.line for m in marks}:
            self.refresh_line(line - 1)

    def notify_style_update(self) -> None:
        super().notify_style_update()
        self._strips.clear()

    def scroll_to_line(self, line: int) -> None:
        """Bring `line` (1-based) into view with some context above it."""
        height = self.scrollable_content_region.height
        if height <= 0:  # not laid out yet: scrolling now would be clamped to nothing
            self.call_after_refresh(self.scroll_to_line, line)
            return
        top = int(self.scroll_offset.y)
        row = line - 1
        if not top + 1 <= row <= top + height - 2:
            self.scroll_to(y=max(row - height // 3, 0), animate=False, immediate=True)

    def _code_strip(self, row: int) -> Strip:
        strip = self._strips.get(row)
        if strip is None:
            if self._highlighted is None:
                from textual.highlight import highlight  # pygments: only once a source is shown

                code = "\n".join(self._lines)
                self._highlighted = highlight(code, language="python").split("\n", allow_blank=True)
            content = self._highlighted[row] if row < len(self._highlighted) else None
            if content is None:
                strip = Strip([Segment(self._lines[row])])
            else:
                strip = Strip(content.render_segments(self.visual_style))
            self._strips[row] = strip
        return strip

    def render_line(self, y: int) -> Strip:
        width = self.scrollable_content_region.width
        if not self._lines:
            if y == 0 and self._problem:
                return Strip([Segment(self._problem, self.cached_style("source--missing"))]
                             ).adjust_cell_length(width, self.cached_style())
            return Strip.blank(width, self.cached_style())
        row = y + int(self.scroll_offset.y)
        if row >= len(self._lines):
            return Strip.blank(width, self.cached_style())
        line = row + 1
        here = [m for m in self.marks if m.line == line]
        digits = len(str(len(self._lines)))
        gutter_style = self.cached_style("source--gutter")
        mark = " "
        line_style: Style | None = None
        if here:
            first = here[0]
            mark = SOURCE_MARKS.get(first.state, SUSPENDED_MARK)
            name = ("source--current" if first.current else
                    "source--running" if first.state == RUNNING else "source--suspended")
            line_style = self.cached_style(name)
        gutter = Strip([Segment(f"{mark}{line:>{digits}}│", gutter_style)])
        code = self._code_strip(row)
        parts = [gutter, code]
        if here:
            note = "  ◀ " + _note(here)
            avail = width - gutter.cell_length
            # The code keeps its words (up to 3/5 of the line) unless the note fits beside all of it.
            code_room = max(min(code.cell_length, avail - cell_len(note)), min(code.cell_length, avail * 3 // 5, 60))
            if code.cell_length > code_room:
                parts[1] = code.crop(0, code_room)
            room = max(avail - code_room, 0)
            if cell_len(note) > room:
                # Shorten the first lane's name, never its state: `◀ ForkP…26417) runs (+2)`.
                first = here[0]
                tail = f" {_STATE_NOTE.get(first.state, ('waits', 'wait'))[0]}"
                tail += f" (+{len(here) - 1})" if len(here) > 1 else ""
                name_room = room - cell_len("  ◀ " + tail)
                note = "  ◀ " + shorten(clean(first.lane, one_line=True), name_room) + tail if name_room >= 4 else ""
            parts.append(Strip([Segment(note, self.cached_style("source--note"))]))
        strip = Strip.join(parts).adjust_cell_length(width, self.cached_style())
        if line_style is not None:
            strip = strip.apply_style(line_style)
        return strip.crop(0, width)


_STATE_NOTE = {RUNNING: ("runs", "run"), READY_S: ("is ready", "are ready"),
               BLOCKING: ("blocks the thread", "block the thread")}


def _note(marks: list[SourceMark]) -> str:
    """`A runs, B and C wait`: the lanes at one line, grouped by what they do there."""
    groups: dict[tuple[str, str], list[str]] = {}
    for m in marks:
        groups.setdefault(_STATE_NOTE.get(m.state, ("waits", "wait")), []).append(clean(m.lane, one_line=True))
    out = []
    for (one, many), lanes in groups.items():
        names = lanes[0] if len(lanes) == 1 else ", ".join(lanes[:-1]) + " and " + lanes[-1]
        out.append(f"{names} {one if len(lanes) == 1 else many}")
    return ", ".join(out)


def _output_lines(e) -> list[str]:
    """The lines an output event shows: a log's or error's text; a mark's message (its reason), with its
    text after it in brackets when that is one line, or under it when it is several."""
    text = (e.text or "").splitlines()
    if e.kind != "mark" or not e.reason:
        return text or [""]
    if len(text) == 1:
        return [f"{e.reason} ({text[0]})"]
    return [e.reason, *text]


class LogView(CachedStyles, ScrollView, can_focus=True, inherit_bindings=False):
    """What the program printed, line by line and lane by lane; lines after the cursor are dim."""

    BINDINGS = _SCROLL_KEYS

    COMPONENT_CLASSES = {"log--time", "log--lane", "log--later", "log--error", "log--mark", "log--stderr"}

    DEFAULT_CSS = """
    LogView {
        background: $surface;
        overflow-x: hidden;
        scrollbar-size-vertical: 1;
        & > .log--time { color: $text-muted; }
        & > .log--lane { color: $text-secondary; }
        & > .log--later { color: $text-disabled; }
        & > .log--error { color: $text-error; text-style: bold; }
        & > .log--mark { color: $text-accent; text-style: italic; }
        & > .log--stderr { color: $text-warning; }
    }
    """

    timeline: reactive[Timeline | None] = reactive(None, always_update=True)
    """The trace whose output is shown (read only)."""

    version: reactive[int] = reactive(0)
    """Events in the timeline when the app last said so; new output is indexed on change."""

    cursor_t: reactive[int | None] = reactive(None, repaint=False)
    """Lines printed at or before this time are bright; None: all are (the watcher repaints what changed)."""

    class LineClicked(Message):
        """The user clicked a line: the event that printed it."""

        def __init__(self, event: int) -> None:
            super().__init__()
            self.event = event

    def __init__(self, *, id: str | None = None, classes: str | None = None) -> None:
        super().__init__(id=id, classes=classes)
        self._reset()

    def _reset(self) -> None:
        # numpy arrays once output arrives (no numpy before a trace is shown: the first frame is faster).
        self._events: np.ndarray | tuple = ()  # log / error / mark events, in order
        self._times: np.ndarray | tuple = ()
        self._first_row: np.ndarray | tuple = (0,)  # entry j covers rows [first[j], first[j + 1])
        self._seen = 0
        self._name_width = 4
        self._rows: dict[int, tuple[str, str, int]] = {}

    @property
    def line_count(self) -> int:
        return int(self._first_row[-1])

    def watch_timeline(self) -> None:
        self._reset()
        self._index()

    def watch_version(self) -> None:
        self._index()

    def watch_cursor_t(self, old: int | None, new: int | None) -> None:
        top = self.scroll_offset.y
        self.scroll_to_cursor()
        if old is None or new is None or self.scroll_offset.y != top or not len(self._times):
            self.refresh()
            return
        # Only the lines printed between the old and the new cursor change (bright <-> dim).
        lo, hi = sorted((old, new))
        a, b = np.searchsorted(self._times, [lo, hi], side="right")
        first, last = int(self._first_row[a]), int(self._first_row[b])
        y0, y1 = max(first - int(top), 0), min(last - int(top), self.scrollable_content_region.height)
        if y1 > y0:
            self.refresh(Region(0, y0, self.scrollable_content_region.width, y1 - y0))

    def _index(self) -> None:
        """Index the output that arrived since the last call (each event's text is split once)."""
        tl = self.timeline
        if tl is None or tl.n_events <= self._seen:
            self.virtual_size = Size(self.size.width, self.line_count)
            self.refresh()
            return
        new = tl.events_of_kind_since(self._seen, "log", "error", "mark")
        self._seen = tl.n_events
        if len(new):
            if isinstance(self._events, tuple):
                self._events, self._times = np.empty(0, dtype=np.int64), np.empty(0, dtype=np.int64)
                self._first_row = np.zeros(1, dtype=np.int64)
            counts = np.array([len(_output_lines(tl.event(int(i)))) if tl.event_kind(int(i)) == "mark"
                               else len((tl.event_text(int(i)) or "").splitlines()) or 1 for i in new],
                              dtype=np.int64)
            self._events = np.concatenate([self._events, new])
            self._times = np.concatenate([self._times, [tl.event_time(int(i)) for i in new]])
            self._first_row = np.concatenate([self._first_row, self._first_row[-1] + np.cumsum(counts)])
            names = {tl.event_lane(int(i)) for i in new[-256:]}
            self._name_width = min(max([self._name_width, *(len(tl.lanes[n].name) for n in names)]), 16)
        at_end = self.scroll_offset.y >= self.max_scroll_y
        self.virtual_size = Size(self.size.width, self.line_count)
        if self.cursor_t is None and at_end:
            self.scroll_end(animate=False, immediate=True)
        self.refresh()

    def scroll_to_cursor(self) -> None:
        """Keep the last line printed at or before the cursor in view (or the end, when following)."""
        if self.cursor_t is None:
            self.scroll_end(animate=False, immediate=True)
            return
        j = int(np.searchsorted(self._times, self.cursor_t, side="right"))
        row = int(self._first_row[j]) - 1
        height = self.scrollable_content_region.height
        top = int(self.scroll_offset.y)
        if row < top or row >= top + height:
            self.scroll_to(y=max(row - height + 2, 0), animate=False, immediate=True)

    def on_click(self, event: events.Click) -> None:
        offset = event.get_content_offset(self)
        if offset is None:
            return
        row = offset.y + int(self.scroll_offset.y)
        if 0 <= row < self.line_count:
            j = int(np.searchsorted(self._first_row, row, side="right")) - 1
            self.post_message(self.LineClicked(int(self._events[j])))

    def entry(self, row: int) -> tuple[int, int]:
        """(event index, line within its text) shown at `row`."""
        j = int(np.searchsorted(self._first_row, row, side="right")) - 1
        return int(self._events[j]), row - int(self._first_row[j])

    def render_line(self, y: int) -> Strip:
        width = self.scrollable_content_region.width
        tl = self.timeline
        row = y + int(self.scroll_offset.y)
        if tl is None or row >= self.line_count:
            return Strip.blank(width, self.cached_style())
        ev, k = self.entry(row)
        e = tl.event(ev)
        text = _output_lines(e)
        line = text[k] if k < len(text) else ""
        name = clean(tl.lanes[e.lane].name, one_line=True)
        later = self.cursor_t is not None and e.t > self.cursor_t
        style = self.cached_style()
        get = self.cached_style
        if e.kind == "error":
            text_style, sign = get("log--error"), "✗"
        elif e.kind == "mark":
            text_style, sign = get("log--mark"), "◆"
        elif e.reason == "stderr":
            text_style, sign = get("log--stderr"), " "
        else:
            text_style, sign = style, " "
        if k:
            sign = " "
        if later:
            dim = get("log--later")
            # Later errors keep their colour, dimmed: they still stand out.
            text_style = text_style + Style(dim=True) if e.kind == "error" else text_style + dim
            time_style, lane_style = dim, dim
        else:
            time_style, lane_style = get("log--time"), get("log--lane")
        nw = self._name_width
        if k == 0:
            who = set_cell_size(shorten(name, nw), nw)
            prefix = [Segment(f"{format_time(e.t):>9} ", time_style), Segment(f"{who} ", lane_style)]
        else:
            prefix = [Segment(" " * (11 + nw), style)]
        # Program output and trace text: escaped, never sent raw (after the split into lines and the tabs).
        segments = [*prefix, Segment(sign, text_style), Segment(clean(line.expandtabs(4), one_line=True), text_style)]
        return Strip(segments).adjust_cell_length(width, style).crop(0, width)
