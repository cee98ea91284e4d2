"""The wire's narrow columns: what the child's EventBuffer encodes comes back exactly, read by the
format's own rules (tests/wire.py) and by the runner's Merger, at every width and its edges."""

from __future__ import annotations

import msgspec
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from wire import decode, raw_frames

from concurview.engines.speedups import EventBuffer
from concurview.trace.columns import KIND_NAMES, UNKNOWN_KIND, Merger, Stream
from concurview.trace.events import EVENT_KINDS, RUN, WAIT, WIRE_LANE_SHIFT, Frame, WireLane

PID = 4321
OWN = PID << WIRE_LANE_SHIFT
_dec = msgspec.msgpack.Decoder(Frame)


def frames_of(rows: list[tuple], lanes: list | None = None, per_frame: int | None = None) -> bytes:
    """rows as the child sends them: recorded into one buffer, a length-prefixed frame every per_frame rows."""
    buf, out, end = EventBuffer(0, 1 << 30), bytearray(), 0
    step = per_frame or max(len(rows), 1)
    for i in range(0, max(len(rows), 1), step):
        for row in rows[i:i + step]:
            buf.record_at(*row)
        end = buf.take_frame(out, end, PID, (lanes or []) if i == 0 else [], 0, OWN)
    return bytes(out[:end])


