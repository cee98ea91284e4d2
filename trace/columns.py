"""Events in columns: one numpy array per field, strings by index into a shared table (parent side only).

The runner merges the children's frames into `Columns` (`Stream`, `Merger`),
the trace loader reads files into them, and the timeline store ingests them,
without making a Python object per event. The child never imports this module
(numpy stays out of the traced program).
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass

import msgspec
import numpy as np

from .events import EVENT_KINDS, WIRE_LANE_SHIFT, Column, Event, Frame, Lane, WireLane

UNKNOWN_KIND = len(EVENT_KINDS)  # a kind from a newer writer: kept, drawn as nothing
KIND_NAMES = (*EVENT_KINDS, "unknown")  # by code


class _KindCodes(dict):
    def __missing__(self, kind: str) -> int:
        return UNKNOWN_KIND


_KIND_CODE = _KindCodes((k, i) for i, k in enumerate(EVENT_KINDS))


# What a string costs in a table beyond its characters (str object, dict entry, list slot; measured ~100 bytes).
STRING_OVERHEAD = 100
# A run's table past this many bytes (estimated: characters + STRING_OVERHEAD each) keeps no new string:
# each becomes PLACEHOLDER, counted (footer.strings_dropped). 2M distinct short lines took 359 MB before.
STRING_BUDGET = 128 << 20
PLACEHOLDER = "[not kept: the run's strings passed concurview's memory budget]"


class StringTable:
    """Every distinct string of a run or a file, once: index 0 is None, the rest only ever grows.

    One table is shared by all the batches of one source, so an index means the
    same string in every batch (the store maps a source's indexes to its own once).
    With a `budget` (bytes, estimated), strings past it are not kept: they become
    PLACEHOLDER, and `over` counts them.
    """

    __slots__ = ("strings", "_ids", "budget", "size", "over")

    def __init__(self, budget: int | None = None) -> None:
        self.strings: list[str | None] = [None]
        self._ids: dict[str | None, int] = {None: 0}
        self.budget = budget
        self.size = 0  # estimated bytes of the strings kept
        self.over = 0  # strings not kept (budget)

    def __len__(self) -> int:
        return len(self.strings)

    def __getitem__(self, i: int) -> str | None:
        return self.strings[i]

    def intern(self, s: str | None) -> int:
        i = self._ids.get(s)
        if i is None:
            if self.budget is not None:
                cost = len(s) + STRING_OVERHEAD  # type: ignore[arg-type]
                if self.size + cost > self.budget and s != PLACEHOLDER:
                    self.over += 1
                    return self.intern(PLACEHOLDER)
                self.size += cost
            i = self._ids[s] = len(self.strings)  # type: ignore[index]
            self.strings.append(s)
        return i

    def intern_many(self, values: list[str | None]) -> np.ndarray:
        """Indexes of many strings at once: one C-level pass of lookups, Python only for new strings."""
        out = np.fromiter(map(self._ids.get, values, itertools.repeat(-1)), np.int32, len(values))
        fresh = np.flatnonzero(out < 0)
        if len(fresh):
            intern = self.intern
            out[fresh] = [intern(values[j]) for j in fresh.tolist()]
        return out


@dataclass(slots=True)
class Columns:
    """A run of consecutive events of one trace, field by field (seq is implicit: their order).

    - t: int64 ns since trace start
    - lane: int32 dense lane id (declared in this batch or an earlier one)
    - kind: uint8 code into EVENT_KINDS; UNKNOWN_KIND for a kind this reader does not know
    - reason, where, text: int32 indexes into `strings` (0 = None)
    - cause: int32 dense lane id, -1 = None
    """

    t: np.ndarray
    lane: np.ndarray
    kind: np.ndarray
    reason: np.ndarray
    where: np.ndarray
    text: np.ndarray
    cause: np.ndarray
    strings: StringTable

    def __len__(self) -> int:
        return len(self.t)

    @classmethod
    def empty(cls, strings: StringTable) -> Columns:
        i32 = np.empty(0, dtype=np.int32)
        return cls(np.empty(0, dtype=np.int64), i32, np.empty(0, dtype=np.uint8), i32, i32, i32, i32, strings)

    def take(self, keep: slice | np.ndarray) -> Columns:
        """The events selected by a slice or a boolean/index array."""
        return Columns(self.t[keep], self.lane[keep], self.kind[keep], self.reason[keep], self.where[keep],
                       self.text[keep], self.cause[keep], self.strings)

    def events(self, seq0: int = 0) -> list[Event]:
        """The same events as Event records (for writers and tests: one object per event is slow)."""
        s = self.strings.strings
        names = KIND_NAMES
        return [
            Event(seq0 + i, t, lane, names[kind], s[reason], s[where], None if cause < 0 else cause, s[text])
            for i, (t, lane, kind, reason, where, text, cause) in enumerate(zip(
                self.t.tolist(), self.lane.tolist(), self.kind.tolist(), self.reason.tolist(),
                self.where.tolist(), self.text.tolist(), self.cause.tolist()))
        ]

    @classmethod
    def from_events(cls, events: list[Event], strings: StringTable) -> Columns:
        """Event records into columns (a file's batches, the runner's output lines, tests).

        One list comprehension per field is the fastest way out of a million structs
        (measured: ~20 ns an event each; zip(*...) transposes cost far more).
        """
        if not events:
            return cls.empty(strings)
        intern = strings.intern_many
        return cls(
            np.array([e.t for e in events], np.int64),
            np.array([e.lane for e in events], np.int32),
            np.array(list(map(_KIND_CODE.__getitem__, [e.kind for e in events])), np.uint8),
            intern([e.reason for e in events]),
            intern([e.where for e in events]),
            intern([e.text for e in events]),
            np.array([-1 if e.cause is None else e.cause for e in events], np.int32),
            strings,
        )

    @staticmethod
    def concat(parts: list[Columns]) -> Columns:
        """Consecutive batches of one source as one."""
        if len(parts) == 1:
            return parts[0]
        return Columns(*(np.concatenate([getattr(p, f) for p in parts])
                         for f in ("t", "lane", "kind", "reason", "where", "text", "cause")),
                       parts[0].strings)


# -- the runner's side of the wire -----------------------------------------------------------

_frame_dec = msgspec.msgpack.Decoder(Frame)
# Bounds on what a process may send (its bytes are untrusted: a program can write into its channel).
# A frame: at most 256 events as the child cuts them (more after a blocked write: up to its cap of
# pending events), of lines cut at 64 KiB and errors at 256 KiB (engines/recorder.py).
MAX_FRAME = 256 << 20
MAX_FRAME_EVENTS = 1 << 21
MAX_LANES_AHEAD = 1 << 16  # a lane's number past the process's lanes declared so far (out of order: a reconnect)
LANE_NAME_LIMIT = 1024


class DamagedFrame(ValueError):
    """A process sent bytes that are not a frame concurview wrote (the program wrote into its channel)."""
_LOCAL_MASK = (1 << WIRE_LANE_SHIFT) - 1
_NO_LANES = np.empty(0, dtype=np.int32)
# Stream.groups() cuts a group past this many events: what numpy makes of one group fits the
# caches (a 1 MiB read holds ~150k narrow events; decoded at once, they took twice as long).
_GROUP_EVENTS = 32768
_OFFSET_TYPES = {1: np.uint8, 2: np.uint16, 4: np.uint32, 8: np.int64}  # an offset's width -> how numpy reads it


def _offsets(cols: list[Column], ns: list[int], counts: np.ndarray | None, total: int) -> np.ndarray:
    """One column's offsets in consecutive frames (each with events), one after another, as
    unsigned integers of the widest width among them (int64 for 8 bytes).

    Nearly always the frames' offsets share a width: joined, they are one numpy view. Otherwise
    each run of frames of one width is read at once into its place.
    """
    sizes = [len(col.offsets) for col in cols]
    width = sizes[0] // ns[0]
    if counts is None or sizes == [width * n for n in ns]:
        if width * ns[0] == sizes[0] and (width == 0 or width in _OFFSET_TYPES):
            if width == 0:
                return np.zeros(total, dtype=np.uint8)
            data = cols[0].offsets if len(cols) == 1 else b"".join([col.offsets for col in cols])
            return np.frombuffer(data, _OFFSET_TYPES[width])
        if counts is None:
            raise ValueError(f"a frame's column holds {sizes[0]} bytes for {ns[0]} events")
    nbytes = np.array(sizes, dtype=np.int64)
    widths = nbytes // counts
    if (widths * counts != nbytes).any() or not np.isin(widths, (0, *_OFFSET_TYPES)).all():
        raise ValueError("a frame's column holds a number of bytes that is not n offsets of 1, 2, 4 or 8 bytes")
    out = np.zeros(total, dtype=_OFFSET_TYPES[int(widths.max())])
    cuts = (np.flatnonzero(np.diff(widths)) + 1).tolist()
    at = [0, *np.cumsum(counts).tolist()]
    by_frame = widths.tolist()
    for i, j in zip([0, *cuts], [*cuts, len(cols)]):
        if by_frame[i]:
            out[at[i]:at[j]] = np.frombuffer(b"".join([col.offsets for col in cols[i:j]]), _OFFSET_TYPES[by_frame[i]])
    return out


def _per_event(bases: list[int], counts: np.ndarray | None) -> np.ndarray | int:
    """The frames' bases, one per event; one number when every frame has the same."""
    if counts is None or bases.count(bases[0]) == len(bases):
        return bases[0]
    return np.repeat(np.array(bases, dtype=np.int64), counts)


def _running(steps: np.ndarray, bases: list[int], counts: np.ndarray | None) -> np.ndarray:
    """Times from their steps: in each frame, its base plus the running sum of its steps (mod 2**64)."""
    t = np.cumsum(steps, dtype=np.int64)
    if counts is None:
        t += np.int64(bases[0])
        return t
    # One running sum for all the frames, less what the frames before each one added.
    first = np.array(bases, dtype=np.int64)
    first[1:] -= t[np.cumsum(counts[:-1]) - 1]
    t += np.repeat(first, counts)
    return t


class Stream:
    """One process's connection: bytes not yet framed, and its string table as ids of the run's.

    `pid`: the peer's (SO_PEERCRED) or the first frame's; `damage` says why the stream's bytes
    stopped making sense (the frames before it are taken, nothing after)."""

    __slots__ = ("buf", "strings", "pid", "frame_pid", "damage", "cmdline")

    def __init__(self, pid: int | None = None) -> None:
        self.buf = bytearray()
        self.strings = np.zeros(1, dtype=np.int32)  # the process's string id -> the run's (0 = None)
        self.pid = pid
        self.frame_pid: int | None = None
        self.damage: str | None = None
        self.cmdline: bytes | None = None

    def groups(self) -> list[list[Frame]]:
        """The whole frames in the buffer (taken off it), cut where the process's string table starts
        over and past _GROUP_EVENTS events. A damaged frame sets `damage` and ends the taking."""
        buf = self.buf
        frames: list[Frame] = []
        pos, n = 0, len(buf)
        view = memoryview(buf)
        try:
            while n - pos >= 4 and self.damage is None:
                size = int.from_bytes(view[pos:pos + 4], "little")
                if size > MAX_FRAME:
                    self.damage = f"a frame of {size} bytes (at most {MAX_FRAME})"
                    break
                if n - pos - 4 < size:
                    break
                try:
                    frame = _frame_dec.decode(view[pos + 4:pos + 4 + size])
                except msgspec.DecodeError as e:
                    self.damage = _one_line(e)
                    break
                self.damage = self._check(frame)
                if self.damage is None:
                    frames.append(frame)
                pos += 4 + size
        finally:
            view.release()
        if self.damage is not None:
            pos = n  # nothing more of this stream is read
        del buf[:pos]
        groups: list[list[Frame]] = []
        size = 0
        for frame in frames:
            if frame.reset or not groups or size + frame.n > _GROUP_EVENTS:
                groups.append([frame])
                size = frame.n
            else:
                groups[-1].append(frame)
                size += frame.n
        return groups

    def _check(self, frame: Frame) -> str | None:
        """What is wrong with a frame that decoded (its types are right), or None."""
        if self.frame_pid is None:
            if not 0 < frame.pid < 1 << 31:
                return f"pid {frame.pid} out of range"
            self.frame_pid = frame.pid
        elif frame.pid != self.frame_pid:
            return f"a frame of pid {frame.pid} in the stream of pid {self.frame_pid}"
        if not 0 <= frame.n <= MAX_FRAME_EVENTS:
            return f"{frame.n} events in one frame"
        if frame.dropped < 0:
            return f"{frame.dropped} events dropped"
        for wl in frame.lanes:
            if wl.id >> WIRE_LANE_SHIFT != frame.pid:
                return f"lane {wl.id} is not one of pid {frame.pid}'s"
        return None

    @property
    def who(self) -> str:
        pid = self.pid if self.pid is not None else self.frame_pid
        return f"pid {pid}" if pid is not None else "an unknown process"


def _one_line(e: BaseException) -> str:
    text = str(e).strip().splitlines()
    return (text[0] if text else type(e).__name__)[:200]


class Merger:
    """The frames of every process of a run as Columns of one trace: lanes renumbered densely in
    the order they are declared, strings re-indexed into the run's table. numpy does the work
    per event, for many frames at once."""

    def __init__(self, budget: int | None = None) -> None:
        self.strings = StringTable(budget)
        self.lane_ids: dict[int, int] = {}  # wire lane id -> dense
        # pid -> its lanes' dense ids at 1 + local number; -1 at 0 (None) and for lanes not declared
        self._dense: dict[int, np.ndarray] = {}

    def declare(self, wl: WireLane) -> Lane:
        """A new lane of the run, under its dense id."""
        ids = self.lane_ids
        if wl.id in ids:
            raise DamagedFrame(f"lane {wl.id} declared twice")
        pid, local = wl.id >> WIRE_LANE_SHIFT, wl.id & _LOCAL_MASK
        table = self._dense.get(pid, _NO_LANES)
        if local >= len(table) + MAX_LANES_AHEAD:
            raise DamagedFrame(f"lane {wl.id}: number {local} far past the process's {len(table)} lanes")
        dense = ids[wl.id] = len(ids)
        parent = ids.get(wl.parent) if wl.parent is not None else None
        name = wl.name if len(wl.name) <= LANE_NAME_LIMIT else wl.name[:LANE_NAME_LIMIT] + "…"
        if local + 1 >= len(table):
            grown = np.full(max(local + 2, 2 * len(table), 16), -1, dtype=np.int32)
            grown[:len(table)] = table
            table = self._dense[pid] = grown
        table[local + 1] = dense
        return Lane(dense, wl.kind[:LANE_NAME_LIMIT], name, parent, wl.pid, wl.tid)

    def merge(self, stream: Stream, frames: list[Frame], room: int, lanes: list[Lane]) -> Columns | None:
        """Consecutive frames of one process (only the first may reset its strings): their new lanes
        go to `lanes`, their first `room` events come back (None if no event is kept)."""
        if frames[0].reset:
            stream.strings = stream.strings[:1]
        for frame in frames:
            lanes.extend(map(self.declare, frame.lanes))
        fresh = [s for frame in frames for s in frame.strings]
        if fresh:
            stream.strings = np.concatenate([stream.strings, self.strings.intern_many(fresh)])
        # The frames with events, only as many as hold the first `room`.
        full, kept = [], 0
        for frame in frames:
            if kept >= room:
                break
            if frame.n:
                full.append(frame)
                kept += frame.n
        if not full:
            return None
        cols = self._decode(stream.strings, full)
        if kept > room:
            cols = cols.take(slice(0, room))
        known = cols.lane >= 0
        if not known.all():
            cols = cols.take(known)  # a lane we never heard of has nothing to draw it on
        return cols if len(cols) else None

    def _decode(self, table: np.ndarray, frames: list[Frame]) -> Columns:
        """Frames with events as Columns (`table`: the process's string ids as the run's).

        Where every frame has the same base (the child rounds them down: 0 for ids and kinds,
        pid << 24 for lanes), a column is one gather or one pass over its narrow offsets.
        """
        ns = [frame.n for frame in frames]
        total = sum(ns)
        counts = np.array(ns, dtype=np.int64) if len(frames) > 1 else None

        def column(name: str) -> tuple[np.ndarray, list[int]]:
            cols = [getattr(frame, name) for frame in frames]
            return _offsets(cols, ns, counts, total), [col.base for col in cols]

        t = _running(*column("t"), counts)
        if len(t) and t.min() < 0:
            np.maximum(t, 0, out=t)  # a time before the trace started (damage, or a stamp from elsewhere)
        lane = self._dense_ids(*column("lane"), counts, False)
        cause = self._dense_ids(*column("cause"), counts, True)
        off, bases = column("kind")
        base = _per_event(bases, counts)
        if isinstance(base, int) and base == 0 and off.dtype == np.uint8:
            kind = np.minimum(off, UNKNOWN_KIND)
        else:
            # A kind from the future (or out of a byte's range): kept as unknown.
            kind = np.minimum(np.add(off, base, dtype=np.int64).view(np.uint64), UNKNOWN_KIND).astype(np.uint8)
        strings = []
        for name in ("reason", "where", "text"):
            off, bases = column(name)
            base = _per_event(bases, counts)
            if isinstance(base, int) and 0 <= base <= len(table):
                strings.append(table[base:][off])  # (numpy refuses an id past the table: IndexError)
            else:
                ids = np.add(off, base, dtype=np.intp)
                if len(ids) and (ids.min() < 0 or ids.max() >= len(table)):
                    raise DamagedFrame(f"a {name} string id outside the process's table")
                strings.append(table[ids])
        return Columns(t, lane, kind, *strings, cause, self.strings)

    def _dense_ids(self, off: np.ndarray, bases: list[int], counts: np.ndarray | None, none_at_0: bool) -> np.ndarray:
        """Dense ids of a lane or cause column (none_at_0: a cause's, where offset 0 is None)."""
        low, high = min(bases), max(bases)
        pid = (low + none_at_0) >> WIRE_LANE_SHIFT
        table = self._dense.get(pid)
        if (table is not None and pid >= 0 and (high + none_at_0) >> WIRE_LANE_SHIFT == pid
                and off.dtype != np.int64):  # (offsets of 8 bytes are read signed)
            # The lanes of one process (nearly always): a gather from its table, where value
            # `low` is at `start`.
            start = low - (pid << WIRE_LANE_SHIFT) + 1
            index = off if low == high else np.add(off, _per_event([b - low for b in bases], counts), dtype=np.intp)
            top = start + int(index.max())
            if top < len(table) and top <= 1 << WIRE_LANE_SHIFT:  # and declared
                ids = table[start:][index]
                if none_at_0 and (start or low != high):
                    ids[off == 0] = -1
                return ids
        values = np.add(off, _per_event(bases, counts), dtype=np.int64)
        if none_at_0:
            values[off == 0] = -1
        return self.dense_ids(values)

    def dense_ids(self, wire: np.ndarray) -> np.ndarray:
        """The dense ids of wire lane ids; -1 for None (-1 on the wire) and lanes never declared."""
        out = np.full(len(wire), -1, dtype=np.int32)
        pid = wire >> WIRE_LANE_SHIFT  # None stays negative
        named = pid[pid >= 0]
        if not len(named):
            return out
        local = wire & _LOCAL_MASK
        top = int(named.max())
        # Nearly always the events of one process naming its own lanes: one gather.
        for p in [top] if int(named.min()) == top else np.unique(named).tolist():
            table = self._dense.get(p, _NO_LANES)
            sel = (pid == p) & (local < len(table) - 1)
            out[sel] = table[local[sel] + 1]
        return out
