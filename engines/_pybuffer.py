"""The hot paths of engines/_speedups*.c in pure Python: used where the extension did not build, or
when CONCURVIEW_PURE=1 asks for them (engines/speedups.py chooses).

`EventBuffer` is the C EventBuffer's counterpart, method for method: the same rows, the same string
table (ids 1, 2, ... per process, started over past the same limits), the same thread-local current
lane, the same batch and cap logic around `on_full`, and `take_frame()` writes byte for byte what
the C one writes (engines/_msgpack.py writes msgspec's bytes for it, which is what the C encoder copies;
no msgspec here: the traced child does not need it).
`EventParser` leaves every line of a trace file to msgspec, the reference the C parser is tested
against. The greenlet tracer, the asyncio step and the thread hooks have their Python references in
their engines (greenlet_engine._make_tracer, asyncio_engine.PyTracedCoro, threads' wrappers).
"""

from __future__ import annotations

import os
import sys
import time
from operator import index as _index
import weakref
from array import array


from ._msgpack import pack_into as _pack_into
from .originals import original as _original


import _thread  # noqa: E402 - after _original, which reads sys.modules

_get_ident = _original("_thread", "get_ident")
_RLock = _original("_thread", "RLock")
_local = _original("_thread", "_local")

monotonic_ns = time.monotonic_ns

# The C buffer's limits (engines/_speedups.c): past them the string table starts over.
MAX_STRINGS = 1 << 16
MAX_TABLE_CHARS = 16 << 20
NONE = -1  # a cause that is None (and the lane cap's UNTRACED lane)
_LOG, _ERROR = 4, 5  # trace/events.py EVENT_KINDS: log, error

_M64 = (1 << 64) - 1
_SIGN = 1 << 63
_TYPECODES = {}
for _code in "BHIQ":  # native-endian offsets of 1, 2, 4 and 8 bytes, as the C columns memcpy them
    _TYPECODES.setdefault(array(_code).itemsize, _code)
if sorted(_TYPECODES) != [1, 2, 4, 8]:  # pragma: no cover - no such platform among the supported ones
    _TYPECODES = {1: "B", 2: "H", 4: "L" if array("L").itemsize == 4 else "I", 8: "Q"}


def _signed(u: int) -> int:
    """A uint64 (any int, taken mod 2**64) as the int64 with the same bits."""
    u &= _M64
    return u - (1 << 64) if u & _SIGN else u


def _width(max_offset: int) -> int:
    return 0 if max_offset == 0 else 1 if max_offset <= 0xFF else 2 if max_offset <= 0xFFFF \
        else 4 if max_offset <= 0xFFFFFFFF else 8


def _plan_range(lo: int, hi: int) -> tuple[int, int]:
    """(base, width) of values lo..hi (uint64, lo <= hi): lo rounded down to a multiple of
    2**(8 * width) when the values still fit (the C plan_range)."""
    width = _width((hi - lo) & _M64)
    base = lo
    if 1 <= width <= 4:
        mask = (1 << (8 * width)) - 1
        rounded = lo & ~mask & _M64
        if (hi - rounded) & _M64 <= mask:
            base = rounded
    return _signed(base), width


def _pack(values, width: int) -> bytes:
    if width == 0:
        return b""
    mask = (1 << (8 * width)) - 1
    return array(_TYPECODES[width], [v & mask for v in values]).tobytes()


