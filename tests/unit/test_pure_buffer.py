"""The pure-Python hot paths (engines/_pybuffer.py) against the C ones: the same frames byte for byte
for the same records, the same string table, batch and cap logic, thread-local lanes and errors; the
same trace files read back. The differential tests need the C extension and skip without it."""

from __future__ import annotations

import glob
import os
import subprocess
import sys
import threading
from pathlib import Path

import msgspec
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from concurview.engines import _pybuffer as py
from concurview.engines import speedups
from concurview.trace.events import ERROR, LOG, RUN, WAIT, WIRE_LANE_SHIFT, Frame

try:
    from concurview.engines import _speedups as C
except ImportError:  # not built: only the pure buffer's own tests run
    C = None

needs_c = pytest.mark.skipif(C is None, reason="the C extension is not built here")
TRACES = Path(__file__).parent.parent / "traces"
PID = 4321
OWN = PID << WIRE_LANE_SHIFT

_text = st.none() | st.sampled_from(["switch → pong", "x.py:12", "sleep 1.0s", "", "屌丝4", "lone \udcff"]) \
    | st.text(max_size=30) | st.integers(-5, 5)
_lane = st.sampled_from([OWN, OWN | 1, OWN | 2, OWN | 300, -1, 0]) | st.integers(-2**63, 2**63 - 1)
_cause = st.none() | _lane
_row = st.tuples(st.integers(-2**63, 2**63 - 1) | st.integers(0, 10**6), _lane, st.integers(0, 10), _text, _text,
                 _cause, _text)
_lanes = st.lists(st.tuples(st.integers(0, 2**64 - 1), st.sampled_from(["task", "thread"]), st.text(max_size=8),
                            st.none() | st.integers(-2**63, 2**63 - 1), st.integers(0, 2**22),
                            st.none() | st.integers(0, 2**64 - 1)), max_size=4)
# What a recorder does to its buffer between frames.
_op = st.one_of(
    st.tuples(st.just("rows"), st.lists(_row, max_size=40)),
    st.tuples(st.just("frame"), _lanes, st.integers(0, 2**40), _lane),
    st.tuples(st.just("take"), _lane),
    st.tuples(st.just("clear")),
    st.tuples(st.just("reset_strings")),
)


def _state(buf) -> tuple:
    return len(buf), bool(buf), buf.table(), buf.encoded, buf.strings, buf.reset_pending, buf.cap, buf.t0


@needs_c
@settings(max_examples=150, deadline=None)
@given(ops=st.lists(_op, max_size=12))
def test_the_pure_buffer_writes_the_c_buffer_s_frames_byte_for_byte(ops):
    a, b = C.EventBuffer(0, 1 << 30), py.EventBuffer(0, 1 << 30)
    out_a, out_b = bytearray(b"earlier bytes"), bytearray(b"earlier bytes")
    end_a = end_b = 7
    for op in ops:
        if op[0] == "rows":
            for row in op[1]:
                a.record_at(*row)
                b.record_at(*row)
        elif op[0] == "frame":
            _, lanes, dropped, main = op
            end_a = a.take_frame(out_a, end_a, PID, list(lanes), dropped, main)
            end_b = b.take_frame(out_b, end_b, PID, list(lanes), dropped, main)
            assert (end_a, out_a[:end_a]) == (end_b, out_b[:end_b])
        elif op[0] == "take":
            assert a.take(op[1]) == b.take(op[1])
        else:
            getattr(a, op[0])()
            getattr(b, op[0])()
        assert _state(a) == _state(b)


@needs_c
def test_the_string_table_starts_over_at_the_same_event():
    """Past 65,536 strings both tables start over, flagged in the next frame (reset), ids from 1 again."""
    a, b = C.EventBuffer(0, 1 << 30), py.EventBuffer(0, 1 << 30)
    out_a, out_b = bytearray(), bytearray()
    for frame in range(4):
        for i in range(30_000):
            a.record_at(i, OWN, LOG, None, None, None, f"line {frame} {i}")
            b.record_at(i, OWN, LOG, None, None, None, f"line {frame} {i}")
        end_a = a.take_frame(out_a, 0, PID, [], 0, OWN)
        end_b = b.take_frame(out_b, 0, PID, [], 0, OWN)
        assert out_a[:end_a] == out_b[:end_b], f"frame {frame}"
        assert a.reset_pending == b.reset_pending and a.strings == b.strings
    resets = [msgspec.msgpack.decode(bytes(out_b[4:end_b]), type=Frame).reset]
    assert resets == [True], "the fourth frame starts a new table (the third went past the limit)"


