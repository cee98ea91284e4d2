"""Where the user is in a trace: the cursor, the selected lane, the axis and each axis's zoom window.

The stepping model behind the keys (← → ⇧← ⇧→ ↑ ↓ [ ] home end + - 0 t and clicks), kept apart from
Textual: every move is a method that changes this state and says whether it did; the app repaints.
A live run grows the timeline under it: `follow` keeps the cursor on the newest switch until the
user moves it, and `live()` says whether a run is still streaming in.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from .axis import SWITCH, TIME, Window

if TYPE_CHECKING:
    from ..trace.store import Timeline


@dataclass(frozen=True)
class Cursor:
    """Where the user is: an event, its time, and the switch at or before it."""

    event: int
    t: int
    switch: int  # -1 before the first switch
    on_switch: bool


class Navigator:
    """The cursor model of one app: the trace on screen and where in it the user is."""

    def __init__(self, live: Callable[[], bool] = lambda: False) -> None:
        self.live = live  # whether the trace on screen is a run still streaming in
        self.axis = TIME
        # The user picked the axis (t): from then on, a trace opens and a run ends on theirs.
        self.axis_chosen = False
        self.reset(None)

    def reset(self, timeline: Timeline | None) -> None:
        """A new trace on screen: no cursor, nothing selected, both axes fit, following (the axis stays)."""
        self.timeline = timeline
        self.cursor: Cursor | None = None
        self.follow = True  # while live, the cursor stays on the newest switch until the user steps
        self.selected: int | None = None
        self.windows: dict[str, Window | None] = {TIME: None, SWITCH: None}  # None: fit everything

    # -- cursors ----------------------------------------------------------------------------------

    def switch_cursor(self, k: int) -> Cursor:
        tl = self.timeline
        assert tl is not None
        i = tl.switch_event(k)
        return Cursor(event=i, t=tl.event_time(i), switch=k, on_switch=True)

    def event_cursor(self, i: int) -> Cursor:
        tl = self.timeline
        assert tl is not None
        return Cursor(event=i, t=tl.event_time(i), switch=tl.switch_position(i) - 1, on_switch=tl.is_switch(i))

    def catch_up(self) -> None:
        """While following, put the cursor on the newest switch (or, before any, the newest event);
        select the first lane when none is."""
        tl = self.timeline
        if tl is None:
            return
        if self.follow and tl.n_switches:
            self.cursor = self.switch_cursor(tl.n_switches - 1)
        elif self.follow and tl.n_events and self.cursor is None:
            self.cursor = self.event_cursor(tl.n_events - 1)
        if self.selected is None and tl.lanes:
            self.selected = tl.lanes[0].id

    def move(self, cursor: Cursor | None, *, user: bool = True) -> None:
        """Put the cursor somewhere (a zoomed window scrolls to keep it in view); a user's move stops
        following the live run."""
        if user:
            self.follow = False
        self.cursor = cursor
        if cursor is not None:
            window = self.windows[self.axis]
            if window is not None:
                lo, hi = self.domain()
                self.windows[self.axis] = window.showing(self.position(cursor), lo, hi)

    # -- the keys ---------------------------------------------------------------------------------

    def goto_switch(self, k: int) -> bool:
        """Switch k (clamped; negative counts from the end)."""
        tl = self.timeline
        if tl is None or tl.n_switches == 0:
            return False
        if k < 0:
            k += tl.n_switches
        self.move(self.switch_cursor(max(0, min(tl.n_switches - 1, k))))
        return True

    def goto_event(self, i: int) -> bool:
        if self.timeline is None or not 0 <= i < self.timeline.n_events:
            return False
        self.move(self.event_cursor(i))
        return True

    def step(self, delta: int) -> bool:
        """← →: the previous / next switch; from between two switches, ← goes to the one before."""
        tl = self.timeline
        if tl is None or tl.n_switches == 0:
            return False
        c = self.cursor
        if c is None:
            k = 0 if delta > 0 else tl.n_switches - 1
        elif c.on_switch or delta > 0:
            k = c.switch + delta
        else:
            k = c.switch
        self.move(self.switch_cursor(max(0, min(tl.n_switches - 1, k))))
        return True

    def event(self, delta: int) -> bool:
        """⇧← ⇧→: the previous / next event of any kind, in time order."""
        tl = self.timeline
        if tl is None or tl.n_events == 0:
            return False
        i = tl.event_step(0, 0) if self.cursor is None else tl.event_step(self.cursor.event, delta)
        if i is None:
            return False
        self.move(self.event_cursor(i))
        return True

    def lane(self, delta: int) -> bool:
        """↑ ↓: select the lane above / below, in the diagram's order."""
        tl = self.timeline
        if tl is None or not tl.lanes:
            return False
        order = [lane for lane, _ in tl.lane_tree()]
        if self.selected not in order:
            row = 0 if delta > 0 else len(order) - 1
        else:
            row = max(0, min(len(order) - 1, order.index(self.selected) + delta))
        self.selected = order[row]
        return True

    def lane_switch(self, delta: int) -> bool | None:
        """[ ]: the selected lane's previous / next switch. None: it has none that way (nothing moved)."""
        tl = self.timeline
        if tl is None or tl.n_switches == 0:
            return False
        if self.selected is None:
            self.selected = tl.lanes[0].id if self.cursor is None else tl.event_lane(self.cursor.event)
        c = self.cursor
        here = -1 if c is None else c.switch
        if delta < 0 and c is not None and not c.on_switch:
            here += 1  # the switch just before the cursor counts as a previous one
        k = tl.lane_switch(self.selected, here, delta)
        if k is None:
            return None
        self.move(self.switch_cursor(k))
        return True

    def jump(self, where: str) -> bool:
        """home end: the first / last switch; `last` during a live run follows it again."""
        tl = self.timeline
        if tl is None or tl.n_switches == 0:
            return False
        if where == "last" and self.live():
            self.follow = True
            self.move(self.switch_cursor(tl.n_switches - 1), user=False)
        else:
            self.move(self.switch_cursor(0 if where == "first" else tl.n_switches - 1))
        return True

    def click(self, lane: int | None, start: float | None, end: float | None) -> bool:
        """A click on the diagram: select its lane; move to a switch in the clicked cell (on the time
        axis the clicked lane's own if it has one there)."""
        tl = self.timeline
        if tl is None:
            return False
        if lane is not None:
            self.selected = lane
        if start is None or end is None or tl.n_switches == 0:
            return True
        if self.axis == SWITCH:
            k = int((start + end) / 2)
        else:
            k = self.switch_in(int(start), int(end), lane)
        self.move(self.switch_cursor(max(0, min(tl.n_switches - 1, k))))
        return True

    def switch_in(self, t0: int, t1: int, lane: int | None) -> int:
        """A switch in [t0, t1): the lane's if it has one there, else the first; else the last before."""
        tl = self.timeline
        assert tl is not None
        first = tl.switch_index_at(t0 - 1) + 1
        last = tl.switch_index_at(t1 - 1)
        if first <= last:
            if lane is not None:
                hits = (tl.switch_lanes()[first:last + 1] == lane).nonzero()[0]
                if len(hits):
                    return first + int(hits[0])
            return first
        return max(last, 0)

    # -- zoom and axis ----------------------------------------------------------------------------

    def domain(self, axis: str | None = None) -> tuple[float, float]:
        """The whole extent of an axis: time from the first event to just past the last; all switches."""
        tl = self.timeline
        axis = axis or self.axis
        if tl is None:
            return 0.0, 1.0
        if axis == SWITCH:
            return 0.0, float(max(tl.n_switches, 1))
        lo, hi = tl.t_first, tl.t_end
        return float(lo), float(hi + max((hi - lo) // 50, 1))

    def position(self, cursor: Cursor) -> float:
        return cursor.switch + 0.5 if self.axis == SWITCH else float(cursor.t)

    def window(self) -> Window:
        """The visible window of the current axis (following a live run keeps the newest end in view)."""
        lo, hi = self.domain()
        w = self.windows[self.axis]
        if w is None:
            return Window(lo, hi)
        if self.follow and self.live():
            return Window(hi - w.span, hi).clamped(lo, hi)
        return w.clamped(lo, hi)

    def min_span(self, plot_width: int) -> float:
        """The narrowest window: 4 switches, or one nanosecond a column (at least 100 ns)."""
        if self.axis == SWITCH:
            return min(4.0, self.domain()[1])
        return float(max(plot_width, 100))

    def zoom(self, factor: float, plot_width: int) -> bool:
        """+ -: the window `factor` times as wide, around the cursor (or the middle)."""
        if self.timeline is None:
            return False
        lo, hi = self.domain()
        current = self.window()
        around = self.position(self.cursor) if self.cursor is not None else (current.start + current.end) / 2
        zoomed = current.zoomed(factor, around, lo, hi, self.min_span(plot_width))
        self.windows[self.axis] = None if zoomed.span >= hi - lo else zoomed
        return True

    def fit(self) -> None:
        self.windows[self.axis] = None

    def initial_axis(self, *, live: bool = False) -> str:
        """The axis a trace starts on, or a run settles on once it has ended: the user's if they picked
        one (t), else the switch axis when the switches are bunched into a sliver of the run (on a time
        axis they would fall in a column or two: a ping-pong after a slow start-up), else time. A run
        still streaming in starts on time: its switches are not all there yet."""
        tl = self.timeline
        if self.axis_chosen:
            return self.axis
        if live or tl is None:
            return TIME
        return SWITCH if tl.switches_clustered() else TIME

    def toggle_axis(self, plot_width: int) -> None:
        """t: time axis <-> switch axis; the switch axis opens one column a switch around the cursor."""
        self.axis_chosen = True
        self.axis = SWITCH if self.axis == TIME else TIME
        tl = self.timeline
        if self.axis == SWITCH and self.windows[SWITCH] is None and tl is not None:
            if tl.n_switches > plot_width > 0:
                k = self.cursor.switch if self.cursor is not None else tl.n_switches - 1
                lo, hi = self.domain()
                self.windows[SWITCH] = Window(k - plot_width / 2, k + plot_width / 2).clamped(lo, hi)
