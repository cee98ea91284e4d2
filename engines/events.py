"""The event contract: lanes, events, trace header/footer and wire frames as msgspec Structs."""

from __future__ import annotations

from typing import Annotated

import msgspec

# Bounds a reader enforces: out-of-range numbers are a damaged file, not a crash.
Time = Annotated[int, msgspec.Meta(ge=0, le=2**63 - 1)]
LaneId = Annotated[int, msgspec.Meta(ge=0, lt=2**31)]
Count = Annotated[int, msgspec.Meta(ge=0, le=2**63 - 1)]

FORMAT_NAME = "concurview-trace"
FORMAT_VERSION = 1

# Lane kinds (design.md, "Event model").
LANE_KINDS = (
    "main", "thread", "process", "greenlet", "hub", "task",
    "generator", "timer", "loop", "kernel", "peer",
)

# Event kinds in a fixed order: the wire and the store carry the index.
# New kinds go at the end: an older reader takes a code past its own list for a kind it ignores.
# `block`: a cooperative lane (task, greenlet, generator) waits in a call that blocks its whole OS
# thread (time.sleep, a blocking recv, a contended lock) instead of handing the thread to its loop
# or hub; its siblings cannot run until it returns (a `run` of the same lane ends it).
# `sample`: a sampled fact about a thread lane's OS thread (the GIL view, engines/gilview.py); the
# hooks' events stay the backbone, see SAMPLE_REASONS.
EVENT_KINDS = ("open", "run", "wait", "ready", "log", "error", "close", "phase", "mark", "block", "sample")
KIND_CODE = {k: i for i, k in enumerate(EVENT_KINDS)}
OPEN, RUN, WAIT, READY, LOG, ERROR, CLOSE, PHASE, MARK, BLOCK, SAMPLE = range(len(EVENT_KINDS))

# What a `sample` event's reason starts with, and what it says about a lane the hooks show running.
# A kernel block's reason goes on: "blocked in the kernel: read(fd 0)".
SAMPLE_HOLDS = "holds the GIL"  # running Python code
SAMPLE_GIL_WAIT = "waiting for the GIL"  # runnable, another thread holds it
SAMPLE_NO_GIL = "running without the GIL"  # on a CPU in C code that released it
SAMPLE_ON_CPU = "on a CPU"  # no GIL to tell (free-threaded build, unknown layout)
SAMPLE_KERNEL = "blocked in the kernel"  # in a system call no hook recorded
SAMPLE_REASONS = (SAMPLE_HOLDS, SAMPLE_GIL_WAIT, SAMPLE_NO_GIL, SAMPLE_ON_CPU, SAMPLE_KERNEL)
# The trace's mark (on the main lane) that says what the GIL view could see in this run.
GIL_VIEW_MARKS = ("GIL view:", "free-threaded:")

# Lanes that take turns inside one OS thread: their scheduling domain is that
# thread. Every other lane competes with the other threads of its process.
COOPERATIVE_KINDS = frozenset({"greenlet", "hub", "task", "generator", "loop"})


# Scalars and strings only: gc=False keeps a million of them out of the cycle collector.
class Lane(msgspec.Struct, frozen=True, omit_defaults=True, gc=False, tag_field="type", tag="lane"):
    """One row of the diagram: a thread, process, greenlet, task, ..."""

    id: LaneId
    kind: str
    name: str
    parent: LaneId | None = None
    pid: int | None = None
    tid: int | None = None


class Event(msgspec.Struct, frozen=True, omit_defaults=True, gc=False):
    """Something that happened to a lane at `t` (ns since trace start, monotonic clock)."""

    seq: Count
    t: Time
    lane: LaneId
    kind: str
    reason: str | None = None
    where: str | None = None
    cause: LaneId | None = None
    text: str | None = None


class Header(msgspec.Struct):
    """First line of a trace file: what was run, where and when (every field written)."""

    format: str = FORMAT_NAME
    version: int = FORMAT_VERSION
    scenario: str | None = None
    program: str | None = None
    params: dict[str, object] = {}
    python: str | None = None
    platform: str | None = None
    start_time: str | None = None  # ISO 8601 wall clock, for people; `t` is monotonic
    source: str | None = None  # path of the program file when recorded (for people: never read back)
    # The program's own text, stored at record time so a trace shows its source anywhere (the app never
    # opens a path a trace names). None: a scenario's trace (its file is concurview's own), an older trace,
    # or a program it was not stored for: `source_missing` says why (over SOURCE_TEXT_MAX, unreadable).
    source_text: str | None = None
    source_missing: str | None = None