@needs_c
def test_a_huge_string_table_starts_over_by_its_characters_too():
    a, b = C.EventBuffer(0, 1 << 30), py.EventBuffer(0, 1 << 30)
    for buf in (a, b):
        for i in range(20):
            buf.record_at(i, OWN, LOG, None, None, None, f"{i}" + "x" * (1 << 20))
        buf.take(OWN)
    assert a.reset_pending and b.reset_pending and a.strings == b.strings == 0


@pytest.mark.parametrize("impl", ["c", "python"])
def test_a_batch_boundary_that_cannot_flush_asks_again_a_batch_later_and_at_the_cap(impl):
    """on_full returning False without taking the events (another thread holds the write) must not be
    asked again at every event (a Python call each), only a batch later; past the cap, always. Both buffers."""
    if impl == "c" and C is None:
        pytest.skip("the C extension is not built here")
    calls = []

    def on_full():
        calls.append(len(buf))
        return len(buf) >= 30  # past the cap: drop

    buf = (C.EventBuffer if impl == "c" else py.EventBuffer)(0, 8, on_full, 30)
    for i in range(40):
        buf.record_at(i, 1, RUN)
    assert calls == [8, 16, 24, 30, 30, 30, 30, 30, 30, 30, 30, 30, 30]
    assert len(buf) == 30
    buf.take(0)
    calls.clear()
    for i in range(9):
        buf.record(1, RUN)
    assert calls == [8], "a take() starts the count again"
    buf.cap = 4
    assert buf.cap == 4


@pytest.mark.parametrize("impl", ["c", "python"])
def test_each_thread_has_its_own_current_lane_in_each_buffer(impl):
    if impl == "c" and C is None:
        pytest.skip("the C extension is not built here")
    make = C.EventBuffer if impl == "c" else py.EventBuffer
    a, b = make(0), make(0)
    a.main_lane, b.main_lane = 1, 2
    assert a.lane() is None and a.current_lane() == 1
    a.set_lane(10)
    assert a.lane() == 10 and a.current_lane() == 10 and b.current_lane() == 2
    seen = {}

    def other():
        seen["before"] = a.lane(), a.current_lane()
        a.thread_lanes = {threading.get_ident(): 33}
        seen["bound"] = a.current_lane()
        seen["swap"] = a.swap_lane(44), a.current_lane()
        a.set_lane(None)
        seen["unset"] = a.lane(), a.current_lane()

    t = threading.Thread(target=other)
    t.start()
    t.join()
    assert seen == {"before": (None, 1), "bound": 33, "swap": (33, 44), "unset": (None, 33)}
    assert a.current_lane() == 10, "the other thread's lanes are its own"
    with pytest.raises(TypeError):
        a.thread_lanes = [1]
    a.thread_lanes = None
    assert a.thread_lanes is None


@needs_c
@pytest.mark.parametrize("call", [
    lambda buf: buf.record_at(0, 1, 256),
    lambda buf: buf.record_at(0, 1, -1),
    lambda buf: buf.record(1, "run"),
    lambda buf: buf.record_at(0, "lane", RUN),
    lambda buf: buf.append([0, 1, RUN]),
    lambda buf: buf.append((0, 1)),
    lambda buf: buf.take_frame(b"", 0, 1, [], 0, 0),
    lambda buf: buf.take_frame(bytearray(), 5, 1, [], 0, 0),
    lambda buf: buf.take_frame(bytearray(), 0, 1, (), 0, 0),
])
def test_bad_calls_raise_the_same_errors(call):
    with pytest.raises(Exception) as c_error:
        call(C.EventBuffer(0))
    with pytest.raises(Exception) as py_error:
        call(py.EventBuffer(0))
    assert type(py_error.value) is type(c_error.value)


