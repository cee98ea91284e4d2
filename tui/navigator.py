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
from ..trace.states import LazyNumpy

if TYPE_CHECKING:
    import numpy as np

    from ..trace.store import Timeline
else:
    np = LazyNumpy(globals())

FOLD_AT = 8  # lanes of one family from which the family folds into one row (while folding is on)


class Rows:
    """The diagram's rows: lanes in the tree's order, a filter's misses left out, each folded family's
    members drawn as one row where its first member was. Arrays, made once per (lanes, folds, filter):
    a key press asks them in O(1) (`lane_row`, `row_lane`), never walks the lanes.

    Per row: `lane` (the lane, or a folded family's first member shown), `depth`, `family` (-1: a lane
    row; else the folded family's code). `lane_row[l]`: the row showing lane l (its family's when
    folded; -1 when the filter hides it). `members(f)`: the lanes shown of family f.
    """

    def __init__(self, lane: np.ndarray, depth: np.ndarray, family: np.ndarray, n_lanes: int,
                 codes: np.ndarray, labels: list[str], shown: np.ndarray, kinds: list[str] | None = None,
                 sizes: np.ndarray | None = None) -> None:
        self.lane, self.depth, self.family = lane, depth, family
        self.codes, self.labels, self.shown = codes, labels, shown  # per lane: family code, filter's verdict
        self.n_lanes = n_lanes
        self.n_shown = int(np.count_nonzero(shown))
        self.sizes = sizes if sizes is not None else np.bincount(codes[shown], minlength=len(labels))
        self.kinds = kinds or []
        self.lane_row = np.full(n_lanes, -1, dtype=np.int64)
        rows = np.arange(len(lane))
        self.lane_row[lane[family < 0]] = rows[family < 0]
        folded = family >= 0
        if folded.any():
            row_of_family = np.full(len(labels), -1, dtype=np.int64)
            row_of_family[family[folded]] = rows[folded]
            hidden = shown & (row_of_family[codes] >= 0)
            self.lane_row[hidden] = row_of_family[codes[hidden]]
        self._members: dict[int, np.ndarray] = {}

    def __len__(self) -> int:
        return len(self.lane)

    def is_family(self, row: int) -> bool:
        return 0 <= row < len(self.family) and self.family[row] >= 0

    def members(self, family: int) -> np.ndarray:
        """The lanes of `family` the filter shows, by id."""
        got = self._members.get(family)
        if got is None:
            got = self._members[family] = np.flatnonzero(self.shown & (self.codes == family))
        return got

    def row_of(self, lane: int | None) -> int | None:
        if lane is None or not 0 <= lane < self.n_lanes:
            return None
        row = int(self.lane_row[lane])
        return None if row < 0 else row


def build_rows(tl: Timeline, folding: bool, overrides: dict[int, bool], shown: np.ndarray | None) -> Rows:
    """The rows of `tl`: families of FOLD_AT lanes or more folded while `folding` (an override per family
    says otherwise: Enter on it), lanes the filter's `shown` (bool per lane, None: all) leaves out gone."""
    from ..trace.store import lane_families, lane_tree_arrays

    lanes, depth = lane_tree_arrays(tl)
    codes, labels = lane_families(tl)
    n = len(tl.lanes)
    if shown is None:
        shown = np.ones(n, dtype=bool)
    keep = shown[lanes]
    lanes, depth = lanes[keep], depth[keep]
    sizes = np.bincount(codes[shown], minlength=len(labels))
    fold = sizes >= FOLD_AT if folding else np.zeros(len(labels), dtype=bool)
    for f, want in overrides.items():
        if f < len(fold):
            fold[f] = want and sizes[f] > 1
    fam = codes[lanes]
    in_folded = fold[fam]
    family = np.full(len(lanes), -1, dtype=np.int32)
    if in_folded.any():
        at = np.flatnonzero(in_folded)
        _, first = np.unique(fam[at], return_index=True)
        heads = at[first]
        drop = np.ones(len(lanes), dtype=bool)
        drop[heads] = False
        keep = ~(in_folded & drop)
        family[heads] = fam[heads]
        lanes, depth, family = lanes[keep], depth[keep], family[keep]
    return Rows(lanes, depth, family, n, codes, labels, shown, sizes=sizes)


