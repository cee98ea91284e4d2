"""Wire frames built from event tuples, as a child's recorder sends them (on pytest's pythonpath)."""

from __future__ import annotations

import array
from dataclasses import dataclass
from typing import NamedTuple

import msgspec

from concurview.engines._speedups import EventBuffer
from concurview.engines.columns import Stream
from concurview.engines.events import Frame


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


def decode(data: bytes) -> list[Decoded]:
    """Whole frames, their columns turned back into events through the stream's string table."""
    frames, pos, table = [], 0, [None]
    while pos < len(data):
        size = int.from_bytes(data[pos:pos + 4], "little")
        f = _dec.decode(data[pos + 4:pos + 4 + size])
        pos += 4 + size
        if f.reset:
            del table[1:]
        table += f.strings
        cols = [array.array(code, getattr(f, name)) for name, code in
                (("t", "q"), ("lane", "q"), ("kind", "B"), ("reason", "I"), ("where", "I"), ("cause", "q"), ("text", "I"))]
        assert all(len(c) == f.n for c in cols)
        events = [WireEvent(t, lane, kind, table[r], table[w], None if c < 0 else c, table[x])
                  for t, lane, kind, r, w, c, x in zip(*cols)]
        frames.append(Decoded(f.pid, f.lanes, f.dropped, events))
    assert pos == len(data), "frames are whole"
    return frames