def test_untraced_lanes_send_only_their_output_on_the_main_lane():
    buf = py.EventBuffer(0)
    buf.append((1, -1, RUN))
    buf.append((2, -1, LOG, "stdout", None, None, "hello"))
    buf.append((3, -1, ERROR, "ValueError"))
    buf.append((4, OWN | 1, WAIT, None, None, -1))
    n, t, lane, kind, cause, *_ = buf.take(OWN)
    assert n == 3 and t == (2, b"\x00\x01\x01")
    assert lane == (OWN, b"\x00\x00\x01") and kind == (0, bytes([LOG, ERROR, WAIT]))
    assert cause == (-1, b""), "a cause that is UNTRACED is None"


@needs_c
@pytest.mark.parametrize("path", sorted(glob.glob(str(TRACES / "*.jsonl"))), ids=os.path.basename)
def test_trace_files_read_the_same_through_msgspec_as_through_the_c_parser(path, monkeypatch):
    from concurview.trace.tracefile import TraceFormatError, TraceReader

    def read() -> tuple:
        try:
            reader = TraceReader(path)
            batches = [(lanes, events) for lanes, events in reader.batches(chunk_bytes=4096)]
            return reader.header, batches, reader.footer, reader.truncated
        except TraceFormatError as e:
            return str(e)

    monkeypatch.setattr(speedups, "EventParser", C.EventParser)
    with_c = read()
    monkeypatch.setattr(speedups, "EventParser", py.EventParser)
    assert read() == with_c


def test_the_pure_parser_passes_blank_lines_and_leaves_the_rest_to_msgspec():
    parser = py.EventParser({}, [])
    assert parser.parse(b"\n  \r\n\t\n", 0) == (0, 7, 3)
    assert parser.parse(b"\n \n {\"seq\":0}\n", 0) == (2, 3, 2)
    assert parser.parse(b"  ", 0) == (0, 2, 0)
    assert parser.pending() == 0 and parser.take()[0] == 0


def _python(code: str, **env) -> str:
    return subprocess.run([sys.executable, "-c", code], env={**os.environ, **env}, capture_output=True, text=True,
                          check=True).stdout.strip()


CHOICES = """
import concurview.engines.speedups as s
from concurview.engines import asyncio_engine, recorder
from concurview.trace import tracefile
print(s.implementation())
print(recorder.EventBuffer.__module__, asyncio_engine.TracedCoro.__name__, s.EventParser.__module__, s.gilview)
"""


def test_concurview_pure_forces_every_pure_path_even_with_the_extension_built():
    out = _python(CHOICES, CONCURVIEW_PURE="1").splitlines()
    assert out == ["pure Python, CONCURVIEW_PURE=1",
                   "concurview.engines._pybuffer PyTracedCoro concurview.engines._pybuffer None"]


def test_without_the_extension_every_module_falls_back(tmp_path):
    """As an install where the build failed: importing the extensions fails."""
    (tmp_path / "sitecustomize.py").write_text(
        "import sys\n"
        "class Block:\n"
        "    def find_spec(self, name, path=None, target=None):\n"
        "        if name in ('concurview.engines._speedups', 'concurview.engines._gilview'):\n"
        "            raise ImportError('not built')\n"
        "sys.meta_path.insert(0, Block())\n")
    env = {"PYTHONPATH": os.pathsep.join([str(tmp_path), os.environ.get("PYTHONPATH", "")])}
    out = _python(CHOICES, CONCURVIEW_PURE="", **env).splitlines()
    assert out == ["pure Python, the C extension is not built",
                   "concurview.engines._pybuffer PyTracedCoro concurview.engines._pybuffer None"]


@needs_c
def test_the_extension_is_the_default():
    out = _python(CHOICES, CONCURVIEW_PURE="0").splitlines()
    assert out[0] == "C speedups" and out[1].startswith("concurview.engines._speedups TracedCoro")