@dataclass(frozen=True)
class LaneFilter:
    """What the lane filter keeps: every term must match. A term is a name substring, `kind:K`,
    `state:S` (its state at the cursor: run, ready, wait, block, done) or `waited:X` (it waited on a
    reason holding X at some time)."""

    text: str
    names: tuple[str, ...] = ()
    kinds: tuple[str, ...] = ()
    states: tuple[int, ...] = ()
    waited: tuple[str, ...] = ()

    @property
    def needs_cursor(self) -> bool:
        return bool(self.states)

    @classmethod
    def parse(cls, text: str) -> LaneFilter:
        """The filter `text` says; ValueError names a term it cannot read."""
        from ..trace.states import BLOCKING, DONE, NONE, READY_S, RUNNING, WAITING

        words = {"run": RUNNING, "running": RUNNING, "ready": READY_S, "wait": WAITING, "waiting": WAITING,
                 "block": BLOCKING, "blocking": BLOCKING, "done": DONE, "none": NONE, "new": NONE}
        names, kinds, states, waited = [], [], [], []
        for term in text.split():
            key, colon, value = term.partition(":")
            if not colon:
                names.append(term.lower())
            elif key == "kind" and value:
                kinds.append(value.lower())
            elif key == "state" and value.lower() in words:
                states.append(words[value.lower()])
            elif key == "state":
                raise ValueError(f"state:{value}? one of run, ready, wait, block, done")
            elif key == "waited" and value:
                waited.append(value)
            else:
                names.append(term.lower())  # a name with a colon in it (`host:port`)
        return cls(text.strip(), tuple(names), tuple(kinds), tuple(states), tuple(waited))

    def mask(self, tl: Timeline, t: int | None) -> np.ndarray:
        """Per lane: whether it passes (name terms read each name once: a typed filter, not a key press)."""
        from ..trace.store import lanes_in_state, lanes_that_waited

        n = len(tl.lanes)
        out = np.ones(n, dtype=bool)
        if self.kinds:
            codes, kinds = tl.lanes.kind_codes()
            ok = np.array([any(k.startswith(want) for want in self.kinds) for k in kinds], dtype=bool)
            out &= ok[codes] if len(ok) else False
        for q in self.waited:
            out &= lanes_that_waited(tl, q)
        if self.names:
            names = self.names
            for i in np.flatnonzero(out).tolist():
                name = tl.lanes.name(i).lower()
                if not all(q in name for q in names):
                    out[i] = False
        if self.states:
            out = lanes_in_state(tl, out, -1 if t is None else t, self.states)
        return out


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
        self.folding = True  # families of FOLD_AT lanes or more fold into one row (f)
        self.reset(None)

    def reset(self, timeline: Timeline | None) -> None:
        """A new trace on screen: no cursor, nothing selected, both axes fit, following (the axis stays)."""
        self.timeline = timeline
        self.cursor: Cursor | None = None
        self.follow = True  # while live, the cursor stays on the newest switch until the user steps
        self.selected: int | None = None
        self.windows: dict[str, Window | None] = {TIME: None, SWITCH: None}  # None: fit everything
        self.fold_overrides: dict[int, bool] = {}  # family -> folded, where the user said (Enter, a click)
        self.lane_filter: LaneFilter | None = None
        self._rows: Rows | None = None
        self._rows_key: tuple | None = None
        self._shown_key: tuple | None = None
        self._shown: np.ndarray | None = None

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
        rows = self.rows()
        if not len(rows):
            return False
        here = rows.row_of(self.selected)
        if here is None:
            row = 0 if delta > 0 else len(rows) - 1
        else:
            row = max(0, min(len(rows) - 1, here + delta))
        if row == here:
            return True
        self.selected = self.lane_on_row(row)
        return True

    def lane_on_row(self, row: int) -> int:
        """The lane selecting row `row` selects: a lane row's lane; on a folded family's row, the member that
        ran at the cursor's switch if one did, else the first member present at the cursor, else the first."""
        rows = self.rows()
        if not rows.is_family(row):
            return int(rows.lane[row])
        tl, c = self.timeline, self.cursor
        if tl is not None and c is not None and c.switch >= 0:
            ran = int(tl.switch_lanes()[c.switch])
            if rows.row_of(ran) == row:
                return ran
        if tl is not None and c is not None:
            from ..trace.store import lane_lifetimes

            first, end = lane_lifetimes(tl)
            members = rows.members(int(rows.family[row]))
            alive = members[(first[members] <= c.t) & (end[members] > c.t)]
            if len(alive):
                return int(alive[0])  # one that is there at the cursor: its line says something
        return int(rows.lane[row])

    # -- rows: folding and the filter ---------------------------------------------------------------

    def rows(self) -> Rows:
        """The diagram's rows now (rebuilt only when the lanes, the folds or the filter change; a
        `state:` filter also when the cursor moves)."""
        tl = self.timeline
        assert tl is not None
        shown = self._filter_mask()
        key = (id(tl), len(tl.lanes), self.folding, tuple(sorted(self.fold_overrides.items())), self._shown_key)
        if key != self._rows_key or self._rows is None:
            self._rows = build_rows(tl, self.folding, self.fold_overrides, shown)
            self._rows_key = key
        return self._rows

    def _filter_mask(self) -> np.ndarray | None:
        tl, f = self.timeline, self.lane_filter
        if f is None or tl is None:
            self._shown_key, self._shown = None, None
            return None
        t = None if self.cursor is None else self.cursor.t
        grows = bool(f.waited or f.states)  # a name or kind does not change as events arrive
        key = (id(tl), len(tl.lanes), tl.n_events if grows else 0, f, t if f.needs_cursor else None)
        if key != self._shown_key:
            self._shown = f.mask(tl, t)
            self._shown_key = key
        return self._shown

    def set_filter(self, text: str) -> None:
        """Show only the lanes `text` picks (LaneFilter); empty clears it. ValueError: a term it cannot read."""
        self.lane_filter = LaneFilter.parse(text) if text.strip() else None

    def toggle_folding(self) -> None:
        """f: fold every family of FOLD_AT lanes or more, or none (what Enter said per family is forgotten)."""
        self.folding = not self.folding
        self.fold_overrides.clear()

    def family_of_selected(self) -> int | None:
        """The family Enter folds or unfolds: the selected row's if folded, else the selected lane's when
        it has siblings (an unfolded family folds back)."""
        if self.timeline is None or self.selected is None:
            return None
        rows = self.rows()
        row = rows.row_of(self.selected)
        if row is None:
            return None
        if rows.is_family(row):
            return int(rows.family[row])
        f = int(rows.codes[self.selected])
        return f if rows.sizes[f] > 1 else None

    def toggle_family(self, family: int) -> bool:
        """Fold or unfold one family; the selection stays on the lane (or the family's row)."""
        rows = self.rows()
        folded = bool(np.any(rows.family == family))
        self.fold_overrides[family] = not folded
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
        rows = self.rows()
        row = rows.row_of(self.selected)
        if row is not None and rows.is_family(row):
            k = self._family_switch(rows, int(rows.family[row]), here, delta)
            if k is None:
                return None
            self.selected = int(tl.switch_lanes()[k])  # the member that runs: the explanation names it
        else:
            k = tl.lane_switch(self.selected, here, delta)
            if k is None:
                return None
        self.move(self.switch_cursor(k))
        return True

    def _family_switch(self, rows: Rows, family: int, k: int, step: int) -> int | None:
        """The next / previous switch of any lane of a folded family after / before switch k."""
        tl = self.timeline
        assert tl is not None
        lanes = tl.switch_lanes()
        ok = rows.shown & (rows.codes == family)
        # Windows growing from the cursor: the next member's switch is usually near, the trace long.
        window, n = 1024, len(lanes)
        if step > 0:
            lo = k + 1
            while lo < n:
                hi = min(n, lo + window)
                hits = np.flatnonzero(ok[lanes[lo:hi]])
                if len(hits):
                    return lo + int(hits[0])
                lo, window = hi, window * 4
            return None
        hi = max(k, 0)
        while hi > 0:
            lo = max(0, hi - window)
            hits = np.flatnonzero(ok[lanes[lo:hi]])
            if len(hits):
                return lo + int(hits[-1])
            hi, window = lo, window * 4
        return None

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

    def click(self, lane: int | None, start: float | None, end: float | None, family: int | None = None) -> bool:
        """A click on the diagram: select its lane; move to a switch in the clicked cell (on the time
        axis the clicked lane's own if it has one there; on a folded family's row, a member's, which
        is then selected)."""
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
            k = self.switch_in(int(start), int(end), lane, family)
        k = max(0, min(tl.n_switches - 1, k))
        if family is not None:
            ran = int(tl.switch_lanes()[k])
            if self.rows().row_of(ran) == self.rows().row_of(lane):
                self.selected = ran
        self.move(self.switch_cursor(k))
        return True

    def switch_in(self, t0: int, t1: int, lane: int | None, family: int | None = None) -> int:
        """A switch in [t0, t1): the lane's (a member's of `family`) if it has one there, else the first;
        else the last before."""
        tl = self.timeline
        assert tl is not None
        first = tl.switch_index_at(t0 - 1) + 1
        last = tl.switch_index_at(t1 - 1)
        if first <= last:
            if lane is not None:
                ran = tl.switch_lanes()[first:last + 1]
                if family is not None:
                    rows = self.rows()
                    hits = (rows.shown & (rows.codes == family))[ran].nonzero()[0]
                else:
                    hits = (ran == lane).nonzero()[0]
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
