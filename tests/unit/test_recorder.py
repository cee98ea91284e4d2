"""The child-side recorder over a real pipe: batching, the time-based flush, drops under a blocked write, log lines per lane."""

from __future__ import annotations

import io
import os
import threading
import time

import msgspec
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
import wire
from wire import decode, raw_frames

from concurview.engines.speedups import EventBuffer
from concurview.trace.events import LOG, RUN, WAIT, WIRE_LANE_SHIFT, Frame
from concurview.engines.recorder import BATCH_EVENTS, WRITE_BYTES, Recorder, lane_stream

_dec = msgspec.msgpack.Decoder(Frame)


def read_frames(fd: int) -> list[Decoded]:
    """Everything written so far (the write end must be closed or idle)."""
    os.set_blocking(fd, False)
    data = b""
    while True:
        try:
            chunk = os.read(fd, 1 << 20)
        except BlockingIOError:
            break
        if not chunk:
            break
        data += chunk
    return decode(data)


@pytest.fixture
def pipe():
    r, w = os.pipe()
    yield r, w
    for fd in (r, w):
        try:
            os.close(fd)
        except OSError:
            pass


def test_lanes_are_unique_per_process_and_declared_before_their_events(pipe):
    r, w = pipe
    rec = Recorder(w, time.monotonic_ns())
    a = rec.new_lane("main", "MainThread", tid=1)
    b = rec.new_lane("task", "t", parent=a)
    assert a >> WIRE_LANE_SHIFT == os.getpid() and b == a + 1
    rec.record(b, RUN, "go", "x.py:1", a)
    rec.flush()
    (frame,) = read_frames(r)
    assert [lane.name for lane in frame.lanes] == ["MainThread", "t"]
    assert [(e.lane, e.kind) for e in frame.events][-1] == (b, RUN)
    assert frame.events[-1].cause == a and frame.events[-1].reason == "go"


def test_full_batches_are_written_without_being_asked(pipe):
    r, w = pipe
    rec = Recorder(w, time.monotonic_ns())
    lane = rec.new_lane("main", "m")
    # Full batches are written together once WRITE_BYTES are encoded (an event here is a few bytes
    # on the wire): recorded until the first write, less than a pipe holds (64 KiB), so nothing blocks.
    for i in range(WRITE_BYTES):  # at least a byte an event
        rec.record(lane, WAIT if i % 2 else RUN)
        if rec._written:
            break
    frames = read_frames(r)
    assert len(frames) >= 2, "batches went out while recording"
    assert all(len(f.events) <= BATCH_EVENTS for f in frames)
    times = [e.t for f in frames for e in f.events]
    assert times == sorted(times)


def test_the_flusher_sends_a_quiet_programs_events(pipe):
    r, w = pipe
    rec = Recorder(w, time.monotonic_ns())
    rec.start_flusher()
    lane = rec.new_lane("main", "m")
    rec.record(lane, RUN)
    deadline = time.monotonic() + 5
    frames = []
    while not frames and time.monotonic() < deadline:
        time.sleep(0.01)
        frames = read_frames(r)
    rec.close()
    assert frames and frames[0].events[-1].kind == RUN


def test_events_are_dropped_and_counted_while_a_write_is_blocked(pipe):
    r, w = pipe
    rec = Recorder(w, time.monotonic_ns(), cap=1000)
    lane = rec.new_lane("main", "m")
    rec._write_lock.acquire()  # another thread is stuck writing to a full pipe
    try:
        for _ in range(5000):
            rec.record(lane, RUN)
    finally:
        rec._write_lock.release()
    assert rec.dropped == 5000 + 1 - 1000  # the open event counts toward the cap too
    rec.flush()
    frames = read_frames(r)
    assert frames[-1].dropped == rec.dropped, "the count travels to the runner"
    assert sum(len(f.events) for f in frames) == 1000


