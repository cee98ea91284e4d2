"""Chrome Trace Event Format files from other tools open, summarise and export like our own traces."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from concurview.trace.tracefile import TraceFormatError
from concurview.trace.store import load

PROGRAM = """
import asyncio, threading, time

async def fetch(n):
    await asyncio.sleep(0.01 * n)
    return n

async def main():
    await asyncio.gather(*(fetch(i) for i in range(3)))

def spin():
    time.sleep(0.01)

threading.Thread(target=spin, name="spinner").start()
asyncio.run(main())
"""


@pytest.fixture(scope="module")
def viztracer_trace(tmp_path_factory) -> Path:
    """A trace made by actually running viztracer --log_async on a small program."""
    d = tmp_path_factory.mktemp("viz")
    (d / "prog.py").write_text(PROGRAM)
    subprocess.run([sys.executable, "-m", "viztracer", "--log_async", "-o", str(d / "viz.json"), "prog.py"],
                   cwd=d, check=True, capture_output=True, timeout=120)
    return d / "viz.json"


def test_viztracer_log_async_trace_becomes_lanes(viztracer_trace):
    tl = load(viztracer_trace)
    kinds = {lane.name: lane.kind for lane in tl.lanes}
    # viztracer names the thread itself: "spinner" on 3.11, "Dummy-1" on 3.12+ (its tracer meets the
    # thread before threading has named it there); either way it is a thread lane of its own.
    threads = [name for name, kind in kinds.items() if kind == "thread"]
    assert kinds["MainThread"] == "main" and len(threads) == 1 and threads[0] in ("spinner", "Dummy-1"), kinds
    tasks = [name for name, kind in kinds.items() if kind == "task"]
    assert len(tasks) >= 4 and all(name.startswith("Task-") for name in tasks)
    assert tl.complete and tl.n_switches >= len(tl.lanes)
    runs = [tl.event(int(i)) for i in tl.events_of_kind("run")]
    assert any(r.reason == "fetch" and r.where and r.where.startswith("prog.py:") for r in runs)


def test_viztracer_trace_through_the_cli(viztracer_trace):
    s = json.loads(subprocess.run([sys.executable, "-m", "concurview", "summary", str(viztracer_trace), "--json"],
                                  capture_output=True, text=True, check=True).stdout)
    assert s["program"] == "viz.json (Chrome trace)" and s["lanes"] >= 6
    out = subprocess.run([sys.executable, "-m", "concurview", "export", str(viztracer_trace), "--to", "txt",
                          "-o", "-"], capture_output=True, text=True, check=True).stdout
    assert ("spinner" in out or "Dummy-1" in out) and "█" in out


def test_begin_end_pairs_and_nesting(tmp_path):
    p = tmp_path / "be.json"
    p.write_text(json.dumps([
        {"ph": "M", "name": "thread_name", "pid": 1, "tid": 2, "args": {"name": "worker"}},
        {"ph": "B", "name": "outer", "pid": 1, "tid": 2, "ts": 10},
        {"ph": "B", "name": "inner", "pid": 1, "tid": 2, "ts": 12},
        {"ph": "E", "pid": 1, "tid": 2, "ts": 13},
        {"ph": "E", "pid": 1, "tid": 2, "ts": 20},
        {"ph": "X", "name": "later", "pid": 1, "tid": 2, "ts": 30, "dur": 5},
        {"ph": "X", "name": "nested", "pid": 1, "tid": 2, "ts": 31, "dur": 1},
        {"ph": "i", "name": "note", "pid": 1, "tid": 2, "ts": 25},
        {"ph": "X", "name": "odd", "pid": 1, "tid": 2},
        "not even an object",
    ]))
    tl = load(p)
    (lane,) = tl.lanes
    assert (lane.name, lane.kind) == ("worker", "thread")
    runs = [tl.event(int(i)) for i in tl.events_of_kind("run")]
    assert [(r.t, r.reason) for r in runs] == [(0, "outer"), (20_000, "later")]
    starts, ends, states, _ = tl.lane_intervals(0)
    assert list(zip(starts.tolist(), ends.tolist())) == [(0, 10_000), (10_000, 20_000), (20_000, 25_000)]
    assert [tl.event(int(i)).text for i in tl.events_of_kind("log")] == ["note"]


@pytest.mark.parametrize("content, message", [
    (b'{"traceEvents": [1, 2', "not a readable Chrome trace"),
    (b'{"traceEvents": []}', "no slices or instants"),
    (b'[{"ph": "M", "name": "thread_name", "pid": 1, "tid": 1, "args": {"name": "x"}}]', "no slices"),
])
def test_damaged_chrome_traces(tmp_path, content, message):
    p = tmp_path / "bad.json"
    p.write_bytes(content)
    with pytest.raises(TraceFormatError, match=message):
        load(p)
    out = subprocess.run([sys.executable, "-m", "concurview", "open", str(p)], capture_output=True, text=True)
    assert out.returncode == 2 and message in out.stderr and out.stderr.count("\n") == 1


def test_concurview_s_own_chrome_export_reads_back_with_its_states(tmp_path):
    """Exported for Perfetto, opened again: each lane keeps its kind, name and its running, waiting
    and ready time (another tool's slices are all running; ours say which state they are)."""
    from concurview.trace.export import to_chrome
    from recording import events
    from samples import LOOP, LOOP_ROWS, build

    tl = build(LOOP, LOOP_ROWS)
    path = tmp_path / "t.chrome.json"
    path.write_text(json.dumps(to_chrome(tl)))
    back = load(path)
    before = {lane["name"]: lane for lane in tl.summary()["lane_totals"]}
    after = {lane["name"]: lane for lane in back.summary()["lane_totals"]}
    assert set(after) == set(before) == {"MainThread", "task", "task2"}
    assert {lane.name: lane.kind for lane in back.lanes} == {lane.name: lane.kind for lane in tl.lanes}
    for name, lane in before.items():
        for state in ("running_s", "waiting_s", "ready_s"):
            assert abs(after[name][state] - lane[state]) < 1e-9, (name, state, after[name], lane)
    reasons = {e.reason for e in events(back, "wait")}
    assert {"await sleep(3)", "await sleep(2)"} <= reasons


GOOD = [{"ph": "M", "name": "thread_name", "pid": 1, "tid": 1, "args": {"name": "MainThread"}},
        {"ph": "X", "name": "work", "pid": 1, "tid": 1, "ts": 10, "dur": 20}]


def _with(tmp_path, odd: bytes) -> Path:
    """A Chrome trace of two good events and one odd one, written as raw bytes after them."""
    p = tmp_path / "odd.json"
    p.write_bytes(json.dumps(GOOD).encode()[:-1] + b", " + odd + b"]")
    return p


@pytest.mark.parametrize("odd", [
    b'{"ph": "X", "name": "bad \xff\xfe utf-8", "pid": 1, "tid": 1, "ts": 40, "dur": 1}',
    b'{"ph": "X", "name": "x", "pid": 1, "tid": 1, "ts": 1e308, "dur": 1}',
    b'{"ph": "X", "name": "x", "pid": 1, "tid": 1, "ts": 1e400, "dur": 1}',
    b'{"ph": "X", "name": "x", "pid": 1, "tid": 1, "ts": 40, "dur": 1e308}',
    b'{"ph": "X", "name": "x", "pid": 1, "tid": 1, "ts": 40, "dur": -1e400}',
    b'{"ph": "i", "name": "x", "pid": 1, "tid": 1, "ts": 1e300}',
    b'{"ph": "B", "name": "x", "pid": 1, "tid": 1, "ts": -5}',
    b'{"ph": "X", "name": "x", "pid": 1, "tid": 1, "ts": "40", "dur": 1}',
    b'{"ph": "X", "name": 7, "pid": 1.5, "tid": [], "ts": 40}',
    b'{"ph": "X", "pid": 1, "tid": 1, "ts": 40, "dur": 1, "args": [1, 2]}',
], ids=["utf8", "ts-1e308", "ts-inf", "dur-1e308", "dur-minus-inf", "instant-1e300", "ts-negative",
        "ts-string", "wrong-types", "args-list"])
def test_an_odd_chrome_event_is_skipped_and_the_rest_loads(tmp_path, odd):
    """Each of these raised a traceback (invalid UTF-8, 1e308 times overflowing ns) or left a lane
    to show nothing; the event is skipped like any other of a wrong shape, the rest loads."""
    tl = load(_with(tmp_path, odd))
    assert [lane.name for lane in tl.lanes] == ["MainThread"]
    assert [(e.t, e.kind, e.reason) for e in map(tl.event, range(tl.n_events))][:2] == [
        (0, "open", None), (0, "run", "work")]
    assert tl.t_end in (20_000, 30_000)  # the slice's end; -1e400 dur: the 1 ns-less slice at 30 us


def test_huge_pids_and_tids_load(tmp_path):
    big = 2**64 - 1
    p = _with(tmp_path, json.dumps({"ph": "X", "name": "far", "pid": big, "tid": big, "ts": 50, "dur": 5}).encode())
    tl = load(p)
    assert [(lane.name, lane.pid, lane.tid) for lane in tl.lanes] == [("MainThread", 1, 1), (f"tid {big}", big, big)]
    out = subprocess.run([sys.executable, "-m", "concurview", "summary", str(p), "--json"],
                         capture_output=True, text=True)
    assert out.returncode == 0 and json.loads(out.stdout)["lanes"] == 2


@pytest.mark.parametrize("content, message", [
    (b"[" * 100_000 + b"]" * 100_000, "not a readable Chrome trace: JSON nested too deeply"),
    (b'{"traceEvents": ' + b"[" * 100_000 + b"]" * 100_000 + b"}",
     "not a readable Chrome trace: JSON nested too deeply"),
    (b'[{"ph": "X", "name": "x", "pid": 1, "tid": 1, "ts": 4, "dur": 1, "args": {"a": ' + b"[" * 50_000
     + b"]" * 50_000 + b"}}]", "not a readable Chrome trace: JSON nested too deeply"),
    (b'[{"ph": "X", "name": "\xff", "pid": 1, "tid": 1, "ts": 1e400, "dur": 1}]',
     "a Chrome trace with no slices or instants to show"),
], ids=["deep-array", "deep-object", "deep-args", "nothing-left"])
def test_chrome_documents_refused_in_one_line(tmp_path, content, message):
    p = tmp_path / "bad.json"
    p.write_bytes(content)
    out = subprocess.run([sys.executable, "-m", "concurview", "summary", str(p)], capture_output=True, text=True)
    assert out.returncode == 2 and out.stderr == f"concurview: error: {p}: {message}\n"


def test_a_reformatted_concurview_trace_is_not_taken_for_chrome(tmp_path):
    """A header re-dumped with spaces, naming a Chrome key in its params, is still ours."""
    p = tmp_path / "t.jsonl"
    p.write_text(json.dumps({"format": "concurview-trace", "version": 1, "params": {"traceEvents": 1}}) + "\n"
                 + json.dumps({"type": "lane", "id": 0, "kind": "main", "name": "m"}) + "\n"
                 + json.dumps({"seq": 0, "t": 5, "lane": 0, "kind": "run"}) + "\n")
    tl = load(p)
    assert tl.header.params == {"traceEvents": 1} and tl.n_events == 1
