"""The contract's msgspec Structs (lanes, events, trace header/footer, wire frames): trace/events.py gives them."""

from __future__ import annotations

from typing import Annotated

import msgspec

from .events import FORMAT_NAME, FORMAT_VERSION

# Bounds a reader enforces: out-of-range numbers are a damaged file, not a crash.
Time = Annotated[int, msgspec.Meta(ge=0, le=2**63 - 1)]
LaneId = Annotated[int, msgspec.Meta(ge=0, lt=2**31)]
Count = Annotated[int, msgspec.Meta(ge=0, le=2**63 - 1)]


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


# Wire (trace/events.py says how frames are laid out).
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