def test_a_full_pipe_blocks_the_writer_for_backpressure(pipe):
    r, w = pipe
    rec = Recorder(w, time.monotonic_ns())
    lane = rec.new_lane("main", "m")
    done = threading.Event()

    def flood():
        for _ in range(200_000):
            rec.record(lane, LOG, "stdout", None, None, "x" * 50)
        rec.flush()
        done.set()

    threading.Thread(target=flood, daemon=True).start()
    assert not done.wait(0.5), "the writer waits for a reader instead of losing events"
    total = 0
    os.set_blocking(r, True)
    buf = b""
    while total < 200_001:
        buf += os.read(r, 1 << 20)
        while len(buf) >= 4 and len(buf) - 4 >= (size := int.from_bytes(buf[:4], "little")):
            total += _dec.decode(buf[4:4 + size]).n
            buf = buf[4 + size:]
    assert done.wait(5) and total == 200_001 and rec.dropped == 0


@pytest.mark.parametrize("passthrough", [False, True])
def test_lane_stream_attributes_lines_to_the_printing_lane(pipe, tmp_path, passthrough):
    """A real TextIOWrapper over a real file: each line is a log on the lane that wrote it (at write(),
    though the file is block-buffered), and the text reaches the file only with passthrough."""
    r, w = pipe
    rec = Recorder(w, time.monotonic_ns())
    rec.main_lane = rec.new_lane("main", "m")
    other = rec.new_lane("thread", "worker")
    path = tmp_path / "out.txt"
    out = lane_stream(open(path, "w", encoding="utf-8"), rec, "stdout", passthrough)
    assert isinstance(out, io.TextIOWrapper) and not out.line_buffering and out.fileno() > 2
    out.write("hello ")

    def worker():
        rec.bind_thread(other)
        out.write("from worker\npartial")

    t = threading.Thread(target=worker)
    t.start()
    t.join()
    out.write("world\n")
    out.flush()
    rec.flush()
    logs = [(e.lane, e.text) for f in read_frames(r) for e in f.events if e.kind == LOG]
    assert logs == [(other, "from worker"), (rec.main_lane, "hello world"), (other, "partial")]
    with pytest.raises(TypeError):
        out.write(b"bytes")
    out.close()
    assert path.read_text() == ("hello from worker\npartialworld\n" if passthrough else "")


def test_runner_merges_wire_frames_into_dense_lanes_and_numbered_events():
    """Lane ids renumbered densely across processes, causes mapped, unknown lanes dropped,
    kinds from a newer recorder kept as "unknown" (readers skip them), sequence numbers dense."""
    from concurview.trace.events import WireLane
    from concurview.engines.runner import Run, Target

    def stream(pid, lanes, events):
        return wire.stream(wire.frame_bytes(pid, lanes, events))

    run = Run(Target("merge"))
    a, b = (7 << 24) | 0, (9 << 24) | 0
    lanes, parts = [], []
    run._frames(stream(7, [WireLane(a, "main", "MainThread", pid=7)], [(5, a, RUN, None, "x.py:1")]), lanes, parts)
    run._frames(stream(9, [WireLane(b, "process", "worker", parent=a, pid=9)], [
        (9, b, RUN, None, None, a),
        (3, (9 << 24) | 5, RUN),  # a lane never declared: nothing to draw it on
        (12, b, 200, "from the future"),
        (14, b, WAIT, "sleep 1.0s", "w.py:2", (3 << 24) | 1),  # a cause never declared
    ]), lanes, parts)
    events = run._joined(parts).events()
    assert [(l.id, l.name, l.parent) for l in lanes] == [(0, "MainThread", None), (1, "worker", 0)]
    assert [(e.seq, e.t, e.lane, e.kind, e.cause) for e in events] == [
        (0, 5, 0, "run", None), (1, 9, 1, "run", 0), (2, 12, 1, "unknown", None), (3, 14, 1, "wait", None)]
    assert events[1].where is None and events[3].reason == "sleep 1.0s" and run.t_last == 14
    assert run.n_events == 4


