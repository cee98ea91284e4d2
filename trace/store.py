"""The timeline store: numpy event columns, per-lane state tracks and a switch index (pure, no Textual)."""

from __future__ import annotations

import gc
import os
import re
from pathlib import Path
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import numpy as np

from .columns import KIND_NAMES, UNKNOWN_KIND, Columns, StringTable
from .events import (
    BLOCK, CLOSE, COOPERATIVE_KINDS, EVENT_KINDS, GIL_VIEW_MARKS, KIND_CODE, MARK, OPEN, READY, RUN, SAMPLE,
    SAMPLE_GIL_WAIT, SAMPLE_HOLDS, SAMPLE_KERNEL, SAMPLE_NO_GIL, SAMPLE_ON_CPU, WAIT,
    Event, Footer, Header, Lane,
)

# Lane states, as drawn. BLOCKING: a task, greenlet or generator in a call that blocks its whole
# OS thread (a `block` event): the lanes that take turns with it on that thread cannot run.
NONE, RUNNING, READY_S, WAITING, DONE, BLOCKING = range(6)
STATE_NAMES = ("not started", "running", "ready", "waiting", "done", "blocking the thread")
_STATE_OF_KIND = {OPEN: READY_S, RUN: RUNNING, WAIT: WAITING, READY: READY_S, CLOSE: DONE, BLOCK: BLOCKING}
_COUNTED = (RUNNING, READY_S, WAITING, BLOCKING)  # the states whose running totals a track keeps
_N_STATES = 6
_PACK = 21  # bits of each of reason, where and cause in one detail's sort key (when they fit)
_TRIM_BELOW = 1 << 20  # a column's bytes past which trim() leaves its untouched room alone
_LANES_NARROW = np.iinfo(np.uint16).max  # lane ids fit 2 bytes up to here, then the column widens