def _columns(rows: list[tuple]) -> list[tuple[int, bytes]]:
    """The seven wire columns (t, lane, kind, cause, reason, where, text) of rows, each (base,
    offsets) at the narrowest width, by the rules of trace/events.py ("wire") and the C col_plan."""
    if not rows:
        return [(0, b"")] * 7
    t, lane, kind, cause, reason, where, text = zip(*rows)
    out = []
    # t: the first time, then the steps between events (a step back wraps: width 8).
    steps = [(b - a) & _M64 for a, b in zip(t, t[1:])]
    any_bits = 0
    for s in steps:
        any_bits |= s
    w = _width(any_bits)
    out.append((_signed(t[0]), w, [0, *steps]))
    lanes = [v & _M64 for v in lane]
    lo = min(lane)  # the C buffer compares lanes as int64
    hi = max(lane)
    base, w = _plan_range(lo & _M64, hi & _M64)
    out.append((base, w, [(v - base) for v in lanes]))
    base, w = _plan_range(min(kind), max(kind))
    out.append((base, w, [v - base for v in kind]))
    # cause: offset 0 is None (-1); as uint64, None is the largest value and cause + 1 wraps to 0.
    ucause = [v & _M64 for v in cause]
    lo = min(ucause)
    hi = max((v + 1) & _M64 for v in ucause)
    if hi == 0:  # all None
        out.append((NONE, 0, ()))
    else:
        w = _width((hi - lo) & _M64)
        base = (lo - 1) & _M64
        if 1 <= w <= 4:
            mask = (1 << (8 * w)) - 1
            rounded = ((lo & ~mask) - 1) & _M64
            if (hi - 1 - rounded) & _M64 <= mask:
                base = rounded
        out.append((_signed(base), w, [0 if v == _M64 else (v - base) for v in ucause]))
    for col in (reason, where, text):
        base, w = _plan_range(min(col), max(col))
        out.append((base, w, [v - base for v in col]))
    return [(base, _pack(offsets, w)) for base, w, offsets in out]


_buffers: weakref.WeakSet = weakref.WeakSet()


def _after_fork() -> None:
    # A lock held by another thread at fork() is held forever in the child: each buffer gets a new one.
    for buf in list(_buffers):
        buf._lock = _RLock()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_after_fork)


class _Lane(_local):
    """Per OS thread (the real one, past gevent's patches): the lane an engine made current there."""

    lane = None