def test_the_string_table_starts_over_and_a_frame_says_so(pipe):
    """A flood of unique log lines must not grow the child's table for ever: past its limit the
    table restarts, the next frame says `reset`, and every line still reads back right."""
    r, w = pipe
    rec = Recorder(w, time.monotonic_ns())
    lane = rec.new_lane("main", "m")
    received = []
    reader = threading.Thread(target=lambda: received.append(_read_until_closed(r)))
    reader.start()
    n = 70_000  # past the 65536 strings of one table
    for i in range(n):
        rec.record(lane, LOG, "stdout", None, None, f"line {i}")
    rec.flush()
    os.close(w)
    reader.join(10)
    frames = decode(received[0])
    assert any(_dec.decode(raw).reset for raw in raw_frames(received[0])), "the table restarted"
    texts = [e.text for f in frames for e in f.events if e.kind == LOG]
    assert texts == [f"line {i}" for i in range(n)]


def _read_until_closed(fd: int) -> bytes:
    chunks = []
    while chunk := os.read(fd, 1 << 20):
        chunks.append(chunk)
    return b"".join(chunks)


def test_an_engine_failure_is_one_log_line_on_the_main_lane(pipe):
    """A hook that raises never breaks the program: its first failure is said once (a log, not an
    error - the program did not fail), the later ones are only counted by the engine."""
    r, w = pipe
    rec = Recorder(w, time.monotonic_ns())
    rec.main_lane = rec.new_lane("main", "m")
    rec.engine_failed("greenlet tracer", KeyError("gr"), first=True)
    rec.engine_failed("greenlet tracer", KeyError("again"), first=False)
    rec.flush()
    logs = [e for f in read_frames(r) for e in f.events if e.kind == LOG]
    assert [(e.lane, e.reason) for e in logs] == [(rec.main_lane, "concurview")]
    assert logs[0].text == "concurview's greenlet tracer failed (later failures are only counted): KeyError: 'gr'"


_any_text = st.none() | st.text(max_size=40) | st.text(min_size=250, max_size=300)


@settings(max_examples=60, deadline=None)
@given(rows=st.lists(st.tuples(st.integers(-2**63, 2**63 - 1), st.integers(-1, 2**40), st.integers(0, 8),
                               _any_text, _any_text, st.none() | st.integers(0, 2**40), _any_text), max_size=300),
       lanes=st.lists(st.tuples(st.integers(0, 2**64 - 1), st.text(max_size=10), st.text(max_size=40),
                                st.none() | st.integers(-2**63, 2**63 - 1), st.integers(0, 2**22),
                                st.none() | st.integers(0, 2**64 - 1)), max_size=20),
       dropped=st.integers(0, 2**40), pid=st.integers(0, 2**22))
def test_the_buffers_own_frame_encoding_is_what_msgspec_writes(rows, lanes, dropped, pid):
    a, b = EventBuffer(0, 1 << 30), EventBuffer(0, 1 << 30)
    for _ in range(2):  # the second frame: strings already sent are not sent again
        for row in rows:
            a.record_at(*row)
            b.record_at(*row)
        want = msgspec.msgpack.encode(Frame(pid, lanes, dropped, *a.take(5)))
        out = bytearray(b"before, and what an earlier frame left")
        end = b.take_frame(out, 6, pid, lanes, dropped, 5)
        assert out[:6] == b"before" and int.from_bytes(out[6:10], "little") == len(want)
        assert bytes(out[10:end]) == want and len(out) >= end
        assert len(b) == 0


def test_the_runners_copies_of_the_wire_constants_match():
    """runner.py keeps its own copies (it starts the program before loading events.py and msgspec)."""
    from concurview.engines import recorder, runner
    from concurview.trace import events

    assert (runner.ENV_CHANNEL, runner.ENV_T0, runner.WIRE_LANE_SHIFT) == \
        (recorder.ENV_CHANNEL, recorder.ENV_T0, events.WIRE_LANE_SHIFT)