class _Column:
    """A growable numpy array: amortised O(1) appends, zero-copy views of what is filled."""

    __slots__ = ("a", "n")

    def __init__(self, dtype, capacity: int = 1024) -> None:
        self.a = np.empty(capacity, dtype=dtype)
        self.n = 0

    def extend(self, values) -> None:
        values = np.asarray(values, dtype=self.a.dtype)
        m = self.n + len(values)
        if m > len(self.a):
            grown = np.empty(max(m, len(self.a) + len(self.a) // 2), dtype=self.a.dtype)
            grown[: self.n] = self.a[: self.n]
            self.a = grown
        self.a[self.n : m] = values
        self.n = m

    def view(self) -> np.ndarray:
        return self.a[: self.n]

    def trim(self) -> None:
        # A little slack is cheaper than a copy of it all. A large array's room past what is filled
        # was never written (np.empty is mmap'd: untouched pages are not resident), so copying it
        # away gives nothing back and costs a second copy of the column at once (a 10M-event load's
        # end: +80 MB peak).
        if len(self.a) - self.n > self.n // 8 and self.a.nbytes < _TRIM_BELOW:
            self.a = self.a[: self.n].copy()

    def nbytes(self) -> int:
        """Bytes filled (the room past them is never written, see trim)."""
        return self.n * self.a.itemsize

    def reserve(self, capacity: int) -> None:
        if capacity > len(self.a):
            grown = np.empty(capacity, dtype=self.a.dtype)
            grown[: self.n] = self.a[: self.n]
            self.a = grown

    def widen(self, dtype) -> None:
        # Only what is filled is copied: the room reserved beyond it stays untouched (not resident).
        wider = np.empty(len(self.a), dtype=dtype)
        wider[: self.n] = self.a[: self.n]
        self.a = wider


class _Track:
    """One lane's state changes: the index of each changing event (kept), and, built on first
    query and extended as events arrive, their times, states and running totals (a view cache).

    A lane starved by another's block also has `extra` changes no event of its own made (see
    Timeline._starve): the cache then holds both, in time order, with `evc` the event each
    cached change belongs to (an extra's: the wait it interrupts). Without extras, `ev` is that.

    A thread lane of a trace with the GIL view's `sample` events has effective states: see
    _refine_sampled (`hook`, `sub`).
    """

    __slots__ = ("ev", "t", "state", "_prefix", "_prefix_n", "_rows", "extra", "evc", "_synced", "_extra_n",
                 "hook", "sub", "states")

    def __init__(self) -> None:
        self.ev = _Column(np.int32, 16)
        self.t = _Column(np.int64, 0)
        self.state = _Column(np.uint8, 0)
        self._prefix: np.ndarray | None = None
        self._prefix_n = 0
        self._rows = 0  # bit r: row r of the prefix has been written (see prefix)
        self.extra: list[tuple[int, int, int]] | None = None  # (t, state, event) drawn, not recorded
        self.evc: _Column | None = None
        self._synced = 0  # entries of `ev` in the cache
        self._extra_n = 0  # entries of `extra` in the cache
        # GIL view (traces with `sample` events only): per change, the hooks' state in force and the
        # sampled sub-state that refined it (SUB_*; 0: none, the hooks' state as it is).
        self.hook = _Column(np.uint8, 0)
        self.sub = _Column(np.uint8, 0)
        self.states = _KIND_TO_STATE  # event kind -> state; a greenlet's (_GREENLET_STATES) keeps `open` not started

    def sync(self, times: np.ndarray, kinds: np.ndarray, sampled=None) -> _Track:
        """Bring the cached times and states up to the events recorded so far.

        `sampled(events)`: the SUB_* code of each (sample) event, when the trace has any: the
        states are then the effective ones (_refine_sampled).
        """
        if self.extra is not None and self._extra_n != len(self.extra):
            return self._rebuild(times, kinds, sampled)
        if self._synced != self.ev.n:
            start = self.t.n
            tail = self.ev.a[self._synced:self.ev.n]
            tt = times[tail]
            if (start and tt.min() < self.t.a[start - 1]) or bool((tt[1:] < tt[:-1]).any()):
                # A change earlier than one before it on this lane (a probe's back-dated event, a
                # sampled fact drained late, a damaged or hand-made file): the lane's changes in
                # time order, file order among equal times, as the switch index keeps them.
                # Durations stay >= 0 and lookups by bisection stay true. Only the changes from
                # the earliest one out of place on are sorted again (all of them, with extras).
                if self.evc is not None:
                    return self._rebuild(times, kinds, sampled)
                start = int(np.searchsorted(self.t.a[:start], tt.min(), side="right"))
                ev = self.ev.view()[start:]
                ev[:] = ev[np.lexsort((ev, times[ev]))]
                self.t.n = self.state.n = start
                self._prefix_n = min(self._prefix_n, start)
                tail, tt = ev, times[ev]
            self.t.extend(tt)
            self.state.extend(self.states[kinds[tail]])
            if self.evc is not None:
                self.evc.extend(tail)
            if sampled is not None:
                _refine_sampled(self, start, kinds[tail], sampled(tail))
            self._synced = self.ev.n
        return self

    def _rebuild(self, times: np.ndarray, kinds: np.ndarray, sampled=None) -> _Track:
        """The whole cache again: the events in time order (file order among equal times), the extras merged in."""
        ev = self.ev.view()
        ev[:] = ev[np.lexsort((ev, times[ev]))]
        t, st, owner = times[ev], self.states[kinds[ev]], ev
        if self.extra:
            x = np.array(self.extra, dtype=np.int64).reshape(-1, 3)
            t = np.concatenate((t, x[:, 0]))
            st = np.concatenate((st, x[:, 1].astype(np.uint8)))
            owner = np.concatenate((owner, x[:, 2].astype(np.int32)))
            order = np.argsort(t, kind="stable")  # an event before an extra at the same time
            t, st, owner = t[order], st[order], owner[order]
            if self.evc is None:
                self.evc = _Column(np.int32, 0)
            self.evc.n = 0
            self.evc.extend(owner)
        self.t.n = self.state.n = self._prefix_n = self.hook.n = self.sub.n = 0
        self.t.extend(t)
        self.state.extend(st)
        if sampled is not None:
            _refine_sampled(self, 0, kinds[owner], sampled(owner))
        self._synced, self._extra_n = self.ev.n, len(self.extra or ())
        return self

    def events(self) -> np.ndarray:
        """The event each cached change belongs to."""
        return self.ev.view() if self.evc is None else self.evc.view()

    def prefix(self) -> np.ndarray:
        """prefix[r, i] = time spent running / ready / waiting / blocking (r = 0..3) before the i-th change."""
        n = self.t.n
        p, done = self._prefix, self._prefix_n
        if p is not None and done == n:
            return p[:, :n]
        if p is None or p.shape[1] < n:
            grown = np.zeros((len(_COUNTED), max(n, 2 * (0 if p is None else p.shape[1]), 16)), dtype=np.int64)
            if p is not None:
                for r in range(len(_COUNTED)):
                    if self._rows >> r & 1:
                        grown[r, :done] = p[r, :done]
            p = self._prefix = grown
        start = max(done, 1)
        t, st = self.t.a, self.state.a
        dur = t[start:n] - t[start - 1:n - 1]
        prev = st[start - 1:n - 1]
        for r, s in enumerate(_COUNTED):
            was = prev == s
            if not self._rows >> r & 1:
                if not was.any():
                    # Never in this state (most lanes never block): the row stays as np.zeros
                    # made it, its pages never written, so not resident (8 bytes a change).
                    continue
                self._rows |= 1 << r
            np.cumsum(np.where(was, dur, 0), out=p[r, start:n])
            p[r, start:n] += p[r, start - 1]
        self._prefix_n = n
        return p[:, :n]

    def cache_bytes(self) -> int:
        return (self.t.a.nbytes + self.state.a.nbytes + self.hook.a.nbytes + self.sub.a.nbytes
                + (0 if self._prefix is None else self._prefix.nbytes) + (0 if self.evc is None else self.evc.a.nbytes))


# -- GIL view: sampled facts refine the state of a thread lane the hooks show running -------------

# A sample event's sub-state, by the start of its reason (trace/events.py SAMPLE_*).
SUB_NONE, SUB_HOLDS, SUB_GIL_WAIT, SUB_NO_GIL, SUB_ON_CPU, SUB_KERNEL = range(6)
_SUB_OF_REASON = ((SAMPLE_HOLDS, SUB_HOLDS), (SAMPLE_GIL_WAIT, SUB_GIL_WAIT), (SAMPLE_NO_GIL, SUB_NO_GIL),
                  (SAMPLE_ON_CPU, SUB_ON_CPU), (SAMPLE_KERNEL, SUB_KERNEL))
# What the lane is while the hooks say running and the sampler says this.
_SUB_STATE = np.array([RUNNING, RUNNING, READY_S, RUNNING, RUNNING, WAITING], dtype=np.uint8)
_SUB_RUNS = np.array([False, True, False, True, True, False])  # the sampler saw it on a CPU


def sub_of_reason(reason: str | None) -> int:
    """The SUB_* code a sample event's reason stands for (SUB_NONE for one this reader does not know)."""
    if reason:
        for text, code in _SUB_OF_REASON:
            if reason.startswith(text):
                return code
    return SUB_NONE


def _refine_sampled(tr: _Track, start: int, kinds: np.ndarray, subs: np.ndarray) -> None:
    """Effective states for the changes from `start` on: hook events keep theirs; a sample event takes
    the state its sub-state means while the hooks' state in force is RUNNING, else that state
    (a thread in a recorded wait is waiting whatever the sampler saw). One pass of numpy, no loop."""
    n = tr.state.n
    seg = tr.state.a[start:n]
    is_s = kinds == SAMPLE
    prev = tr.hook.a[start - 1] if start > 0 and tr.hook.n >= start else NONE
    pos = np.where(is_s, -1, np.arange(n - start))
    np.maximum.accumulate(pos, out=pos)
    in_force = np.where(pos >= 0, seg[np.maximum(pos, 0)], prev).astype(np.uint8)
    refined = is_s & (in_force == RUNNING)
    subs = np.where(refined, subs, SUB_NONE).astype(np.uint8)
    tr.state.a[start:n] = np.where(is_s, np.where(refined, _SUB_STATE[subs], in_force), seg)
    tr.hook.n = tr.sub.n = min(start, tr.hook.n)
    tr.hook.extend(in_force)
    tr.sub.extend(subs)


@dataclass(frozen=True)
class Switch:
    """Switch k: who ran, and who stopped before it in the same scheduling domain."""

    index: int
    count: int
    event: int
    t: int
    lane: int
    reason: str | None
    where: str | None
    cause: int | None
    stopped: int | None
    stopped_kind: str | None
    stopped_reason: str | None
    stopped_where: str | None
    stopped_t: int | None


class TextBlob:
    """Texts (log lines, errors) as one UTF-8 blob and the end of each: a line costs its bytes and 8,
    not a str object and a table entry (~100 bytes more). Any str comes back as it went in (lone
    surrogates too: "surrogatepass"); decoded when it is read."""

    __slots__ = ("blob", "ends")

    def __init__(self) -> None:
        self.blob = bytearray()
        self.ends = _Column(np.int64, 64)

    def __len__(self) -> int:
        return self.ends.n

    def extend(self, texts: Iterable[str]) -> None:
        blob, ends = self.blob, []
        for text in texts:
            blob += text.encode("utf-8", "surrogatepass")
            ends.append(len(blob))
        self.ends.extend(np.array(ends, dtype=np.int64))

    def __getitem__(self, k: int) -> str:
        lo = int(self.ends.a[k - 1]) if k else 0
        return self.blob[lo:int(self.ends.a[k])].decode("utf-8", "surrogatepass")

    def nbytes(self) -> int:
        return len(self.blob) + self.ends.nbytes()


class LaneTable(Sequence):
    """The trace's lanes in columns (a gevent server's trace has a million: as Lane records they took
    ~135 bytes each, here ~30): kind code, parent, (pid, tid) place and the name's bytes in one blob.
    Reading one gives the Lane record back, equal to the one added. A lane whose fields do not fit
    the columns (a parent that names no lane before the table's bound, ...) is kept whole aside."""

    __slots__ = ("_kind", "_parent", "_place", "_name_end", "_names", "_kinds", "_kind_code",
                 "_places", "_place_code", "_odd")

    def __init__(self) -> None:
        self._kind = _Column(np.uint8, 64)
        self._parent = _Column(np.int32, 64)  # -1: None
        self._place = _Column(np.int32, 64)  # index into _places: (pid, tid)
        self._name_end = _Column(np.int64, 64)  # the end of each name's UTF-8 bytes in _names
        self._names = bytearray()
        self._kinds: list[str] = []
        self._kind_code: dict[str, int] = {}
        self._places: list[tuple[int | None, int | None]] = []
        self._place_code: dict[tuple[int | None, int | None], int] = {}
        self._odd: dict[int, Lane] = {}  # lanes kept whole (see the class docstring)

    def __len__(self) -> int:
        return self._kind.n

    def extend(self, lanes: Sequence[Lane]) -> None:
        """Add lanes (ids dense and in order, checked by the caller): a column append each, not one a lane."""
        kinds, parents, places, ends = [], [], [], []
        names, size = self._names, len(self._names)
        kind_code, place_code = self._kind_code, self._place_code
        i = self._kind.n
        for lane in lanes:
            kind = kind_code.get(lane.kind)
            if kind is None and len(self._kinds) < 255:
                kind = kind_code[lane.kind] = len(self._kinds)
                self._kinds.append(lane.kind)
            key = (lane.pid, lane.tid)
            place = place_code.get(key)
            if place is None:
                place = place_code[key] = len(self._places)
                self._places.append(key)
            parent = lane.parent
            if parent is None:
                parent = -1
            elif kind is None or not 0 <= parent < 1 << 31 or type(parent) is not int:
                self._odd[i] = lane
                kind, parent = 255, -1
            if kind is None or lane.id != i:
                self._odd[i] = lane
                kind = 255
            name = lane.name.encode("utf-8", "surrogatepass")
            names += name
            size += len(name)
            kinds.append(kind)
            parents.append(parent)
            places.append(place)
            ends.append(size)
            i += 1
        self._kind.extend(np.array(kinds, dtype=np.uint8))
        self._parent.extend(np.array(parents, dtype=np.int32))
        self._place.extend(np.array(places, dtype=np.int32))
        self._name_end.extend(np.array(ends, dtype=np.int64))

    def name(self, i: int) -> str:
        if i in self._odd:
            return self._odd[i].name
        lo = int(self._name_end.a[i - 1]) if i else 0
        return self._names[lo:int(self._name_end.a[i])].decode("utf-8", "surrogatepass")

    def _get(self, i: int) -> Lane:
        odd = self._odd.get(i)
        if odd is not None:
            return odd
        parent = int(self._parent.a[i])
        pid, tid = self._places[int(self._place.a[i])]
        return Lane(i, self._kinds[int(self._kind.a[i])], self.name(i), None if parent < 0 else parent, pid, tid)

    def __getitem__(self, i):  # type: ignore[override]
        if isinstance(i, slice):
            return [self._get(j) for j in range(*i.indices(len(self)))]
        i = int(i)
        if i < 0:
            i += len(self)
        if not 0 <= i < len(self):
            raise IndexError(f"lane {i} out of range")
        return self._get(i)

    def __iter__(self):
        return (self._get(i) for i in range(len(self)))

    def __eq__(self, other: object) -> bool:
        if isinstance(other, (LaneTable, list, tuple)):
            return len(self) == len(other) and all(a == b for a, b in zip(self, other))
        return NotImplemented

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        return f"LaneTable({len(self)} lanes)"

    def kind_codes(self) -> tuple[np.ndarray, list[str]]:
        """Each lane's kind as a code, and the kinds by code (a lane kept aside: its own code)."""
        codes = self._kind.view().copy()
        kinds = list(self._kinds)
        for i, lane in self._odd.items():
            if lane.kind not in kinds:
                kinds.append(lane.kind)
            codes = codes.astype(np.int32) if len(kinds) > 255 else codes
            codes[i] = kinds.index(lane.kind)
        return codes, kinds

    def same_place(self, lane: int) -> np.ndarray:
        """Per lane: whether it has `lane`'s pid and tid."""
        me = self._get(lane)
        out = self._place.view() == self._place_code[(me.pid, me.tid)]
        for i, odd in self._odd.items():
            out[i] = (odd.pid, odd.tid) == (me.pid, me.tid)
        return out

    def same_pid(self, lane: int) -> np.ndarray:
        """Per lane: whether it has `lane`'s pid."""
        pid = self._get(lane).pid
        ok = np.array([p == pid for p, _t in self._places], dtype=bool)
        out = ok[self._place.view()]
        for i, odd in self._odd.items():
            out[i] = odd.pid == pid
        return out

    def parents(self) -> list[int | None]:
        """Each lane's parent as recorded (None for none)."""
        out: list[int | None] = [None if p < 0 else p for p in self._parent.view().tolist()]
        for i, odd in self._odd.items():
            out[i] = odd.parent
        return out

    def name_lengths(self) -> np.ndarray:
        """Each name's length in characters (len(name), without reading a name: its UTF-8 bytes less the
        continuation bytes)."""
        ends = self._name_end.view()
        blob = np.frombuffer(self._names, dtype=np.uint8)
        starts = np.concatenate(([0], ends[:-1])) if len(ends) else ends
        lead = np.concatenate(([0], np.cumsum((blob & 0xC0) != 0x80)))
        out = lead[ends] - lead[starts]
        for i, odd in self._odd.items():
            out[i] = len(odd.name)
        return out

    def nbytes(self) -> int:
        return (self._kind.nbytes() + self._parent.nbytes() + self._place.nbytes() + self._name_end.nbytes()
                + len(self._names))


class Timeline:
    """Everything known about one trace; grows while a run streams in."""

    def __init__(self, header: Header | None = None) -> None:
        self.header = header or Header()
        self.footer: Footer | None = None
        self.truncated = False
        self.dropped = 0
        self.undeclared = 0  # events naming a lane no lane line declared (before them): ignored, counted
        self.lanes = LaneTable()
        # Lane tracks are made when a lane is first asked about (a trace may have a million lanes,
        # a screen shows fifty): from the change index below, then kept up to date as events come.
        self._tracks: dict[int, _Track] = {}
        self._tracked = _Column(np.bool_)  # per lane: has a track in _tracks
        # The change index: the events that change a lane's state up to event _index_upto, grouped
        # by lane (lane l's are _index_ev[_index_start[l]:_index_start[l + 1]]), rebuilt when
        # enough have come since.
        self._index_ev = np.zeros(0, dtype=np.int32)
        self._index_start = np.zeros(1, dtype=np.int64)
        self._index_upto = 0
        # Per event: time (8 bytes), lane (2, widening to 4 past 65535 lanes), kind (1) and one
        # interned (reason, where, cause) detail (4); per state change its index in its lane's
        # track (4); per switch its index (4). About 20 bytes an event in all. Texts (log lines,
        # errors) are kept aside with the index of their event, their bytes in one blob (_texts);
        # lanes in columns (LaneTable).
        self._t = _Column(np.int64)
        self._lane = _Column(np.uint16)
        self._kind = _Column(np.uint8)
        self._detail = _Column(np.int32)
        self._switches = _Column(np.int32)
        self._text_at = _Column(np.int32, 64)
        self._text_id = _Column(np.int32, 64)  # the text's entry in _texts
        self.strings = StringTable()  # every string of the trace; the details index it
        # Texts by entry, each distinct one once (_text_of: a string id's entry, -1 none yet). A load
        # takes them out of the string table as it goes (pack_texts): a string id whose entry in the
        # table is None then reads from here (_str).
        self._texts = TextBlob()
        self._text_of = np.zeros(0, dtype=np.int32)
        self._packed = 0  # string ids below this were looked at by pack_texts
        self._details: list[tuple[int, int, int]] = []  # detail -> (reason, where, cause or -1)
        self._detail_ids: dict[tuple[int, int, int], int] = {}
        self._sources: dict[int, tuple[StringTable, np.ndarray]] = {}  # another table's ids -> ours
        self.t_end = 0
        self._view_cache: dict[str, tuple[int, object]] = {}
        # Blocks (`block` events) whose end has not arrived yet; those that ended: (lane, event, start, end).
        self._blocks_open: list[int] = []
        self._block_spans: list[tuple[int, int, int, int]] = []
        self._sampled = None  # GIL view: Timeline._sample_subs once the trace has sample events
        self._sub_of_detail = np.zeros(0, dtype=np.uint8)

    # -- ingest -------------------------------------------------------------------

    def add(self, lanes: Iterable[Lane], events: Columns | Sequence[Event],
            named_from: Sequence[int] | None = None) -> None:
        """New lanes (dense ids, in order), then events: a run's or a file's Columns, or Event records.

        `named_from[i]`: the index of the first of `events` that may name the i-th new lane (a file
        declares a lane on the line before its first event: a loader gives a whole batch of lines
        at once, lanes and events, and says where each lane came); by default, all of them.
        """
        first_new = len(self.lanes)
        lanes = list(lanes)
        for k, lane in enumerate(lanes):
            if lane.id != first_new + k:
                raise ValueError(f"lane ids must be dense and in order: got {lane.id}, expected {first_new + k}")
        if lanes:
            self.lanes.extend(lanes)
        if len(self.lanes) > self._tracked.n:
            self._tracked.extend(np.zeros(len(self.lanes) - self._tracked.n, dtype=np.bool_))
        cols = events if isinstance(events, Columns) else Columns.from_events(list(events), self.strings)
        if not len(cols):
            return
        n_lanes = len(self.lanes)
        if n_lanes > _LANES_NARROW and self._lane.a.dtype == np.uint16:
            self._lane.widen(np.int32)
        # Readers ignore kinds they do not know; lanes must be declared before their events.
        lane_a, kind_a = cols.lane, cols.kind
        declared = (lane_a >= 0) & (lane_a < n_lanes)
        if named_from is not None and len(named_from) and int(lane_a.max(initial=-1)) >= first_new:
            since = np.zeros(n_lanes, dtype=np.int64)
            since[first_new:first_new + len(named_from)] = named_from
            declared &= np.arange(len(lane_a)) >= since[np.clip(lane_a, 0, n_lanes - 1)]
        keep = (kind_a != UNKNOWN_KIND) & declared
        if not keep.all():
            self.undeclared += len(declared) - int(np.count_nonzero(declared))
            if not keep.any():
                return
            cols = cols.take(keep)
            lane_a, kind_a = cols.lane, cols.kind
        t = cols.t
        cause = cols.cause
        if len(cause) and (int(cause.max()) >= n_lanes or int(cause.min()) < -1):
            cause = np.where((cause >= 0) & (cause < n_lanes), cause, -1)  # naming no lane: dropped, event kept
        ds = self._intern_details(self._own(cols, cols.reason), self._own(cols, cols.where), cause)
        base = self._t.n
        self._t.extend(t)
        self._lane.extend(lane_a)
        self._kind.extend(kind_a)
        self._detail.extend(ds)
        texts = np.flatnonzero(cols.text)
        if len(texts):
            self._text_at.extend(texts + base)
            self._text_id.extend(self._text_entries(self._own(cols, cols.text[texts])))
        self.t_end = max(self.t_end, int(t.max()))
        idx = np.arange(base, base + len(t), dtype=np.int32)
        is_run = kind_a == RUN
        runs = idx[is_run]
        if len(runs):
            last = self._t.a[self._switches.a[self._switches.n - 1]] if self._switches.n else None
            self._switches.extend(runs)
            ordered = t[is_run]
            if (last is not None and ordered[0] < last) or (np.diff(ordered) < 0).any():
                # Something reported late (a probe, another process's frame): keep switches in time order.
                sw = self._switches.view()
                sw[:] = sw[np.lexsort((sw, self._t.a[sw]))]
        self._note_samples(kind_a)
        if self._tracks:
            # Only the lanes with a track (those asked about) are kept up to date here; the
            # others are found through the change index when first asked about.
            changes = _CHANGES[kind_a] & self._tracked.a[lane_a]
            if changes.any():
                cl, ci = lane_a[changes], idx[changes]
                order = _stable_order(cl)
                cl, ci = cl[order], ci[order]
                bounds = np.flatnonzero(np.diff(cl)) + 1
                starts = np.concatenate(([0], bounds))
                for lo, hi in zip(starts.tolist(), np.append(bounds, len(cl)).tolist()):
                    self._tracks[int(cl[lo])].ev.extend(ci[lo:hi])
        blocks = kind_a == BLOCK
        if self._blocks_open or blocks.any():
            self._blocks_open.extend(idx[blocks].tolist())
            self._end_blocks()

    def _text_entries(self, sids: np.ndarray) -> np.ndarray:
        """The _texts entries of these string ids, each new distinct text added once."""
        n = len(self.strings)
        if len(self._text_of) < n:
            grown = np.full(max(n, len(self._text_of) * 3 // 2), -1, dtype=np.int32)
            grown[:len(self._text_of)] = self._text_of
            self._text_of = grown
        fresh = np.unique(sids[self._text_of[sids] < 0])
        if len(fresh):
            self._text_of[fresh] = np.arange(len(self._texts), len(self._texts) + len(fresh), dtype=np.int32)
            table = self.strings.strings
            self._texts.extend(table[i] for i in fresh.tolist())
        return self._text_of[sids]

    def pack_texts(self) -> None:
        """Take the texts out of the string table: a str object and a dict entry each, for lines that
        are mostly printed once. Their ids stay valid (read through _str). Only for a table nothing
        else holds ids of: a load's (a run's Merger maps its own table's ids into ours)."""
        table, ids = self.strings.strings, self.strings._ids
        n = min(len(table), len(self._text_of))
        fresh = np.flatnonzero(self._text_of[self._packed:n] >= 0) + self._packed
        for i in fresh.tolist():
            text = table[i]
            if text is not None and ids.get(text) == i:
                del ids[text]
            table[i] = None
        self._packed = n

    def _str(self, i: int) -> str | None:
        """String i of the table, a packed text too."""
        s = self.strings.strings[i]
        if s is None and 0 < i < len(self._text_of) and self._text_of[i] >= 0:
            return self._texts[int(self._text_of[i])]
        return s

    def reserve(self, n_events: int) -> None:
        """Make room for n_events in all: a load that knows about how many are coming grows each
        column once, instead of doubling (a copy each time, and up to twice the room at the end)."""
        for col in (self._t, self._lane, self._kind, self._detail):
            col.reserve(n_events)

    def _own(self, cols: Columns, ids: np.ndarray) -> np.ndarray:
        """String ids of `cols`' table as ids of ours (the same ids when the table is ours)."""
        table = cols.strings
        if table is self.strings:
            return ids
        known = self._sources.get(id(table))
        mapping = known[1] if known is not None else np.zeros(1, dtype=np.int32)
        if len(mapping) < len(table):
            fresh = self.strings.intern_many(table.strings[len(mapping):])
            mapping = np.concatenate([mapping, fresh])
            self._sources[id(table)] = (table, mapping)  # the table is kept: its id() stays its own
        return mapping[ids]

    def _intern_details(self, reason: np.ndarray, where: np.ndarray, cause: np.ndarray) -> np.ndarray:
        """The detail id of each event's (reason, where, cause), new ones numbered as they come.

        numpy finds the distinct triples of the batch (a sort of one packed key, or of two when
        the ids are too large to pack); only those few go through the dictionary.
        """
        c1 = cause.astype(np.int64) + 1
        limit = 1 << _PACK
        if int(reason.max()) < limit and int(where.max()) < limit and int(c1.max()) < limit:
            key = reason.astype(np.int64) | (where.astype(np.int64) << _PACK) | (c1 << 2 * _PACK)
            uniq, inverse = np.unique(key, return_inverse=True)
            mask = limit - 1
            triples = zip((uniq & mask).tolist(), ((uniq >> _PACK) & mask).tolist(),
                          ((uniq >> 2 * _PACK) - 1).tolist())
        else:
            pairs, first = np.unique((reason.astype(np.int64) << 32) | where, return_inverse=True)
            uniq, inverse = np.unique((first.astype(np.int64) << 32) | c1, return_inverse=True)
            pair = pairs[uniq >> 32]
            triples = zip((pair >> 32).tolist(), (pair & 0xFFFFFFFF).tolist(), ((uniq & 0xFFFFFFFF) - 1).tolist())
        ids, details = self._detail_ids, self._details
        out = np.empty(len(uniq), dtype=np.int32)
        for j, triple in enumerate(triples):
            d = ids.get(triple)
            if d is None:
                d = ids[triple] = len(details)
                details.append(triple)
            out[j] = d
        return out[inverse.reshape(-1)]

    def finish(self, footer: Footer | None, truncated: bool = False) -> None:
        """The run is over: keep the footer and give back growth slack."""
        self.footer = footer
        self.truncated = truncated
        if footer is not None:
            self.dropped = footer.dropped
        for col in (self._t, self._lane, self._kind, self._detail, self._switches, self._text_at, self._text_id):
            col.trim()
        for tr in self._tracks.values():
            tr.ev.trim()
        self._end_blocks(at_end=True)

    # -- facts ----------------------------------------------------------------------

    @property
    def n_events(self) -> int:
        return self._t.n

    @property
    def n_switches(self) -> int:
        return self._switches.n

    @property
    def complete(self) -> bool:
        return self.footer is not None and self.footer.complete and not self.truncated

    def event(self, i: int) -> Event:
        reason, where, cause = self._details[int(self._detail.a[i])]
        s = self._str
        return Event(i, int(self._t.a[i]), int(self._lane.a[i]), KIND_NAMES[self._kind.a[i]],
                     s(reason), s(where), None if cause < 0 else cause, self.event_text(i))

    def events_of_kind(self, *kinds: str) -> np.ndarray:
        """Indices of every event of the given kinds, in order."""
        codes = [KIND_CODE[k] for k in kinds]
        return np.flatnonzero(np.isin(self._kind.view(), codes))

    def count_of_kind(self, kind: str) -> int:
        """How many events have this kind (a chunk at a time: no whole-trace temporaries)."""
        code, k, n = KIND_CODE[kind], self._kind.a, self._t.n
        return sum(int(np.count_nonzero(k[lo:min(n, lo + _CHUNK_EVENTS)] == code)) for lo in range(0, n, _CHUNK_EVENTS))

    def events_with_reason(self, query: str, kinds: tuple[str, ...] = ("run", "wait", "block"),
                           limit: int = 200) -> np.ndarray:
        """Indices of the first `limit` events of these kinds whose reason holds `query` (any case):
        the strings are matched once each, the events by their interned detail (no object an event)."""
        q = query.lower()
        hit = {i for i in {r for r, _w, _c in self._details} if (text := self._str(i)) and q in text.lower()}
        if not hit:
            return np.zeros(0, dtype=np.int64)
        wanted = np.zeros(len(self._details), dtype=bool)  # lookup tables: a gather an event, not a sort
        wanted[[d for d, (reason, _w, _c) in enumerate(self._details) if reason in hit]] = True
        kind_ok = np.zeros(256, dtype=bool)
        kind_ok[[KIND_CODE[k] for k in kinds]] = True
        mask = wanted[self._detail.view()] & kind_ok[self._kind.view()]
        return np.flatnonzero(mask)[:limit]

    def logs(self) -> list[Event]:
        return [self.event(int(i)) for i in self.events_of_kind("log", "error")]

    def memory_bytes(self) -> int:
        """Bytes of the event columns, lanes, texts and indexes (what the store keeps; the room reserved
        past what is filled is never written, so not resident, and not counted)."""
        cols = (self._t, self._lane, self._kind, self._detail, self._switches, self._text_at, self._text_id)
        return (sum(c.nbytes() for c in cols) + self._index_ev.nbytes + self._index_start.nbytes + self.lanes.nbytes()
                + self._texts.nbytes() + self._text_of.nbytes
                + sum(tr.ev.a.nbytes for tr in self._tracks.values()))

    def cache_bytes(self) -> int:
        """Bytes of the per-lane view caches built by the queries so far (times, states, totals)."""
        return sum(tr.cache_bytes() for tr in self._tracks.values())

    def _track(self, lane: int) -> _Track:
        tr = self._tracks.get(lane)
        if tr is None:
            tr = self._new_track(lane)
        return tr.sync(self._t.a, self._kind.a, self._sampled)

    def _new_track(self, lane: int) -> _Track:
        """Lane `lane`'s track, made from the change index and the events since it was built."""
        n = self._t.n
        if n - self._index_upto > max(1 << 16, self._index_upto // 4):
            self._build_index()
        upto = self._index_upto
        parts = []
        if lane + 1 < len(self._index_start):
            parts.append(self._index_ev[self._index_start[lane]:self._index_start[lane + 1]])
        if upto < n:
            since = (self._lane.a[upto:n] == lane) & _CHANGES[self._kind.a[upto:n]]
            parts.append(np.flatnonzero(since).astype(np.int32) + upto)
        tr = _Track()
        if lane < len(self.lanes) and self.lanes[lane].kind == "greenlet":
            tr.states = _GREENLET_STATES
        for part in parts:
            tr.ev.extend(part)
        self._tracks[lane] = tr
        self._tracked.a[lane] = True
        return tr

    def _build_index(self) -> None:
        """The change index, by a counting sort a chunk of events at a time: what it allocates
        beyond its result is a chunk's worth (a whole-trace argsort took ~7x the index at 10M events)."""
        n, n_lanes = self._t.n, len(self.lanes)
        kinds, lanes = self._kind.a, self._lane.a
        counts = np.zeros(n_lanes, dtype=np.int64)
        for lo in range(0, n, _CHUNK_EVENTS):
            hi = min(n, lo + _CHUNK_EVENTS)
            counts += np.bincount(lanes[lo:hi][_CHANGES[kinds[lo:hi]]], minlength=n_lanes)
        start = np.zeros(n_lanes + 1, dtype=np.int64)
        np.cumsum(counts, out=start[1:])
        del counts
        out = np.empty(int(start[-1]), dtype=np.int32)
        cursor = start[:-1].copy()
        for lo in range(0, n, _CHUNK_EVENTS):
            hi = min(n, lo + _CHUNK_EVENTS)
            at = np.flatnonzero(_CHANGES[kinds[lo:hi]])
            if not len(at):
                continue
            ln = lanes[lo:hi][at]
            order = _stable_order(ln)
            ln, at = ln[order], at[order]
            del order
            # Each change's place: its lane's cursor plus its rank among the chunk's changes of that lane.
            head = np.searchsorted(ln, ln, side="left")
            out[cursor[ln] + (np.arange(len(ln)) - head)] = at + lo
            cursor += np.bincount(ln, minlength=n_lanes)
        self._index_ev, self._index_start = out, start
        self._index_upto = n
        del cursor
        _give_back()

    # -- GIL view ------------------------------------------------------------------------

    def _sample_subs(self, events: np.ndarray) -> np.ndarray:
        """The SUB_* code of each of `events` (their reason's; meaningful for sample events)."""
        table = self._sub_of_detail
        if len(table) < len(self._details):
            fresh = [sub_of_reason(self._str(r)) for r, _, _ in self._details[len(table):]]
            table = self._sub_of_detail = np.concatenate([table, np.array(fresh, dtype=np.uint8)])
        return table[self._detail.a[events]]

    def _note_samples(self, kind_a: np.ndarray) -> None:
        """The first sample events of the trace: from now on every track computes effective states."""
        if self._sampled is None and bool((kind_a == SAMPLE).any()):
            self._sampled = self._sample_subs
            for tr in self._tracks.values():  # states cached before were the hooks' alone
                tr.t.n = tr.state.n = tr.hook.n = tr.sub.n = tr._prefix_n = tr._synced = 0
                if tr.evc is not None:
                    tr.evc.n = 0
                if tr.extra:
                    tr._extra_n = -1  # rebuilt with its extras at the next sync

    @property
    def has_samples(self) -> bool:
        """Whether the trace carries the GIL view's sampled facts."""
        return self._sampled is not None

    def gil_view(self) -> str | None:
        """The trace's one line on what the GIL view saw (`GIL view: on ...`, `free-threaded: ...`), or None."""
        def build():
            for i in self.events_of_kind("mark").tolist():
                reason = self.event(i).reason or ""
                if reason.startswith(GIL_VIEW_MARKS):
                    return reason
            return None
        return self._cached("gil_view", self._t.n, build)

    def gil_totals(self, lane: int) -> dict[str, float] | None:
        """Seconds `lane` held the GIL, waited for it, and was blocked in the kernel (sampled), or None
        for a lane the sampler never saw. Running without the GIL (C code) is running, not holding it."""
        tr = self._track(lane)
        if not tr.sub.n or not tr.sub.view().any():
            return None
        t, st, sub = tr.t.view(), tr.state.view(), tr.sub.view()
        dur = np.diff(np.append(t, max(self.t_end, int(t[-1]))))
        running = int(dur[st == RUNNING].sum())
        no_gil = int(dur[(st == RUNNING) & ((sub == SUB_NO_GIL) | (sub == SUB_ON_CPU))].sum())
        return {"gil_s": (running - no_gil) / 1e9, "no_gil_s": no_gil / 1e9,
                "gil_wait_s": int(dur[sub == SUB_GIL_WAIT].sum()) / 1e9,
                "kernel_s": int(dur[sub == SUB_KERNEL].sum()) / 1e9}

    def _changed_at(self, tr: _Track, i: int) -> int:
        """The change at or before i that put the lane in its state: sampled facts that refined nothing
        (a recorded wait seen in the kernel) are passed over, so the recorded wait names the state."""
        kinds, ev, sub = self._kind.a, tr.events(), tr.sub.a
        while i > 0 and kinds[ev[i]] == SAMPLE and (sub[i] == SUB_NONE if tr.sub.n > i else True):
            i -= 1
        return i

    def _running_mask(self, tr: _Track) -> np.ndarray:
        """Per change of a track: running, as max_running counts it. A lane the sampler saw runs when
        the sampler saw it on a CPU (holding the GIL, or in C code without it): the hooks' `run` before
        the sampler's next look is not counted, so a ~1 ms lag cannot make two GIL holders at once."""
        st = tr.state.view()
        if self._sampled is None or not tr.sub.n or not tr.sub.view().any():
            return st == RUNNING
        return (st == RUNNING) & _SUB_RUNS[tr.sub.view()]

    # -- lane states ------------------------------------------------------------------

    def state_at(self, lane: int, t: int) -> tuple[int, int | None]:
        """(state, index of the event that put it there) of `lane` at time t."""
        tr = self._track(lane)
        i = int(np.searchsorted(tr.t.view(), t, side="right")) - 1
        if i < 0:
            return NONE, None
        if self._sampled is not None:
            i = self._changed_at(tr, i)
        return int(tr.state.a[i]), int(tr.events()[i])

    def lane_states(self, lanes: Sequence[int], t0: int, t1: int, width: int,
                    t_now: int | None = None) -> np.ndarray:
        """The dominant state of each lane in each of `width` equal cells of [t0, t1)."""
        out = np.zeros((len(lanes), max(width, 0)), dtype=np.uint8)
        if width <= 0 or t1 <= t0:
            return out
        edges = np.linspace(t0, t1, width + 1).astype(np.int64)
        end = self.t_end if t_now is None else t_now
        for row, lane in enumerate(lanes):
            tr = self._track(lane)
            if tr.t.n == 0:
                continue
            t, st = tr.t.view(), tr.state.view()
            pre = tr.prefix()
            e = np.minimum(edges, max(end, int(t[-1])))
            i = np.searchsorted(t, e, side="right") - 1
            valid = i >= 0
            ic = np.clip(i, 0, None)
            cur = st[ic]
            since = np.where(valid, e - t[ic], 0)
            cum = np.zeros((_N_STATES, len(e)), dtype=np.int64)
            for r, s in enumerate(_COUNTED):
                cum[s] = np.where(valid, pre[r, ic] + np.where(cur == s, since, 0), 0)
            # A track holds ready, running, waiting, blocking and done, after a greenlet's `not started`
            # (open, then its first run): done is the rest of its time from its first other state.
            started = _started(t, st)
            cum[DONE] = np.where(valid, np.clip(e - started, 0, None), 0) - cum[list(_COUNTED)].sum(axis=0)
            cum[NONE] = np.clip(np.minimum(e, started) - t0, 0, None)  # before the lane existed or started
            spent = np.diff(cum, axis=1)
            dominant = spent.argmax(axis=0).astype(np.uint8)
            # A cell where no time passes (past the end) shows the state it would be in.
            empty = spent.sum(axis=0) == 0
            dominant[empty] = np.where(valid[1:], cur[1:], NONE)[empty]
            # Past the end: a finished lane stays done; any other is unknown yet (live runs).
            dominant[edges[:-1] >= end] = DONE if st[-1] == DONE else NONE
            out[row] = dominant
        return out

    def lane_intervals(self, lane: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """(start, end, state, event index) of each stretch `lane` spent in one state.

        The last stretch of a lane that never closed ends at the trace's end;
        a lane's `done` stretch and zero-length stretches are left out.
        """
        tr = self._track(lane)
        t, st, ev = tr.t.view(), tr.state.view(), tr.events()
        if not len(t):
            empty = np.empty(0, dtype=np.int64)
            return empty, empty, empty.astype(np.uint8), empty.astype(np.int32)
        end = np.append(t[1:], max(self.t_end, int(t[-1])))
        keep = (st != DONE) & (end > t)
        if self._sampled is not None and len(t) > 1:
            # A sampled fact that leaves the state as it was (a recorded wait seen in the kernel) is no new stretch.
            same = np.concatenate(([False], (st[1:] == st[:-1]) & (self._kind.a[ev[1:]] == SAMPLE)))
            keep &= ~same
            end = end.copy()
            # each kept stretch ends where the next kept one starts
            kept = np.flatnonzero(keep | (st == DONE))
            nxt = np.append(t[kept[1:]], end[-1]) if len(kept) else end[:0]
            end[kept] = nxt
        return t[keep], end[keep], st[keep], ev[keep]

    # -- switches -----------------------------------------------------------------------

    def switch_index_at(self, t: int) -> int:
        """The last switch at or before t (-1 if none)."""
        return int(np.searchsorted(self.switch_times(), t, side="right")) - 1

    def switch_times(self) -> np.ndarray:
        """The time of each switch, in switch order (gathered once per switch count: a step asks it twice)."""
        return self._cached("switch_times", self._switches.n, lambda: self._t.a[self._switches.view()])

    def switches_clustered(self, share: float = 0.02) -> bool:
        """Whether the middle 80% of the switches happen within `share` of the trace's duration:
        on a time axis they would all fall in a column or two (a ping-pong after a slow start-up)."""
        ts = self.switch_times()
        if len(ts) < 8:
            return False
        lo, hi = np.percentile(ts, [10, 90])
        return bool(hi - lo < share * max(self.t_end - self.t_first, 1))

    def _domain_mask(self, lane: int) -> np.ndarray:
        coop = self.lanes[lane].kind in COOPERATIVE_KINDS
        return self.lanes.same_place(lane) if coop else self.lanes.same_pid(lane)

    def switch(self, k: int) -> Switch:
        sw = self._switches.view()
        if not 0 <= k < len(sw):
            raise IndexError(f"switch {k} out of range (0..{len(sw) - 1})")
        p = int(sw[k])
        ran = self.event(p)
        stopped = self._stopped_before(p, ran.lane)
        return Switch(
            index=k, count=len(sw), event=p, t=ran.t, lane=ran.lane, reason=ran.reason,
            where=ran.where, cause=ran.cause,
            stopped=None if stopped is None else stopped.lane,
            stopped_kind=None if stopped is None else stopped.kind,
            stopped_reason=None if stopped is None else stopped.reason,
            stopped_where=None if stopped is None else stopped.where,
            stopped_t=None if stopped is None else stopped.t,
        )

    def _stopped_before(self, p: int, lane: int) -> Event | None:
        """The event that gave `lane` its turn at position p: the last stop in its scheduling domain
        before p in time order (the order events arrived in is not the order they happened in: a
        thread's buffer, a peer process, a probe's back-dated event).

        Threads of a process run side by side, so for them only a wait or an
        exit counts. Cooperative lanes (tasks, greenlets, generators) share one
        thread: there the thread's own `run` just before (the event loop waking
        up and dispatching) is a hand-over too.
        """
        coop = self.lanes[lane].kind in COOPERATIVE_KINDS
        i = self.last_turn_before(p, self._domain_mask(lane), lane if coop else None)
        return None if i is None else self.event(i)

    def last_turn_before(self, p: int, mask: np.ndarray, runs_of_others: int | None = None) -> int | None:
        """The last event before event p in time order (equal times: file order) that is a stop (wait,
        close, block) of a lane in `mask`, or, when `runs_of_others` is a lane, a `run` of another lane
        in `mask`; None if there is none. Scans back from p a window at a time, doubling."""
        ordered = self._time_rank()
        kinds, lanes = self._kind.a, self._lane.a
        window, hi = 4096, self.event_rank(p)
        while hi > 0:
            lo = max(0, hi - window)
            idx = np.arange(lo, hi) if ordered is None else ordered[0][lo:hi]
            k_win, l_win = kinds[idx], lanes[idx]
            stop = (k_win == WAIT) | (k_win == CLOSE) | (k_win == BLOCK)
            if runs_of_others is not None:
                stop |= (k_win == RUN) & (l_win != runs_of_others)
            hits = np.flatnonzero(stop & mask[l_win])
            if len(hits):
                return int(idx[hits[-1]])
            hi, window = lo, window * 2
        return None

    def kind_mask(self, kinds: Iterable[str]) -> np.ndarray:
        """Per lane: whether its kind is one of `kinds` (made once per lane count: a step asks per key press)."""
        kinds = frozenset(kinds)

        def build():
            codes, names = self.lanes.kind_codes()
            return np.isin(codes, [i for i, k in enumerate(names) if k in kinds])
        return self._cached("kind_mask:" + ",".join(sorted(kinds)), len(self.lanes), build)

    def state_after(self, lane: int, p: int) -> tuple[int, int | None]:
        """(state, the event that put it there) of `lane` just after event p, in time order (equal
        times: file order): what a step at event p may say about the lane."""
        tr = self._track(lane)
        t = self._t.a[p]
        tt, ev = tr.t.a, tr.events()
        i = int(tt[:tr.t.n].searchsorted(t, side="right")) - 1
        while i >= 0 and tt[i] == t and ev[i] > p:  # equal times: those after p in file order come later
            i -= 1
        if i < 0:
            return NONE, None
        if self._sampled is not None:
            i = self._changed_at(tr, i)
        return int(tr.state.a[i]), int(ev[i])

    def change_before(self, lane: int, p: int) -> int | None:
        """The event of `lane`'s last state change before event p in time order (None: none)."""
        tr = self._track(lane)
        t = self._t.a[p]
        tt, ev = tr.t.a, tr.events()
        i = int(tt[:tr.t.n].searchsorted(t, side="right")) - 1
        while i >= 0 and tt[i] == t and ev[i] >= p:
            i -= 1
        return None if i < 0 else int(ev[i])

    def last_change(self, lane: int) -> int | None:
        """The event of `lane`'s last state change in time order (None: it has none)."""
        tr = self._track(lane)
        return int(tr.events()[-1]) if tr.t.n else None

    # -- views: what the app asks per key press or per frame (nothing decodes lists) -----

    def _cached(self, name: str, version: int, build):
        """`build()` once per `version` (the event count): views stay cheap while a run streams in."""
        hit = self._view_cache.get(name)
        if hit is None or hit[0] != version:
            hit = self._view_cache[name] = (version, build())
        return hit[1]

    @property
    def t_first(self) -> int:
        """Time of the earliest event (0 when there is none)."""
        if not self._t.n:
            return 0
        return self._cached("t_first", self._t.n, lambda: int(self._t.view().min()))

    def event_time(self, i: int) -> int:
        return int(self._t.a[i])

    def event_lane(self, i: int) -> int:
        return int(self._lane.a[i])

    def event_where(self, i: int) -> str | None:
        """Event i's `where`, without decoding the rest of it (the source pane asks per lane per step)."""
        where = self._details[int(self._detail.a[i])][1]
        return self._str(where) if where else None

    def event_kind(self, i: int) -> str:
        return EVENT_KINDS[self._kind.a[i]]

    def is_switch(self, i: int) -> bool:
        return self._kind.a[i] == RUN

    def switch_event(self, k: int) -> int:
        """Index of switch k's `run` event."""
        return int(self._switches.a[k])

    def switch_lanes(self) -> np.ndarray:
        """The lane that ran at each switch, in switch order."""
        return self._cached("switch_lanes", self._switches.n, lambda: self._lane.a[self._switches.view()])

    def switch_position(self, i: int) -> int:
        """How many switches come at or before event i, in time order (equal times: event order)."""
        sw = self._switches.view()
        times = self.switch_times()
        t = self._t.a[i]
        lo = int(np.searchsorted(times, t, side="left"))
        hi = int(np.searchsorted(times, t, side="right"))
        return lo + int(np.searchsorted(sw[lo:hi], i, side="right"))

    def lane_switch(self, lane: int, k: int, step: int) -> int | None:
        """The next (step > 0) or previous (step < 0) switch of `lane` after / before switch k."""
        lanes = self.switch_lanes()
        if step > 0:
            hits = np.flatnonzero(lanes[k + 1:] == lane)
            return k + 1 + int(hits[0]) if len(hits) else None
        hits = np.flatnonzero(lanes[:max(k, 0)] == lane)
        return int(hits[-1]) if len(hits) else None

    def _time_rank(self) -> tuple[np.ndarray, np.ndarray] | None:
        """(order, rank) of the events by time when they arrived out of order; None when they did not."""
        def build():
            t = self._t.view()
            if len(t) < 2 or self._in_time_order():
                return None
            order = np.argsort(t, kind="stable").astype(np.int64)
            rank = np.empty_like(order)
            rank[order] = np.arange(len(order))
            return order, rank
        return self._cached("time_rank", self._t.n, build)

    def event_rank(self, i: int) -> int:
        """Position of event i when all events are sorted by time."""
        ordered = self._time_rank()
        return i if ordered is None else int(ordered[1][i])

    def event_step(self, i: int, step: int) -> int | None:
        """The event `step` places after (or before) event i in time order; None past either end."""
        j = self.event_rank(i) + step
        if not 0 <= j < self._t.n:
            return None
        ordered = self._time_rank()
        return j if ordered is None else int(ordered[0][j])

    def event_at(self, t: int) -> int | None:
        """The last event at or before time t (None before the first)."""
        ordered = self._time_rank()
        times = self._t.view() if ordered is None else self._t.a[ordered[0]]
        j = int(np.searchsorted(times, t, side="right")) - 1
        if j < 0:
            return None
        return j if ordered is None else int(ordered[0][j])

    def lane_tree(self) -> list[tuple[int, int]]:
        """(lane, depth) in drawing order: each lane followed by its children (pool -> workers,
        process -> its threads, thread -> its tasks), siblings in the order they appeared."""
        def build():
            children: dict[int | None, list[int]] = defaultdict(list)
            n = len(self.lanes)
            for lane_id, parent in enumerate(self.lanes.parents()):
                parent = parent if parent is not None and 0 <= parent < n else None
                children[None if parent == lane_id else parent].append(lane_id)
            out: list[tuple[int, int]] = []
            seen: set[int] = set()
            stack = [(lane, 0) for lane in reversed(children[None])]
            while stack:
                lane, depth = stack.pop()
                if lane in seen:
                    continue
                seen.add(lane)
                out.append((lane, depth))
                stack.extend((c, depth + 1) for c in reversed(children.get(lane, ())))
            # Parent cycles (a damaged trace) leave lanes unreached: keep them, flat.
            out.extend((lane_id, 0) for lane_id in range(n) if lane_id not in seen)
            return out
        return self._cached("lane_tree", len(self.lanes), build)

    def states_at(self, lane: int, times: np.ndarray) -> np.ndarray:
        """The state of `lane` at each of `times` (vectorised state_at)."""
        tr = self._track(lane)
        out = np.full(len(times), NONE, dtype=np.uint8)
        if tr.t.n == 0:
            return out
        i = np.searchsorted(tr.t.view(), times, side="right") - 1
        ok = i >= 0
        out[ok] = tr.state.a[i[ok]]
        return out

    def where_at(self, lane: int, t: int) -> tuple[int, str | None]:
        """(state, `file:line`) of `lane` at time t: where it runs, or where it is suspended.

        A `ready` lane is still suspended where it last waited, so this looks back
        a few state changes for the last place known.
        """
        tr = self._track(lane)
        i = int(np.searchsorted(tr.t.view(), t, side="right")) - 1
        if i < 0:
            return NONE, None
        state = int(tr.state.a[i])
        owner = tr.events()
        for j in range(i, max(i - 8, -1), -1):
            where = self._details[int(self._detail.a[int(owner[j])])][1]
            if where:
                return state, self._str(where)
        return state, None

    def lane_event_times(self, lane: int, kinds: tuple[str, ...]) -> np.ndarray:
        """Times of `lane`'s events of the given kinds (scans every event: cache the answer)."""
        codes = [KIND_CODE[k] for k in kinds]
        mask = np.isin(self._kind.view(), codes) & (self._lane.view() == lane)
        return self._t.view()[mask]

    def events_of_kind_since(self, start: int, *kinds: str) -> np.ndarray:
        """Indices of the events from index `start` on that have one of the given kinds."""
        codes = [KIND_CODE[k] for k in kinds]
        return np.flatnonzero(np.isin(self._kind.a[start:self._t.n], codes)) + start

    def event_text(self, i: int) -> str | None:
        at = self._text_at.view()
        # The key in the column's own type: a Python int makes numpy convert the whole column first (40 us a
        # call at 100k texts: the output pane's index of a 1M-event trace took seconds).
        j = int(at.searchsorted(at.dtype.type(i))) if 0 <= i <= np.iinfo(at.dtype).max else len(at)
        return self._texts[int(self._text_id.a[j])] if j < len(at) and at[j] == i else None

    # -- summary -------------------------------------------------------------------------

    def summary(self) -> dict:
        """What `concurview summary` prints: totals per lane and the most lanes ever running at once.

        Computed for all lanes at once from the event columns (a trace may have a million lanes:
        a gevent server's greenlets); `lane_totals` is a LaneTotals, a sequence of one dict a lane
        made as it is read, so a million lanes are not a million dicts held at once.
        """
        end = self.t_end
        return {
            "scenario": self.header.scenario,
            "program": self.header.program,
            "params": self.header.params,
            "complete": self.complete,
            "incomplete_reason": self.incomplete_reason(),
            "exit_code": None if self.footer is None else self.footer.exit_code,
            "duration_s": end / 1e9,
            "events": self.n_events,
            "lanes": len(self.lanes),
            "switches": self.n_switches,
            "dropped": self.dropped,
            "undeclared": self.undeclared,
            "errors": self.count_of_kind("error"),
            "logs": self.count_of_kind("log"),
            "max_running": self._given_back(self.max_running()),
            "max_in_flight": self._given_back(self.max_in_flight()),
            "blocks": [{"lane": lane, "name": self.lanes[lane].name, "t_s": t0 / 1e9, "duration_s": (t1 - t0) / 1e9,
                        "reason": self.event(ev).reason, "where": self.event(ev).where,
                        "starved": [self.lanes[s].name for s in self.starved(lane, t0, t1)]}
                       for lane, ev, t0, t1 in self.block_spans()],
            "lane_totals": self._given_back(LaneTotals(self)),
            # GIL view (only in traces that carry it): what the header line says, and what "running" counts.
            **({"gil_view": self.gil_view()} if self.gil_view() else {}),
            **({"max_running_counts": "thread lanes holding the GIL or on a CPU without it, as sampled"}
               if self._sampled is not None else {}),
        }

    @staticmethod
    def _given_back(value):
        _give_back()
        return value

    def state_changes(self) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """Every lane's state changes at once, as recorded (no starved-ready drawing): (lane, t, state,
        start, ev) with lane, t, state and ev (the event's index) sorted by lane, then time, then file
        order (the order each lane's track keeps), and start[l] the index of lane l's first change
        (start[n_lanes] = the number of changes). Read from the change index. The summary reads
        them in chunks instead (change_chunks): at 10M events these arrays are ~130 MB."""
        parts = list(self.change_chunks(size=max(self._t.n, 1)))
        if len(parts) == 1:
            lane, t, state, start, ev, _l0 = parts[0]
            return lane, t, state, start, ev
        ev = np.concatenate([p[4] for p in parts]) if parts else np.zeros(0, dtype=np.int32)
        t = np.concatenate([p[1] for p in parts]) if parts else np.zeros(0, dtype=np.int64)
        state = np.concatenate([p[2] for p in parts]) if parts else np.zeros(0, dtype=np.uint8)
        lane = np.concatenate([p[0] for p in parts]) if parts else np.zeros(0, dtype=np.int32)
        return lane, t, state, self._index_start.copy(), ev

    def change_chunks(self, size: int | None = None):
        """state_changes() a run of whole lanes at a time, about `size` changes each (a lane with more
        alone): (lane, t, state, start, ev, l0), start[i] the chunk's index of lane l0 + i's first change."""
        if self._index_upto != self._t.n or len(self._index_start) != len(self.lanes) + 1:
            self._build_index()
        ev_all, start_all = self._index_ev, self._index_start
        n_lanes = len(self.lanes)
        size = size or _CHUNK_EVENTS
        codes, names = self.lanes.kind_codes()
        greenlets = codes == names.index("greenlet") if "greenlet" in names else None
        l0 = 0
        while l0 < n_lanes:
            l1 = int(np.searchsorted(start_all, start_all[l0] + size, side="right")) - 1
            l1 = min(max(l1, l0 + 1), n_lanes)
            lo, hi = int(start_all[l0]), int(start_all[l1])
            ev = ev_all[lo:hi]
            t = self._t.a[ev]
            start = start_all[l0:l1 + 1] - lo
            lane = np.repeat(np.arange(l0, l1, dtype=np.int32), np.diff(start))
            back = t[1:] < t[:-1]
            if back.any() and (back & (lane[1:] == lane[:-1])).any():
                # A lane's change earlier than one before it (a back-dated probe, a damaged file): time order.
                order = np.lexsort((ev, t, lane))
                ev, t = ev[order], t[order]
            del back
            kinds = self._kind.a[ev]
            states = _KIND_TO_STATE[kinds]
            if greenlets is not None:
                states[greenlets[lane] & (kinds == OPEN)] = NONE  # a greenlet is not started until it runs
            yield lane, t, states, start, ev, l0
            l0 = l1

    def incomplete_reason(self) -> str | None:
        """Why the trace is incomplete (truncated file, no footer, the footer's reason), or None."""
        if self.truncated:
            return "file is truncated"
        if self.footer is None:
            return "no footer: the run did not finish"
        return self.footer.reason if not self.footer.complete else None

    # -- blocking the thread: `block` events, the lanes they starve, jobs in flight ----------------

    def _end_blocks(self, at_end: bool = False) -> None:
        """Blocks whose end (the blocker's next change) has arrived: kept as spans, and their
        starved siblings drawn ready. At the end of a trace, a block still open ends there."""
        still = []
        for b in self._blocks_open:
            lane = int(self._lane.a[b])
            tr = self._track(lane)
            at = np.flatnonzero(tr.events() == b)
            if not len(at):
                continue
            j = int(at[-1])
            if j + 1 < tr.t.n:
                end = int(tr.t.a[j + 1])
            elif at_end:
                end = max(self.t_end, int(tr.t.a[j]))
            else:
                still.append(b)
                continue
            start = int(tr.t.a[j])
            self._block_spans.append((lane, b, start, end))
            self._starve(lane, b, start, end)
        self._blocks_open = still

    def _starve(self, blocker: int, b: int, t0: int, t1: int) -> None:
        """The lanes of the blocker's thread that could have run during its block [t0, t1): drawn ready.

        - a task waiting on `await sleep(d)` (or a greenlet on gevent's `sleep d s`) whose deadline
          passed before the block ended: ready from its deadline (its `ready` event comes only once
          the loop runs again);
        - gevent's hub, switched away from: ready for the block (it would run the loop, and every
          greenlet it has to wake). A lane whose deadline is not known (a future, a socket) stays waiting.
        """
        for other in self.same_thread(blocker):
            if other.id == blocker or other.kind not in ("task", "greenlet", "hub"):
                continue
            tr = self._track(other.id)
            t, st, owner = tr.t.view(), tr.state.view(), tr.events()
            i = int(np.searchsorted(t, t0, side="right")) - 1
            if i < 0 or st[i] != WAITING:
                continue
            ev = int(owner[i])
            nxt = int(t[i + 1]) if i + 1 < len(t) else None
            if other.kind == "hub":
                extra = [(t0, READY_S, ev)]
                if nxt is None or nxt > t1:
                    extra.append((t1, WAITING, ev))
            else:
                if self._kind.a[ev] != WAIT:
                    continue
                secs = _deadline_of(self.event(ev).reason, other.kind)
                if secs is None:
                    continue
                due = int(t[i]) + int(secs * 1e9)
                if due >= t1 or (nxt is not None and due >= nxt):
                    continue
                extra = [(due, READY_S, ev)]
            if tr.extra is None:
                tr.extra = []
            tr.extra.extend(extra)
        self._view_cache.pop("in_flight", None)

    def same_thread(self, lane: int) -> list[Lane]:
        """The lanes with `lane`'s pid and tid (itself too), in id order."""
        return [self.lanes[i] for i in np.flatnonzero(self.lanes.same_place(lane)).tolist()]

    def has_blocks(self) -> bool:
        """Whether any lane has blocked its thread so far (ended or still blocking)."""
        return bool(self._block_spans or self._blocks_open)

    def block_spans(self) -> list[tuple[int, int, int, int]]:
        """(lane, `block` event, start, end) of every block that ended, in the order they ended."""
        return list(self._block_spans)

    def starved(self, blocker: int, t0: int, t1: int) -> list[int]:
        """The other lanes of the blocker's thread that were ready (could have run) in [t0, t1)."""
        out = []
        for other in self.same_thread(blocker):
            if other.id == blocker or other.kind not in COOPERATIVE_KINDS:
                continue
            tr = self._track(other.id)
            t, st = tr.t.view(), tr.state.view()
            lo = max(int(np.searchsorted(t, t0, side="right")) - 1, 0)
            hi = int(np.searchsorted(t, t1, side="left"))
            if len(t) and t[0] < t1 and bool((st[lo:max(hi, lo + 1)] == READY_S).any()):
                out.append(other.id)
        return out

    def blocker_at(self, lane: int, t: int) -> int | None:
        """The lane whose block holds `lane`'s thread at time t (None if none does)."""
        me = self.lanes[lane]
        for other, _b, t0, t1 in reversed(self._block_spans):
            o = self.lanes[other]
            if other != lane and o.pid == me.pid and o.tid == me.tid and t0 <= t < t1:
                return other
        for b in self._blocks_open:
            other = int(self._lane.a[b])
            o = self.lanes[other]
            if other != lane and o.pid == me.pid and o.tid == me.tid and int(self._t.a[b]) <= t:
                return other
        return None

    def in_flight_mask(self, lane: int) -> np.ndarray:
        """Per cached change of `lane`: whether it is in the middle of a job from there on.

        A job is in flight from the lane's first run until it is done, whatever its state meanwhile
        (a sleeping pool worker, a task waiting on IO count), except while it waits for work
        (an idle pool worker between jobs)."""
        tr = self._track(lane)
        st = tr.state.view()
        owner = tr.events()
        busy = (st != DONE) & (st != NONE)
        runs = np.flatnonzero(st == RUNNING)
        busy[:runs[0] if len(runs) else len(st)] = False
        idle = self._idle_details()
        if len(idle):
            busy &= ~((st == WAITING) & np.isin(self._detail.a[owner], idle))
        return busy

    def _idle_details(self) -> np.ndarray:
        def build():
            ids = {i for i in {r for r, _w, _c in self._details} if self._str(i) in _IDLE_REASONS}
            return np.array([d for d, (reason, _w, _c) in enumerate(self._details) if reason in ids], dtype=np.int64)
        return self._cached("idle_details", len(self._details), build)

    def drawn_lanes(self) -> list[int]:
        """Lanes whose drawn states are not what their own events alone say: starved by another lane's
        block (extras), or a thread lane the GIL view's samples refine. Few; computed from their tracks."""
        out = {i for i, tr in self._tracks.items() if tr.extra}
        if self._sampled is not None:
            def build():
                n = self._t.n
                return np.unique(self._lane.a[:n][self._kind.a[:n] == SAMPLE]).tolist()
            out.update(self._cached("sampled_lanes", self._t.n, build))
        return sorted(out)

    def max_in_flight(self, kinds: Iterable[str] | None = None) -> dict[str, int]:
        """For each lane kind, the most lanes of that kind in the middle of a job at the same moment
        (in_flight_mask's rule, for all lanes at once)."""
        idle = self._idle_details()
        drawn = {i: (self._track(i).t.view(), self.in_flight_mask(i)) for i in self.drawn_lanes()}
        edges = []
        for lane, t, state, start, ev, l0 in self.change_chunks():
            busy = (state != DONE) & (state != NONE)
            runs = np.flatnonzero(state == RUNNING)
            first_run = np.full(len(start) - 1, len(t), dtype=np.int64)
            if len(runs):
                heads = np.flatnonzero(np.diff(lane[runs], prepend=-1))
                first_run[lane[runs[heads]] - l0] = runs[heads]
            busy &= np.arange(len(t)) >= first_run[lane - l0]  # a job starts with the lane's first run
            if len(idle):
                busy &= ~((state == WAITING) & np.isin(self._detail.a[ev], idle))
            edges.append(self._edges(lane, ev, busy, start, drawn))
        return self._most_at_once(edges, kinds, drawn)

    def _edges(self, lane: np.ndarray, ev: np.ndarray, on: np.ndarray, start: np.ndarray,
               drawn: dict) -> dict[int, tuple[list, list]]:
        """Per lane kind code: (the events where lanes turn on, those where they turn off), from a chunk of
        change_chunks' (the lanes in `drawn` left out: their tracks say)."""
        prev = np.zeros_like(on)
        prev[1:] = on[:-1]
        prev[start[:-1][start[:-1] < start[1:]]] = False  # each lane starts off
        up, down = on & ~prev, prev & ~on
        del prev
        if drawn:
            mine = np.zeros(len(self.lanes), dtype=bool)
            mine[list(drawn)] = True
            keep = ~mine[lane]
            up &= keep
            down &= keep
            del keep
        codes = self._kind_codes()[0]
        out = {}
        for edge in (up, down):
            at = np.flatnonzero(edge)
            te, ke = ev[at], codes[lane[at]]  # event indices (half a time's bytes): times when sorted
            for k in np.unique(ke).tolist():
                out.setdefault(k, ([], []))[edge is down].append(te[ke == k] if len(te) else te)
        return out

    def _kind_codes(self) -> tuple[np.ndarray, list[str]]:
        return self._cached("kind_codes", len(self.lanes), self.lanes.kind_codes)

    def _most_at_once(self, edges: list[dict[int, tuple[list, list]]],
                      kinds: Iterable[str] | None, drawn: dict[int, tuple[np.ndarray, np.ndarray]],
                      min_ns: int = 0) -> dict[str, int]:
        """For each lane kind, the most lanes at once from the times their changes turn `on` and off
        (_edges, per chunk); the lanes in `drawn` by their tracks' (times, on) instead. With
        `min_ns`, a count of thread lanes that lasted less than that is passed over (the GIL view's
        facts lag the hooks by up to a sampling period, so two threads may seem to hold the GIL for a moment)."""
        codes, by_code = self._kind_codes()
        ups: dict[int, list] = defaultdict(list)
        downs: dict[int, list] = defaultdict(list)
        for part in edges:
            for k, (u, d) in part.items():
                ups[k] += u
                downs[k] += d
        edges.clear()
        ups_t: dict[int, list] = defaultdict(list)
        downs_t: dict[int, list] = defaultdict(list)
        for i, (ti, oi) in drawn.items():
            pi = np.zeros_like(oi)
            pi[1:] = oi[:-1]
            k = int(codes[i])
            ups_t[k].append(ti[oi & ~pi])
            downs_t[k].append(ti[pi & ~oi])

        def times(evs: list, more: list) -> np.ndarray:
            ev = np.concatenate(evs) if evs else np.zeros(0, dtype=np.int32)
            evs.clear()
            t = self._t.a[ev]
            del ev
            if more:
                t = np.concatenate([t, *more])
            t.sort()
            return t

        names = sorted(set(by_code[c] for c in np.unique(codes).tolist()))
        out: dict[str, int] = {}
        for k in names:
            if kinds is not None and k not in kinds:
                continue
            c = by_code.index(k)
            if (not min_ns or k not in _SAMPLED_KINDS) and c not in ups_t and c not in downs_t and self._in_time_order():
                out[k] = self._most_by_events(ups.pop(c, []), downs.pop(c, []))
                continue
            # One kind's times at a time, sorted in place (a run's 3M switches: 25 MB a copy).
            starts = times(ups.pop(c, []), ups_t.pop(c, []))
            stops = times(downs.pop(c, []), downs_t.pop(c, []))
            if not len(starts):
                out[k] = 0
                continue
            # At each start, the lanes on: the starts so far less the stops so far (a stop at the
            # same moment counted first).
            if not min_ns or k not in _SAMPLED_KINDS:
                out[k] = max(int((np.arange(lo + 1, lo + len(part) + 1) - np.searchsorted(stops, part, side="right")).max())
                             for lo in range(0, len(starts), _CHUNK_EVENTS) for part in [starts[lo:lo + _CHUNK_EVENTS]])
                continue
            # The count after each change, and how long it lasted (stops before starts at a time).
            t_all = np.concatenate((stops, starts))
            d_all = np.concatenate((np.full(len(stops), -1, np.int64), np.ones(len(starts), np.int64)))
            order = np.lexsort((d_all, t_all))
            t_all, count = t_all[order], np.cumsum(d_all[order])
            lasted = np.diff(t_all, append=max(self.t_end, int(t_all[-1])))
            held = count[lasted >= min_ns]
            out[k] = int(held.max(initial=0)) if len(held) else int(count.max(initial=0) > 0)
        return out

    def _most_by_events(self, ups: list, downs: list) -> int:
        """The most lanes on at once, from the events where they turn on and off, in a trace whose
        events are in time order: the events' indices sort as their times do, at half the bytes.
        At each start, the starts so far less the stops at or before its time."""
        starts = np.concatenate(ups) if ups else np.zeros(0, dtype=np.int32)
        ups.clear()
        starts.sort()
        stops = np.concatenate(downs) if downs else np.zeros(0, dtype=np.int32)
        downs.clear()
        stops.sort()
        t = self._t.view()
        best = 0
        for lo in range(0, len(starts), _CHUNK_EVENTS):
            part = starts[lo:lo + _CHUNK_EVENTS]
            upto = np.searchsorted(t, t[part], side="right")  # the events at or before each start's time
            on = np.arange(lo + 1, lo + len(part) + 1) - np.searchsorted(stops, upto, side="left")
            best = max(best, int(on.max()))
        return best

    def _in_time_order(self) -> bool:
        """Whether the events' times never go back (a chunk at a time: np.diff of 10M times is 80 MB)."""
        def build():
            t, n = self._t.a, self._t.n
            return all(bool((np.diff(t[lo:min(n, lo + _CHUNK_EVENTS + 1)]) >= 0).all())
                       for lo in range(0, max(n - 1, 0), _CHUNK_EVENTS))
        return self._cached("in_time_order", self._t.n, build)

    def max_running(self, kinds: Iterable[str] | None = None) -> dict[str, int]:
        """For each lane kind, the most lanes of that kind running at the same moment (a thread the
        GIL view saw: when the sampler saw it on a CPU, see _running_mask)."""
        drawn = {i: (tr.t.view(), self._running_mask(tr)) for i in self.drawn_lanes() for tr in [self._track(i)]}
        edges = [self._edges(lane, ev, state == RUNNING, start, drawn)
                 for lane, _t, state, start, ev, _l0 in self.change_chunks()]
        # Sampled thread lanes: a count shorter than two sampling periods is the sampler's lag.
        return self._most_at_once(edges, kinds, drawn, _SAMPLE_GLITCH_NS if self._sampled is not None else 0)

    def lane_label(self, lane: int) -> str:
        return self.lanes[lane].name


def _sum_by(groups: np.ndarray, values: np.ndarray, n: int) -> np.ndarray:
    """out[g] = the sum of values whose group is g, in int64, for groups sorted ascending."""
    out = np.zeros(n, dtype=np.int64)
    if len(groups):
        heads = np.flatnonzero(np.diff(groups, prepend=-1))
        out[groups[heads]] = np.add.reduceat(values, heads)
    return out


class LaneTotals(Sequence):
    """summary()'s per-lane rows, one dict a lane made when it is read, from arrays computed for all lanes at once."""

    def __init__(self, tl: Timeline) -> None:
        self._lanes = tl.lanes
        n_lanes = len(tl.lanes)
        self._totals = np.zeros((n_lanes, _N_STATES), dtype=np.int64)
        self._more: dict[int, dict] = {}  # per lane, more fields (the GIL view's)
        self._runs = np.zeros(n_lanes, dtype=np.int64)
        self._first = np.full(n_lanes, -1, dtype=np.int64)
        self._done = np.full(n_lanes, -1, dtype=np.int64)
        # A run of whole lanes at a time (change_chunks): a 10M-event trace's arrays at once are ~130 MB.
        for lane, t, state, start, ev, l0 in tl.change_chunks():
            n, m = len(t), len(start) - 1
            if not n:
                continue
            local = lane - l0
            # Switches are `run` events (a sampled fact that refined a state is not one).
            self._runs[l0:l0 + m] = np.bincount(local[tl._kind.a[ev] == RUN], minlength=m)
            # One state at a time, over just its changes: each lasts until the lane's next change,
            # its last one until the end of the trace.
            for s in _COUNTED:
                at = np.flatnonzero(state == s)
                if not len(at):
                    continue
                owner = local[at]
                nxt = np.minimum(at + 1, n - 1)
                last = at + 1 == start[owner.astype(np.int64) + 1]
                dur = np.where(last, tl.t_end, t[nxt]) - t[at]
                # Summed per lane as int64 (bincount's weights are floats: exact only to 2**53 ns).
                self._totals[l0:l0 + m, s] = _sum_by(owner, dur, m)
                del at, owner, nxt, last, dur
            has = start[1:] > start[:-1]
            firsts = np.minimum(start[:-1], n - 1)
            lasts = np.maximum(start[1:] - 1, 0)
            self._first[l0:l0 + m] = np.where(has, t[firsts], -1)
            self._done[l0:l0 + m] = np.where(has & (state[lasts] == DONE), t[lasts], -1)
        # Lanes drawn otherwise than their events alone say (starved by another's block; refined by
        # the GIL view's samples): their totals are their tracks' (few lanes: a blocker's siblings,
        # the threads the sampler saw).
        for i in tl.drawn_lanes():
            tr = tl._track(i)
            if tr.t.n:
                pre = tr.prefix()
                last = int(tr.state.a[tr.t.n - 1])
                for r, s in enumerate(_COUNTED):
                    self._totals[i, s] = int(pre[r, -1]) + (tl.t_end - int(tr.t.a[tr.t.n - 1]) if s == last else 0)
            if tl.has_samples:
                gil = tl.gil_totals(i)
                if gil is not None:
                    self._more[i] = gil

    def __len__(self) -> int:
        return len(self._lanes)

    def __eq__(self, other: object) -> bool:
        if isinstance(other, (LaneTotals, list, tuple)):
            return len(self) == len(other) and all(a == b for a, b in zip(self, other))
        return NotImplemented

    __hash__ = None  # type: ignore[assignment]

    def __getitem__(self, i):  # type: ignore[override]
        if isinstance(i, slice):
            return [self[j] for j in range(*i.indices(len(self)))]
        if i < 0:
            i += len(self)
        if not 0 <= i < len(self):
            raise IndexError(i)
        lane = self._lanes[i]
        totals = self._totals[i]
        first, done = int(self._first[i]), int(self._done[i])
        return {
            "id": lane.id, "kind": lane.kind, "name": lane.name, "parent": lane.parent,
            "pid": lane.pid, "tid": lane.tid, "switches": int(self._runs[i]),
            "running_s": int(totals[RUNNING]) / 1e9, "ready_s": int(totals[READY_S]) / 1e9,
            "waiting_s": int(totals[WAITING]) / 1e9, "blocking_s": int(totals[BLOCKING]) / 1e9,
            "first_t_s": first / 1e9 if first >= 0 else None,
            "done_t_s": done / 1e9 if done >= 0 else None,
            **self._more.get(i, {}),
        }


def _stable_order(lanes: np.ndarray) -> np.ndarray:
    """argsort(lanes, kind="stable"): a radix sort of 2-byte keys up to 65535 lanes (7x faster than a
    stable sort of 4-byte ones); past that a merge sort, fast on real traces, whose lanes come in runs
    (short-lived lanes, each busy for a while)."""
    if len(lanes) == 0 or int(lanes.max()) <= _LANES_NARROW:
        return np.argsort(lanes.astype(np.uint16), kind="stable")
    return np.argsort(lanes, kind="stable")


_SAMPLE_GLITCH_NS = 2_000_000  # two of the GIL view's sampling periods (1 ms while busy)
_SAMPLED_KINDS = frozenset({"main", "thread", "timer"})  # the lanes the GIL view samples
_LOAD_BATCH = 50_000  # events a load gives the store at once
_CHUNK_EVENTS = 1 << 18  # events (or changes) whole-trace passes take at a time: their temporaries stay small


def _give_back() -> None:
    """Return the C heap's free memory to the system after a pass that allocated and freed a lot.

    glibc raises its mmap threshold after a large array is freed, so the next arrays of up to 32 MB
    come from the heap, and what they leave when freed stays resident (a 10M-event load: ~40 MB)."""
    global _malloc_trim
    if _malloc_trim is None:
        try:
            import ctypes

            _malloc_trim = ctypes.CDLL(None).malloc_trim
        except (OSError, AttributeError):
            _malloc_trim = False
    if _malloc_trim:
        _malloc_trim(0)


_malloc_trim = None
_CHANGES = np.zeros(256, dtype=bool)  # by kind code: the kinds that change a lane's state
_CHANGES[[OPEN, RUN, WAIT, READY, CLOSE, BLOCK, SAMPLE]] = True
_KIND_TO_STATE = np.full(len(EVENT_KINDS), NONE, dtype=np.uint8)
for _k, _s in _STATE_OF_KIND.items():
    _KIND_TO_STATE[_k] = _s
# A greenlet runs only when something switches to it: created, it is not started (not ready), until
# its first run. (gevent's are scheduled by the hub at spawn: the engine declares them at their first run.)
_GREENLET_STATES = _KIND_TO_STATE.copy()
_GREENLET_STATES[OPEN] = NONE


_IDLE_REASONS = frozenset({"waiting for work"})  # a pool worker between jobs (threads, processes)
_SLEEP_AWAIT = re.compile(r"await sleep\(([0-9.eE+-]+)\)\Z")
_SLEEP_GEVENT = re.compile(r"sleep ([0-9.eE+-]+)s\Z")


def _deadline_of(reason: str | None, kind: str) -> float | None:
    """Seconds a hand-off wait lasts at most, when its reason says: `await sleep(0.3)` (a task),
    gevent's `sleep 0.3s` (a greenlet's switch to the hub); else None."""
    m = (_SLEEP_AWAIT if kind == "task" else _SLEEP_GEVENT).match(reason or "")
    if m is None:
        return None
    try:
        secs = float(m.group(1))
    except ValueError:
        return None
    return secs if 0 <= secs < 1e9 else None


def load(path: str | os.PathLike[str], max_bytes: int | None = None) -> Timeline:
    """Read a trace file into a new Timeline (TraceFormatError for anything unreadable).

    Chrome Trace Event Format files (VizTracer, Perfetto JSON) are read too. At most
    `max_bytes` of content are read (default: $CONCURVIEW_MAX_BYTES, else 512 MB); past
    that, a TraceFormatError says so. The file is opened once (it may be a pipe).
    """
    from .tracefile import TraceReader, open_source
    from .foreign import load_chrome, looks_like_chrome

    src = open_source(path, max_bytes)
    try:
        data = src.read_all() if looks_like_chrome(src.peek(4096)) else None
    except BaseException:
        src.close()
        raise
    if data is not None:
        src.close()
        return load_chrome(path, data)
    reader = TraceReader(path, source=src)  # closes it
    tl = Timeline(reader.header)
    # A load may allocate many short-lived, acyclic objects (msgspec decodes the lines the
    # parser leaves): scanning them for cycles over and over costs, so pause the collector.
    enabled = gc.isenabled()
    gc.disable()
    try:
        # The reader's batches are a chunk of the file each; the store takes them in bigger
        # ones (each add has a cost per lane, and a file may declare a lane every few lines: a
        # gevent server's 1M greenlets). Lanes declared within a batch are added with it, each
        # nameable only by the events after its line (`named_from`).
        pending: list[Columns] = []
        new_lanes: list[Lane] = []
        named_from: list[int] = []
        waiting = 0
        reserved = False

        def add() -> None:
            nonlocal waiting
            try:
                tl.add(new_lanes, Columns.concat(pending) if pending else [], named_from)
            except ValueError as e:
                from .tracefile import TraceFormatError

                raise TraceFormatError(f"{path}: {e}") from None
            tl.pack_texts()
            pending.clear()
            new_lanes.clear()
            named_from.clear()
            waiting = 0

        for lanes, cols, since in reader.columns(tl.strings):
            if lanes:
                new_lanes.extend(lanes)
                named_from.extend(waiting + i for i in since)
            if len(cols):
                pending.append(cols)
                waiting += len(cols)
            if waiting >= _LOAD_BATCH or len(new_lanes) >= _LOAD_BATCH:
                if not reserved and waiting:
                    # The first batch tells how many bytes an event takes: size the columns once.
                    reserved = True
                    done = reader.fraction_read
                    if done < 1.0:
                        tl.reserve(int((tl.n_events + waiting) / done * 1.05))
                add()
        add()
    finally:
        if enabled:
            gc.enable()
    tl.finish(reader.footer, reader.truncated)
    _give_back()
    return tl


# -- queries for the lane diagram (added by the UI; read-only) -------------------------------


def _started(t: np.ndarray, st: np.ndarray) -> int:
    """When a track's lane leaves `not started` (its first change, but a greenlet's open); never: past all time."""
    if st[0] != NONE:
        return int(t[0])
    k = int(np.argmax(st != NONE))
    return int(t[k]) if st[k] != NONE else np.iinfo(np.int64).max // 2


def lane_states_many(tl: Timeline, lanes: Sequence[int], t0: int, t1: int, width: int,
                     t_now: int | None = None) -> np.ndarray:
    """Timeline.lane_states, the same answer, with the arithmetic done once for all the lanes.

    Only the per-lane lookups (a searchsorted and a few gathers) stay in the loop: a frame of
    25 lanes costs about a third of lane_states' time (the UI's frame budget is 4 ms).
    """
    n = len(lanes)
    if width <= 0 or t1 <= t0 or n == 0:
        return np.zeros((n, max(width, 0)), dtype=np.uint8)
    edges = np.linspace(t0, t1, width + 1).astype(np.int64)
    end = tl.t_end if t_now is None else t_now
    # Without a block in the trace no lane is ever blocking: one state row less to add up per frame.
    counted, n_states = (_COUNTED, _N_STATES) if tl.has_blocks() else (_COUNTED[:3], DONE + 1)
    e_all = np.broadcast_to(edges, (n, width + 1)).copy()
    idx = np.full((n, width + 1), -1, dtype=np.int64)
    cur = np.zeros((n, width + 1), dtype=np.uint8)
    t_at = np.zeros((n, width + 1), dtype=np.int64)
    pre = np.zeros((len(counted), n, width + 1), dtype=np.int64)
    first = np.zeros(n, dtype=np.int64)
    last = np.zeros(n, dtype=np.uint8)
    has = np.zeros(n, dtype=bool)
    for row, lane in enumerate(lanes):
        tr = tl._track(lane)
        if tr.t.n == 0:
            continue
        t, st = tr.t.view(), tr.state.view()
        e = np.minimum(edges, max(end, int(t[-1])))
        i = np.searchsorted(t, e, side="right") - 1
        ic = np.maximum(i, 0)
        e_all[row], idx[row], cur[row], t_at[row] = e, i, st[ic], t[ic]
        pre[:, row] = tr.prefix()[:len(counted), ic]
        first[row], last[row], has[row] = _started(t, st), st[-1], True
    valid = idx >= 0
    since = np.where(valid, e_all - t_at, 0)
    cum = np.zeros((n_states, n, width + 1), dtype=np.int64)
    for r, s in enumerate(counted):
        cum[s] = np.where(valid, pre[r] + np.where(cur == s, since, 0), 0)
    cum[DONE] = np.where(valid, np.clip(e_all - first[:, None], 0, None), 0) - cum[list(counted)].sum(axis=0)
    cum[NONE] = np.clip(np.minimum(e_all, first[:, None]) - t0, 0, None)
    spent = np.diff(cum, axis=2)
    dominant = spent.argmax(axis=0).astype(np.uint8)
    empty = spent.sum(axis=0) == 0
    dominant[empty] = np.where(valid[:, 1:], cur[:, 1:], NONE)[empty]
    past = edges[:-1] >= end
    if past.any():
        dominant[:, past] = np.where(last == DONE, DONE, NONE).astype(np.uint8)[:, None]
    dominant[~has] = NONE
    return dominant


# -- families and filters: queries for folding the diagram (read-only; each a few numpy passes) --------

# One family: the same kind and the same name but for its numbers (handle, handle-2, conn-7): the rule
# the recorder's lane cap (CONCURVIEW_MAX_LANES, engines/recorder.py) uses.
_NUMBERED = re.compile(r"-\d+$|\d+")
_DIGITS = re.compile(r"\d+")
DENSITY_SAMPLES = 1 << 14  # a family's counts are kept at this many instants over the trace (~400 KB a family)
DENSITY_FAMILIES = 32  # built together in one pass: the largest families of DENSITY_MIN lanes or more
DENSITY_MIN = 8
# A window narrower than the samples asks each member present in it, up to this many (a state lookup each);
# past it the nearest samples answer (a key press must not cost a lookup per lane of a 10k-lane family).
EXACT_MEMBERS = 64
_ALIVE_FOREVER = np.iinfo(np.int64).max


class _Families:
    """Family codes of the lanes seen so far (grown as lanes arrive: a name is read once)."""

    __slots__ = ("upto", "codes", "keys", "code_of", "labels")

    def __init__(self) -> None:
        self.upto = 0
        self.codes = np.zeros(0, dtype=np.int32)
        self.keys: list[tuple[str, str]] = []
        self.code_of: dict[tuple[str, str], int] = {}
        self.labels: list[str] = []


def lane_families(tl: Timeline) -> tuple[np.ndarray, list[str]]:
    """(family code of each lane, each family's label): lanes of one kind whose names differ only in
    their numbers share a code; the label is the first member's name with its numbers as `N`."""
    fam = tl._view_cache.get("families")
    if fam is None:
        fam = _Families()
        tl._view_cache["families"] = (0, fam)
    else:
        fam = fam[1]
    n = len(tl.lanes)
    if fam.upto < n:
        codes_k, kinds = tl.lanes.kind_codes()
        new = np.empty(n - fam.upto, dtype=np.int32)
        code_of, keys = fam.code_of, fam.keys
        for j, i in enumerate(range(fam.upto, n)):
            name = tl.lanes.name(i)
            key = (kinds[int(codes_k[i])], _NUMBERED.sub("", name))
            code = code_of.get(key)
            if code is None:
                code = code_of[key] = len(keys)
                keys.append(key)
                fam.labels.append(_DIGITS.sub("N", name))
            new[j] = code
        fam.codes = np.concatenate([fam.codes, new])
        fam.upto = n
    return fam.codes, fam.labels


def lane_lifetimes(tl: Timeline) -> tuple[np.ndarray, np.ndarray]:
    """(first change, end) of each lane as times: the end is its `close` (a lane not closed yet, or with
    no change at all: never ends; one without a change starts never). From the change index, plus the
    few events that came since it was built (a live run does not rebuild it per batch)."""
    def base():
        start, ev = tl._index_start, tl._index_ev
        n = len(start) - 1
        first = np.full(n, _ALIVE_FOREVER, dtype=np.int64)
        end = np.full(n, _ALIVE_FOREVER, dtype=np.int64)
        has = start[1:] > start[:-1]
        if has.any():
            lo, hi = ev[start[:-1][has]], ev[start[1:][has] - 1]
            first[has] = tl._t.a[lo]
            done = _KIND_TO_STATE[tl._kind.a[hi]] == DONE
            end[np.flatnonzero(has)[done]] = tl._t.a[hi][done]
        return first, end

    def build():
        n = tl._t.n
        if n - tl._index_upto > max(1 << 16, tl._index_upto // 4) or not tl._index_upto and n:
            tl._build_index()
        first0, end0 = tl._cached("lane_lifetimes_base", tl._index_upto, base)
        m = len(tl.lanes)
        first = np.full(m, _ALIVE_FOREVER, dtype=np.int64)
        end = np.full(m, _ALIVE_FOREVER, dtype=np.int64)
        first[:len(first0)], end[:len(end0)] = first0[:m], end0[:m]
        upto = tl._index_upto
        if upto < n:
            kinds = tl._kind.a[upto:n]
            at = np.flatnonzero(_CHANGES[kinds])
            lanes, times = tl._lane.a[upto:n][at].astype(np.int64), tl._t.a[upto:n][at]
            if len(at):
                new, idx = np.unique(lanes, return_index=True)
                first[new] = np.minimum(first[new], times[idx])
                closed = _KIND_TO_STATE[kinds[at]] == DONE
                end[lanes[closed]] = times[closed]
        return first, end
    return tl._cached("lane_lifetimes", tl._t.n, build)


def _family_spans(tl: Timeline) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """(sizes, segment starts, first times, end times): each family's members' lifetimes sorted, family by
    family (once per trace version), so how many are present in a span is two bisections, not a pass."""
    def build():
        codes, labels = lane_families(tl)
        first, end = lane_lifetimes(tl)
        sizes = np.bincount(codes, minlength=len(labels))
        starts = np.concatenate(([0], np.cumsum(sizes)))
        by_first = np.lexsort((first, codes))
        by_end = np.lexsort((end, codes))
        return sizes, starts, first[by_first], end[by_end], by_first
    return tl._cached("family_spans", (len(tl.lanes), tl._t.n), build)


def family_alive(tl: Timeline, family: int, t0: int, t1: int) -> np.ndarray:
    """The lanes of `family` present at some time in [t0, t1]: those started by t1, walked back from the
    latest started in growing chunks until all family_present() counts are found (short-lived members:
    one chunk; never a pass over a family of 100k greenlets to find the 5 alive)."""
    sizes, starts, firsts, _ends, order = _family_spans(tl)
    want = family_present(tl, family, t0, t1)
    if want <= 0:
        return np.zeros(0, dtype=np.int64)
    _first, end = lane_lifetimes(tl)
    lo = int(starts[family])
    hi = lo + int(np.searchsorted(firsts[lo:int(starts[family + 1])], t1, side="right"))
    found, chunk = [], 64
    count = 0
    while hi > lo and count < want:
        a = max(lo, hi - chunk)
        lanes = order[a:hi]
        hit = lanes[end[lanes] > t0]
        found.append(hit)
        count += len(hit)
        hi, chunk = a, chunk * 4
    return np.sort(np.concatenate(found)) if found else np.zeros(0, dtype=np.int64)


def family_present(tl: Timeline, family: int, t0: int, t1: int) -> int:
    """How many lanes of `family` are present at some time in [t0, t1] (started by t1, not closed by t0)."""
    sizes, starts, firsts, ends, _order = _family_spans(tl)
    if family >= len(sizes):
        return 0
    lo, hi = int(starts[family]), int(starts[family + 1])
    started = int(np.searchsorted(firsts[lo:hi], t1, side="right"))
    closed = int(np.searchsorted(ends[lo:hi], t0, side="right"))
    return started - closed


class FamilyDensity:
    """How many members of each big family are in each state at DENSITY_SAMPLES instants over the trace
    (counts: families x states x samples, int32; ~100 KB a family), built in one pass over the change
    index a chunk of lanes at a time."""

    def __init__(self, tl: Timeline, families: np.ndarray) -> None:
        codes, _labels = lane_families(tl)
        self.families = families
        row_of = np.full(len(_labels) + 1, -1, dtype=np.int64)
        row_of[families] = np.arange(len(families))
        lo, hi = tl.t_first, max(tl.t_end, tl.t_first + 1)
        self.times = np.linspace(lo, hi, DENSITY_SAMPLES).astype(np.int64)
        b = DENSITY_SAMPLES + 1
        size = len(families) * _N_STATES * b
        diff = np.zeros(size, dtype=np.int64)
        t_end = max(tl.t_end, hi)
        for lane, t, state, _start, _ev, _l0 in tl.change_chunks():
            rows = row_of[codes[lane]]
            keep = rows >= 0
            if not keep.any():
                continue
            # Each change holds until the lane's next one (its last: until the end of the trace).
            nxt = np.empty_like(t)
            nxt[:-1] = t[1:]
            last = np.ones(len(t), dtype=bool)
            last[:-1] = lane[1:] != lane[:-1]
            nxt[last] = t_end
            keep &= state != DONE
            rows, t, nxt, state = rows[keep], t[keep], nxt[keep], state[keep].astype(np.int64)
            base = (rows * _N_STATES + state) * b
            a = np.searchsorted(self.times, t, side="left")
            z = np.searchsorted(self.times, nxt, side="left")
            diff += np.bincount(base + a, minlength=size)
            diff -= np.bincount(base + z, minlength=size)
        self.counts = np.cumsum(diff.reshape(len(families), _N_STATES, b), axis=2)[:, :, :-1].astype(np.int32)

        self.rows = {int(f): i for i, f in enumerate(families.tolist())}

    def row(self, family: int) -> int | None:
        return self.rows.get(int(family))


def family_density(tl: Timeline, families: Sequence[int]) -> FamilyDensity:
    """The densities of these families, cached while the trace holds the same events (a live run's
    is rebuilt at most when it has grown a quarter, or 64k events, since)."""
    hit = tl._view_cache.get("family_density")
    if hit is not None and hit[0] == tl._t.n and all(int(f) in hit[1].rows for f in families):
        return hit[1]  # the common case, every frame: no pass over the lanes
    want = np.unique(np.asarray(list(families), dtype=np.int64))
    codes, _labels = lane_families(tl)
    sizes = np.bincount(codes, minlength=len(_labels))
    big = np.flatnonzero(sizes >= DENSITY_MIN)
    big = big[np.argsort(-sizes[big], kind="stable")[:DENSITY_FAMILIES]]
    want = np.union1d(want, big)  # one pass for every family a screen is likely to fold
    hit = tl._view_cache.get("family_density")
    n = tl._t.n
    if hit is not None:
        built_n, dens = hit
        fresh = built_n == n or (n - built_n <= max(1 << 16, built_n // 4) and not tl.complete)
        if fresh and np.isin(want, dens.families).all():
            return dens
        want = np.union1d(want, dens.families) if fresh else want
    dens = FamilyDensity(tl, want)
    tl._view_cache["family_density"] = (n, dens)
    return dens


def family_states(tl: Timeline, family: int, members: np.ndarray, t0: int, t1: int,
                  width: int) -> np.ndarray:
    """(states x width) how many of `members` (one family's lanes) are in each state in each of `width`
    equal cells of [t0, t1): the mean over the family's samples in a cell; a window too narrow for
    them asks each member present at the cells' middles (up to EXACT_MEMBERS of them)."""
    out = np.zeros((_N_STATES, max(width, 0)), dtype=np.float64)
    if width <= 0 or t1 <= t0 or not len(members):
        return out
    edges = np.linspace(t0, t1, width + 1)
    first, end = lane_lifetimes(tl)
    dens = family_density(tl, [family])
    times = dens.times
    cuts = np.searchsorted(times, edges, side="left")
    per_cell = np.diff(cuts)
    if per_cell.min() >= 1:
        counts = dens.counts[dens.row(family)]
        sums = np.add.reduceat(counts, cuts[:-1], axis=1) if cuts[-2] < len(times) else None
        if sums is not None:
            out[:] = sums / per_cell
            return _without(out, tl, members, family, dens)
    return family_states_at(tl, family, members, ((edges[:-1] + edges[1:]) / 2).astype(np.int64))


def family_states_at(tl: Timeline, family: int, members: np.ndarray, times: np.ndarray,
                     exact_up_to: int = EXACT_MEMBERS) -> np.ndarray:
    """(states x len(times)) how many of `members` are in each state at each of `times` (sorted): each
    member present in their span asked, up to `exact_up_to`; past that, the family's nearest samples."""
    out = np.zeros((_N_STATES, len(times)), dtype=np.float64)
    if not len(times) or not len(members):
        return out
    alive = None
    if family_present(tl, family, int(times[0]), int(times[-1])) <= exact_up_to:
        if len(members) == _family_spans(tl)[0][family]:
            alive = family_alive(tl, family, int(times[0]), int(times[-1]))
        else:  # a filter left some out: ask those shown
            first, end = lane_lifetimes(tl)
            alive = members[(first[members] <= times[-1]) & (end[members] > times[0])]
    if alive is not None:
        cols = np.arange(len(times))
        for lane in alive.tolist():
            out[tl.states_at(lane, times), cols] += 1
        out[NONE] = 0
        return out
    dens = family_density(tl, [family])
    near = np.clip(np.searchsorted(dens.times, times, side="left"), 0, len(dens.times) - 1)
    out[:] = dens.counts[dens.row(family)][:, near]
    return _without(out, tl, members, family, dens)


def _without(out: np.ndarray, tl: Timeline, members: np.ndarray, family: int, dens: FamilyDensity) -> np.ndarray:
    """The density counts every lane of the family; a filter may have left some out: scale to those shown."""
    total = int(_family_spans(tl)[0][family])
    if total and len(members) < total:
        out *= len(members) / total
    return out


def family_counts_at(tl: Timeline, members: np.ndarray, t: int) -> tuple[np.ndarray, bool]:
    """(how many of `members` are in each state at time t, exact): each member present then is asked, up to
    EXACT_MEMBERS of them; past that the nearest density sample, scaled to those present (not exact)."""
    out = np.zeros(_N_STATES, dtype=np.int64)
    if not len(members):
        return out, True
    first, end = lane_lifetimes(tl)
    codes, _ = lane_families(tl)
    family = int(codes[members[0]])
    present = family_present(tl, family, t, t)
    if present > EXACT_MEMBERS:
        return _counts_from_density(tl, family, members, t, present), False
    alive = members[(first[members] <= t) & (end[members] > t)]
    out[DONE] = int(np.count_nonzero(end[members] <= t))
    if len(alive) <= EXACT_MEMBERS:
        for lane in alive.tolist():
            out[tl.state_at(lane, t)[0]] += 1
        return out, True
    return _counts_from_density(tl, family, members, t, len(alive)), False


def _counts_from_density(tl: Timeline, family: int, members: np.ndarray, t: int, present: int) -> np.ndarray:
    """Members per state at t from the family's nearest sample, scaled to `present` of them (done: the rest
    of those shown that started by t, estimated from the whole family's)."""
    out = np.zeros(_N_STATES, dtype=np.int64)
    dens = family_density(tl, [family])
    k = min(int(np.searchsorted(dens.times, t, side="left")), len(dens.times) - 1)
    share = dens.counts[dens.row(family)][:, k].astype(np.float64)
    scale = len(members) / max(int(_family_spans(tl)[0][family]), 1)
    if share.sum():
        out[:] = np.rint(share * present * scale / share.sum()).astype(np.int64)
    return out


def lanes_in_state(tl: Timeline, candidates: np.ndarray, t: int, states: Sequence[int]) -> np.ndarray:
    """Per lane (bool, all lanes): among `candidates` (bool), those in one of `states` at time t. Only the
    lanes present at t are asked (a lane not started is NONE, a closed one DONE)."""
    first, end = lane_lifetimes(tl)
    out = np.zeros(len(tl.lanes), dtype=bool)
    want = set(states)
    if NONE in want:
        out |= candidates & (first > t)
    if DONE in want:
        out |= candidates & (end <= t)
    alive = np.flatnonzero(candidates & (first <= t) & (end > t))
    for lane in alive.tolist():
        if tl.state_at(lane, t)[0] in want:
            out[lane] = True
    return out


def lanes_that_waited(tl: Timeline, query: str) -> np.ndarray:
    """Per lane (bool): whether it ever waited (or blocked) on a reason holding `query` (any case). The
    distinct reasons are matched once each, then the events by their interned detail, a chunk at a time."""
    q = query.lower()
    out = np.zeros(len(tl.lanes), dtype=bool)
    hit = {i for i in {r for r, _w, _c in tl._details} if (text := tl._str(i)) and q in text.lower()}
    if not hit:
        return out
    wanted = np.zeros(len(tl._details), dtype=bool)
    wanted[[d for d, (reason, _w, _c) in enumerate(tl._details) if reason in hit]] = True
    kind_ok = np.zeros(256, dtype=bool)
    kind_ok[[KIND_CODE["wait"], KIND_CODE["block"]]] = True
    n = tl._t.n
    for lo in range(0, n, _CHUNK_EVENTS):
        hi = min(n, lo + _CHUNK_EVENTS)
        mask = wanted[tl._detail.a[lo:hi]] & kind_ok[tl._kind.a[lo:hi]]
        out[tl._lane.a[lo:hi][mask]] = True
    return out


def lane_tree_arrays(tl: Timeline) -> tuple[np.ndarray, np.ndarray]:
    """lane_tree() as two int32 arrays (lane, depth), made once per lane count."""
    def build():
        tree = tl.lane_tree()
        arr = np.array(tree, dtype=np.int32).reshape(-1, 2)
        return arr[:, 0].copy(), arr[:, 1].copy()
    return tl._cached("lane_tree_arrays", len(tl.lanes), build)