class EventBuffer:
    """EventBuffer(t0=0, batch=256, on_full=None, cap=sys.maxsize): a process's pending events.

    The pure-Python twin of the C type (engines/_speedups.c): same methods, same frames. Rows are
    tuples (t, lane, kind, cause, reason id, where id, text id); a lock keeps the string table and
    the rows consistent between threads, as the GIL does for the C type's calls.
    """

    __slots__ = ("_rows", "_ids", "_fresh", "_next_id", "_reset_pending", "_table_chars", "_untraced",
                 "t0", "main_lane", "_thread_lanes", "_batch", "_next_full", "_limit", "_on_full",
                 "_tls", "_lock", "__weakref__")

    def __init__(self, t0: int = 0, batch: int = 256, on_full=None, cap: int = sys.maxsize) -> None:
        self.t0 = int(t0)
        self._batch = int(batch)
        self._next_full = self._batch
        self._limit = int(cap)
        self._on_full = on_full
        self._rows: list[tuple] = []
        self._ids: dict[str, int] = {}
        self._fresh: list[str] = []
        self._next_id = 1
        self._reset_pending = False
        self._table_chars = 0
        self._untraced = False
        self.main_lane = 0
        self._thread_lanes: dict | None = None
        self._tls = _Lane()
        self._lock = _RLock()
        _buffers.add(self)

    # -- recording -------------------------------------------------------------------------

    def _intern(self, s) -> int:
        """The id of s in the table (0 for None), added when new; the caller holds the lock."""
        if s is None:
            return 0
        if type(s) is not str:
            s = str(s)  # as the JSON writer would store it
        i = self._ids.get(s)
        if i is None:
            i = self._ids[s] = self._next_id
            self._next_id += 1
            self._fresh.append(s)
            self._table_chars += len(s)
        return i

    def _push(self, t: int, lane, kind, reason, where, cause, text) -> None:
        lane = NONE if lane is None else _index(lane)
        kind = 0 if kind is None else _index(kind)
        cause = NONE if cause is None else _index(cause)
        if not 0 <= kind <= 255:
            raise ValueError("event kind out of range")
        with self._lock:
            intern = self._intern
            self._rows.append((t, lane, kind, cause, intern(reason), intern(where), intern(text)))
            if lane == NONE:
                self._untraced = True

    def _room(self) -> bool:
        """At a batch boundary: ask on_full; True means drop this event (the C cv_room)."""
        if len(self._rows) < self._next_full:
            return False
        on_full = self._on_full
        if on_full is None:
            return False
        drop = bool(on_full())
        n = len(self._rows)
        if not drop and n >= self._next_full:
            # Nothing was taken (another thread holds the write): ask again a batch later, or at the cap.
            nxt = n + self._batch
            self._next_full = nxt if nxt <= self._limit else (self._limit if self._limit > n else n + 1)
        return drop

    def record(self, lane, kind, reason=None, where=None, cause=None, text=None) -> None:
        """An event now (on_full first, at a batch boundary)."""
        if len(self._rows) >= self._next_full and self._room():
            return
        self._push(monotonic_ns() - self.t0, lane, kind, reason, where, cause, text)

    def record_at(self, t, lane, kind, reason=None, where=None, cause=None, text=None) -> None:
        """An event at trace time t."""
        if len(self._rows) >= self._next_full and self._room():
            return
        self._push(0 if t is None else _index(t), lane, kind, reason, where, cause, text)

    def append(self, ev: tuple) -> None:
        """Append one event tuple (t, lane, kind[, reason, where, cause, text])."""
        if type(ev) is not tuple or not 3 <= len(ev) <= 7:
            raise TypeError("an event is a tuple (t, lane, kind[, reason, where, cause, text])")
        t, lane, kind, reason, where, cause, text = ev + (None,) * (7 - len(ev))
        self._push(0 if t is None else _index(t), lane, kind, reason, where, cause, text)

    def extend(self, events) -> None:
        for ev in events:
            self.append(ev)

    def now(self) -> int:
        return monotonic_ns() - self.t0

    # -- the current lane of each thread ---------------------------------------------------

    def lane(self):
        """The lane an engine made current on this thread, or None."""
        return self._tls.lane

    def set_lane(self, lane) -> None:
        self._tls.lane = None if lane is None else _index(lane)

    def current_lane(self) -> int:
        """The lane set on this thread, else thread_lanes[ident], else main_lane."""
        lane = self._tls.lane
        if lane is not None:
            return lane
        lanes = self._thread_lanes
        if lanes:
            found = lanes.get(_get_ident())
            if found is not None:
                return _index(found)
        return self.main_lane

    def swap_lane(self, lane) -> int:
        prev = self.current_lane()
        self.set_lane(lane)
        return prev

    @property
    def thread_lanes(self):
        return self._thread_lanes

    @thread_lanes.setter
    def thread_lanes(self, value) -> None:
        if value is not None and not isinstance(value, dict):
            raise TypeError("thread_lanes is a dict (thread ident -> lane)")
        self._thread_lanes = value

    # -- taking ----------------------------------------------------------------------------

    def _take_rows(self, main_lane: int) -> tuple[list[tuple], list[str], bool]:
        """The pending rows (UNTRACED ones dropped or moved), the fresh strings and the reset flag;
        the buffer emptied (the C drop_untraced and taken()). The caller holds the lock."""
        rows, self._rows = self._rows, []
        if self._untraced:
            rows = [r if r[1] != NONE else (r[0], main_lane, *r[2:]) for r in rows
                    if r[1] != NONE or r[2] == _LOG or r[2] == _ERROR]
            self._untraced = False
        fresh, self._fresh = self._fresh, []
        reset = self._reset_pending
        self._next_full = self._batch
        self._reset_pending = False
        if len(self._ids) > MAX_STRINGS or self._table_chars > MAX_TABLE_CHARS:
            self._ids.clear()
            self._next_id = 1
            self._table_chars = 0
            self._reset_pending = True
        return rows, fresh, reset

    def take(self, main_lane: int = 0) -> tuple:
        """(n, t, lane, kind, cause, reason, where, text, strings, reset), each column (base, offsets)."""
        with self._lock:
            rows, fresh, reset = self._take_rows(_index(main_lane))
        return (len(rows), *_columns(rows), fresh, reset)

    def take_frame(self, out: bytearray, at: int, pid: int, lanes: list, dropped: int, main_lane: int) -> int:
        """take()'s events as one length-prefixed wire Frame written into bytearray out at offset at."""
        if type(out) is not bytearray or not isinstance(lanes, list):
            raise TypeError("take_frame(out: bytearray, at, pid, lanes: list, dropped, main_lane)")
        at = _index(at)
        if not 0 <= at <= len(out):
            raise ValueError("take_frame(): offset outside the bytearray")
        with self._lock:
            rows, fresh, reset = self._take_rows(_index(main_lane))
        frame = [pid, lanes, dropped, len(rows), *_columns(rows), fresh, reset]
        if len(out) < at + 4:
            out.extend(bytes(at + 4 - len(out)))
        del out[at + 4:]
        _pack_into(out, frame)
        end = len(out)
        out[at:at + 4] = (end - at - 4).to_bytes(4, "little")
        return end

    def clear(self) -> None:
        """Forget the pending events."""
        with self._lock:
            self._rows = []
            self._next_full = self._batch
            self._untraced = False

    def reset_strings(self) -> None:
        """Start a new string table (a forked child)."""
        with self._lock:
            self._ids.clear()
            self._fresh = []
            self._next_id = 1
            self._table_chars = 0
            self._reset_pending = False

    def table(self) -> list:
        """The table's strings in id order (ids 1, 2, ...)."""
        with self._lock:
            out: list = [None] * (self._next_id - 1)
            for s, i in self._ids.items():
                out[i - 1] = s
        return out

    @property
    def strings(self) -> int:
        return len(self._ids)

    @property
    def encoded(self) -> int:
        """Strings of the table (ids 1..encoded) already in taken frames."""
        return self._next_id - 1 - len(self._fresh)

    @property
    def reset_pending(self) -> bool:
        return self._reset_pending

    @property
    def cap(self) -> int:
        return self._limit

    @cap.setter
    def cap(self, value) -> None:
        cap = _index(value)
        self._limit = cap
        if self._next_full > cap:
            self._next_full = cap if cap > self._batch else self._batch

    def __len__(self) -> int:
        return len(self._rows)

    def __bool__(self) -> bool:
        return bool(self._rows)


class EventParser:
    """EventParser(ids, strings): the C line parser's interface, leaving every line to msgspec.

    parse(data, pos) passes blank lines and stops at the first other one (stop 2: "for msgspec"),
    which trace/tracefile.py then decodes with msgspec, its reference decoder; no rows are ever
    pending.
    """

    __slots__ = ()

    def __init__(self, ids: dict, strings: list) -> None:
        if not isinstance(ids, dict) or not isinstance(strings, list):
            raise TypeError("EventParser(ids: dict, strings: list)")

    def parse(self, data, pos: int) -> tuple[int, int, int]:
        if not isinstance(data, (bytes, bytearray)):
            data = bytes(data)
        n = len(data)
        pos = max(pos, 0)
        lines = 0
        while pos < n:
            i = pos
            while i < n and data[i] in b" \t\r":
                i += 1
            if i >= n:
                return 0, n, lines
            if data[i] != 0x0A:  # a line that is not blank: msgspec's
                return 2, pos, lines
            pos = i + 1
            lines += 1
        return 0, pos, lines

    def take(self) -> tuple:
        return (0, b"", b"", b"", b"", b"", b"", b"")

    def pending(self) -> int:
        return 0