SOURCE_TEXT_MAX = 1 << 20  # bytes of a program's source a trace stores (above that: none, and it says so)


class Footer(msgspec.Struct, omit_defaults=True, tag_field="type", tag="footer"):
    """Last line of a trace file: how the run ended. Missing footer = incomplete trace."""

    complete: bool = True
    exit_code: int | None = None
    # Why the run did not end cleanly: "timeout after 5.0 s", "interrupted", "killed by SIGSEGV" (incomplete);
    # "uncaught ValueError", "exit code 7" (complete: the program ended by itself, failing).
    reason: str | None = None
    events: int = 0
    lanes: int = 0
    dropped: int = 0  # events lost: recorders' backpressure drops plus the retention cap's
    duration: int = 0  # ns
    # The parent's retention cap, written only when it dropped events (readers ignore unknown fields).
    max_events: int | None = None
    # Strings (log lines, reasons) not kept once the run's string table passed its memory budget: their
    # events carry a placeholder text instead. Written only when not 0.
    strings_dropped: int = 0


# --- wire ---------------------------------------------------------------------
# Child -> parent: a 4-byte little-endian length, then one msgpack Frame. Lanes
# travel as arrays (field order below); the frame's n events travel in columns,
# each a Column: [base, offsets], offsets a bin of n unsigned native-endian
# integers all of one width, len(offsets) // n bytes: 0 (an empty bin: every
# offset is 0), 1, 2, 4 or 8, the narrowest that holds this frame's offsets
# (frame of reference). Arithmetic is mod 2**64 (int64), so any values make the
# trip; what a column's offsets mean:
#
#   t       ns since trace start: t[i] = base + offset[0] + ... + offset[i]
#           (the child sends base = t[0], offset[0] = 0, then the steps between
#           events; a step back in time wraps, and makes the frame's width 8)
#   lane    base + offset: a wire lane id, (pid << 24 | n)
#   kind    base + offset: an index into EVENT_KINDS (newer writers may send more)
#   cause   offset 0 is None, else base + offset: a wire lane id (of any process)
#   reason, where, text
#           base + offset: an id into the process's own string table (0 = None)
#
# Any base that makes the offsets fit decodes; the child's is the column's smallest
# value (a cause's: its smallest but None, less one), rounded down to a multiple
# of 2**(8 * width) (a cause's: to one less than one) when the offsets still fit
# that width: 0 for string ids and kinds, pid << 24 for lane ids, (pid << 24) - 1
# for causes, so the frames of a process
# share their bases and the runner gathers from the narrow offsets directly
# (engines/columns.py, Merger). A greenlet ping-pong sends 7.3 bytes an event,
# 14.6 a switch (37 and 74 when every column went at full width: int64 times,
# lanes and causes, uint32 ids).
#
# A frame carries the strings new to the process's table; `reset` says the
# table starts over with this frame. Lane ids on the wire are (pid << 24 | n):
# unique across every process of a run without coordination; the runner
# renumbers them densely.

WIRE_LANE_SHIFT = 24


class WireLane(msgspec.Struct, array_like=True, frozen=True, gc=False):
    id: int
    kind: str
    name: str
    parent: int | None = None
    pid: int | None = None
    tid: int | None = None


class Column(msgspec.Struct, array_like=True, frozen=True, gc=False):
    """One field of a frame's events: a base and an offset per event (see the wire, above)."""

    base: Annotated[int, msgspec.Meta(ge=-2**63, le=2**63 - 1)] = 0
    offsets: bytes = b""


_EMPTY = Column()


class Frame(msgspec.Struct, array_like=True, gc=False):
    """One batch from one process: its new lanes, its events in columns, its drop counter.

    The columns are Columns when decoded; EventBuffer.take() gives them as (base, offsets)
    tuples, which msgspec writes the same way.
    """

    pid: int
    lanes: list[WireLane] = []
    dropped: int = 0
    n: int = 0  # events
    t: Column = _EMPTY
    lane: Column = _EMPTY
    kind: Column = _EMPTY
    cause: Column = _EMPTY
    reason: Column = _EMPTY
    where: Column = _EMPTY
    text: Column = _EMPTY
    strings: list[str] = []
    reset: bool = False