def widths(data: bytes) -> list[tuple[int, ...]]:
    """Bytes per offset of each column (t, lane, kind, cause, reason, where, text) of each frame."""
    out = []
    for raw in raw_frames(data):
        f = _dec.decode(raw)
        cols = (f.t, f.lane, f.kind, f.cause, f.reason, f.where, f.text)
        out.append(tuple(len(c.offsets) // f.n if f.n else 0 for c in cols))
    return out


def as_sent(row: tuple) -> tuple:
    """A recorded row as the wire gives it back: (t, lane, kind, reason, where, cause, text)."""
    t, lane, kind, reason, where, cause, text = (*row, None, None, None, None)[:7]
    return (t, lane, kind, reason, where, cause, text)


def merged(data: bytes, declared: list[int]) -> list[tuple]:
    """The frames through the runner's Stream and Merger: (t, lane, kind, reason, where, cause, text)
    with lanes and causes as wire ids again (undeclared lanes' events gone, undeclared causes None,
    kinds past the known ones UNKNOWN_KIND)."""
    stream, merger, lanes = Stream(), Merger(), []
    stream.buf += data
    for wl in declared:
        merger.declare(WireLane(wl, "task", f"lane {wl}"))
    out = []
    for group in stream.groups():
        cols = merger.merge(stream, group, 1 << 40, lanes)
        if cols is not None:
            out += [(e.t, declared[e.lane], KIND_NAMES.index(e.kind), e.reason, e.where, None if e.cause is None else declared[e.cause],
                     e.text) for e in cols.events()]
    assert not stream.buf
    return out


def test_an_empty_frame():
    data = frames_of([])
    assert widths(data) == [(0,) * 7]
    (frame,) = decode(data)
    assert frame.events == [] and frame.pid == PID
    assert merged(data, [OWN]) == []


def test_a_ping_pong_frame_is_a_few_bytes_an_event():
    """Two lanes switching: a byte for the lane, kind, cause, reason and where, two for the time step."""
    a, b = OWN | 1, OWN | 2
    rows = []
    for i in range(128):
        me, other = (a, b) if i % 2 else (b, a)
        rows += [(10**12 + 300 * i, other, WAIT, f"switch → {me}", "x.py:5"),
                 (10**12 + 300 * i, me, RUN, f"switch → {me}", "x.py:9", other)]
    data = frames_of(rows)
    assert widths(data) == [(2, 1, 1, 1, 1, 1, 0)]
    assert len(data) / len(rows) < 8
    assert [tuple(e) for e in decode(data)[0].events] == [as_sent(r) for r in rows]
    assert merged(data, [a, b]) == [as_sent(r) for r in rows]


@pytest.mark.parametrize(("span", "width"), [(0, 0), (255, 1), (256, 2), (65535, 2), (65536, 4),
                                             (2**32 - 1, 4), (2**32, 8), (2**63 - 1, 8)])
def test_time_steps_at_the_width_boundaries(span, width):
    t0 = 2**62 if span < 2**62 else 0  # huge times
    rows = [(t0, OWN, RUN), (t0 + span, OWN, WAIT), (t0 + span, OWN, RUN)]
    data = frames_of(rows)
    assert widths(data)[0][0] == width
    assert [tuple(e) for e in decode(data)[0].events] == [as_sent(r) for r in rows]
    assert merged(data, [OWN]) == [as_sent(r) for r in rows]


def test_times_that_go_back_come_back():
    rows = [(5000, OWN, RUN), (10, OWN, WAIT), (2**63 - 1, OWN, RUN), (0, OWN, WAIT)]
    data = frames_of(rows)
    assert widths(data)[0][0] == 8
    assert merged(data, [OWN]) == [as_sent(r) for r in rows]


@pytest.mark.parametrize(("lanes", "lane_width", "cause_width"), [
    ([OWN | 7], 0, 1),  # one lane: no offsets; as a cause, offset 1 (0 is None)
    ([OWN, OWN | 255], 1, 2),
    ([OWN | 1, OWN | 256], 1, 2),  # a range of 255 across a multiple of 256: from the smallest
    ([OWN, OWN | 256], 2, 2),
    ([OWN | 300, OWN | 400], 1, 1),
    ([OWN, OWN | 65535], 2, 4),
    ([OWN, OWN | 65536], 4, 4),
    ([OWN, (PID + 255) << WIRE_LANE_SHIFT], 4, 4),  # other processes' lanes
    ([OWN, (PID + 256) << WIRE_LANE_SHIFT], 8, 8),  # a range of 2**32
    ([0, (2**22 - 1) << WIRE_LANE_SHIFT | 5], 8, 8),
])
def test_lane_and_cause_ids_at_the_width_boundaries(lanes, lane_width, cause_width):
    rows = [(i, lanes[i % len(lanes)], RUN, None, None, lanes[(i + 1) % len(lanes)]) for i in range(2 * len(lanes))]
    data = frames_of(rows)
    _, lane, _, cause, *_ = widths(data)[0]
    assert (lane, cause) == (lane_width, cause_width)
    assert [tuple(e) for e in decode(data)[0].events] == [as_sent(r) for r in rows]
    assert merged(data, sorted(set(lanes))) == [as_sent(r) for r in rows]


def test_causes_none_negative_and_of_lanes_never_declared():
    """Offset 0 is None; a cause that names no declared lane (another process's, a negative number,
    one past the table) reads back as sent, and the runner makes it None."""
    other = (PID + 1) << WIRE_LANE_SHIFT | 3
    causes = [None, OWN | 1, -5, other, None, OWN | 2, OWN | 70_000, -(2**63), 2**63 - 1]
    rows = [(i, OWN | 1, RUN, None, None, c) for i, c in enumerate(causes)]
    data = frames_of(rows)
    assert [e.cause for e in decode(data)[0].events] == causes
    assert [e[5] for e in merged(data, [OWN | 1, OWN | 2, other])] == [
        None, OWN | 1, None, other, None, OWN | 2, None, None, None]
    # Only None, and only one lane: no offsets at all, and a byte of them.
    assert widths(frames_of([(0, OWN, RUN), (1, OWN, WAIT)]))[0][3] == 0
    assert widths(frames_of([(0, OWN, RUN, None, None, OWN), (1, OWN, WAIT)]))[0][3] == 1
    none_last = [(0, OWN, RUN, None, None, OWN | 254), (1, OWN, RUN, None, None, OWN)]
    assert widths(frames_of(none_last))[0][3] == 1
    assert merged(frames_of(none_last), [OWN] + [OWN | i for i in range(1, 255)]) == [as_sent(r) for r in none_last]


def test_every_kind_value_and_kinds_from_the_future():
    last = len(EVENT_KINDS) - 1  # the newest kind this reader knows; the one after it is from the future
    rows = [(i, OWN, k) for i, k in enumerate([0, last, 255, last + 1, 1])]
    data = frames_of(rows)
    assert [e.kind for e in decode(data)[0].events] == [0, last, 255, last + 1, 1]
    assert [e[2] for e in merged(data, [OWN])] == [0, last, UNKNOWN_KIND, UNKNOWN_KIND, 1]


def test_many_strings_wider_ids_and_the_table_starting_over():
    """Ids past two bytes in one frame, then past the table's limit (65536 strings) a reset: every
    string reads back, through the wire's rules and the Merger."""
    n = 70_000
    rows = [(i, OWN, RUN, "r", f"w{i % 300}", None, f"line {i}") for i in range(n)]
    data = frames_of(rows, per_frame=66_000)
    assert [w[4:] for w in widths(data)] == [(0, 2, 4), (0, 2, 2)]  # reason, where, text
    assert [_dec.decode(raw).reset for raw in raw_frames(data)] == [False, True]
    want = [as_sent(r) for r in rows]
    assert [tuple(e) for f in decode(data) for e in f.events] == want
    assert merged(data, [OWN]) == want


def test_strings_recorded_again_and_again_past_the_memo_keep_their_ids():
    """More live strings than the buffer remembers by address (1024), each recorded round after
    round, as 3000 greenlets' `switch → name` would be: every event reads back its own string,
    and each string is sent once (the table, not the memo, says what was sent)."""
    names = [f"switch → g-{i}" for i in range(3000)]
    rows = [(r * 3000 + i, OWN, WAIT, names[i], names[(i * 7) % 3000]) for r in range(3) for i in range(3000)]
    data = frames_of(rows, per_frame=2500)
    assert [tuple(e) for f in decode(data) for e in f.events] == [as_sent(r) for r in rows]
    sent = [s for raw in raw_frames(data) for s in _dec.decode(raw).strings]
    assert sorted(sent) == sorted(names)


_own = st.integers(0, 300).map(lambda n: OWN | n)
_lane = _own | st.sampled_from([(PID + 1) << WIRE_LANE_SHIFT | 2, 0, (2**22 - 1) << WIRE_LANE_SHIFT | 5])
_text = st.none() | st.sampled_from(["a", "b", "c", "a longer string"]) | st.text(max_size=8)
_row = st.tuples(st.integers(0, 2**63 - 1) | st.integers(10**9, 10**9 + 10**6), _lane, st.integers(0, 10),
                 _text, _text, st.none() | _lane | st.integers(-(2**63), 2**63 - 1).filter(lambda c: c != -1), _text)


@settings(max_examples=80, deadline=None)
@given(rows=st.lists(_row, max_size=120), per_frame=st.integers(1, 60))
def test_any_events_in_frames_of_any_widths_come_back_exactly(rows, per_frame):
    """Many frames decoded at once, each with its own widths and bases: the events sent, in order."""
    declared = sorted({r[1] for r in rows} | {OWN | 1})
    data = frames_of(rows, per_frame=per_frame)
    want = [as_sent(r) for r in rows]
    assert [tuple(e) for f in decode(data) for e in f.events] == want
    known = set(declared)
    assert merged(data, declared) == [
        (t, lane, min(kind, UNKNOWN_KIND), reason, where, cause if cause in known else None, text)
        for t, lane, kind, reason, where, cause, text in want]
