"""Wire frames built from event tuples, as a child's recorder sends them (on pytest's pythonpath)."""

from __future__ import annotations

import sys
from dataclasses import dataclass
from typing import NamedTuple

import msgspec

from concurview.engines.speedups import EventBuffer
from concurview.trace.columns import Stream
from concurview.trace.events import Frame


def frame_bytes(pid: int, lanes: list, events: list[tuple], dropped: int = 0) -> bytes:
    """One length-prefixed frame: `events` are (t, lane, kind[, reason, where, cause, text]) tuples."""
    buf = EventBuffer(0)
    buf.extend(events)
    data = msgspec.msgpack.encode(Frame(pid, lanes, dropped, *buf.take(0)))
    return len(data).to_bytes(4, "little") + data


def stream(*frames: bytes) -> Stream:
    """A process's connection holding these frames, as the runner reads it."""
    s = Stream()
    for data in frames:
        s.buf += data
    return s


_dec = msgspec.msgpack.Decoder(Frame)


class WireEvent(NamedTuple):
    t: int
    lane: int
    kind: int
    reason: str | None
    where: str | None
    cause: int | None
    text: str | None


@dataclass
class Decoded:
    """A frame read back by the wire format's own rules (not by the runner's code)."""

    pid: int
    lanes: list
    dropped: int
    events: list[WireEvent]


_MOD = 1 << 64


def _int64(u: int) -> int:
    u %= _MOD
    return u - _MOD if u >= 1 << 63 else u


def column(col, n: int, rule: str = "base") -> list[int | None]:
    """A Column's n values by the wire's rules (trace/events.py): offsets of len // n bytes each,
    rule "base" (base + offset), "steps" (base + the running sum) or "cause" (0 = None)."""
    base, data = col.base, col.offsets
    width = len(data) // n if n else 0
    assert width in (0, 1, 2, 4, 8) and width * n == len(data), "n offsets of one width"
    offsets = [int.from_bytes(data[i * width:(i + 1) * width], sys.byteorder) for i in range(n)]
    if rule == "steps":
        out, t = [], base
        for o in offsets:
            t += o
            out.append(_int64(t))
        return out
    if rule == "cause":
        return [None if o == 0 else _int64(base + o) for o in offsets]
    return [_int64(base + o) for o in offsets]


def raw_frames(data: bytes) -> list[bytes]:
    """The msgpack of each length-prefixed frame in `data` (which holds whole frames only)."""
    out, pos = [], 0
    while pos < len(data):
        size = int.from_bytes(data[pos:pos + 4], "little")
        out.append(data[pos + 4:pos + 4 + size])
        pos += 4 + size
    assert pos == len(data), "frames are whole"
    return out


def decode(data: bytes) -> list[Decoded]:
    """Whole frames, their columns turned back into events through the stream's string table."""
    frames, table = [], [None]
    for raw in raw_frames(data):
        f = _dec.decode(raw)
        if f.reset:
            del table[1:]
        table += f.strings
        t, lane, kind, cause = (column(f.t, f.n, "steps"), column(f.lane, f.n), column(f.kind, f.n),
                                column(f.cause, f.n, "cause"))
        reason, where, text = (column(getattr(f, name), f.n) for name in ("reason", "where", "text"))
        events = [WireEvent(*row[:3], table[row[3]], table[row[4]], row[5], table[row[6]])
                  for row in zip(t, lane, kind, reason, where, cause, text)]
        frames.append(Decoded(f.pid, f.lanes, f.dropped, events))
    return frames
