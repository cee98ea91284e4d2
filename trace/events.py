"""The event contract: kinds and wire constants here (no msgspec: the traced child needs only these); lanes,
events, trace header/footer and wire frames as msgspec Structs, made on first use (trace/_structs.py)."""

from __future__ import annotations

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


SOURCE_TEXT_MAX = 1 << 20  # bytes of a program's source a trace stores (above that: none, and it says so)

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
# (trace/columns.py, Merger). A greenlet ping-pong sends 7.3 bytes an event,
# 14.6 a switch (37 and 74 when every column went at full width: int64 times,
# lanes and causes, uint32 ids).
#
# A frame carries the strings new to the process's table; `reset` says the
# table starts over with this frame. Lane ids on the wire are (pid << 24 | n):
# unique across every process of a run without coordination; the runner
# renumbers them densely.

WIRE_LANE_SHIFT = 24


# The msgspec side of the contract (readers, writers, the runner): made when first asked for, so that
# `from concurview.trace.events import RUN` costs the traced child nothing (msgspec's import is ~25 ms
# of its start, and another interpreter traced with `run --python` may not have msgspec at all).
_STRUCTS = ("Time", "LaneId", "Count", "Lane", "Event", "Header", "Footer", "WireLane", "Column", "Frame", "_EMPTY")


def __getattr__(name: str):
    if name in _STRUCTS:
        from . import _structs

        for n in _STRUCTS:
            globals()[n] = getattr(_structs, n)
        return globals()[name]
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
