"""Opening recorded traces: 1M events (<= 1 s) and 10M (<= 10 s, <= 400 MB peak RSS), and store bytes per event."""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from benchmarks import REPO, Result, median, publish

NAME = "store-open"
TITLE = "open a 1M and a 10M-event trace file (s, peak RSS) and what the store keeps per event"

# The trace is a synthetic but realistic mix: a process with 8 threads, each running 12 asyncio-like
# tasks, switching run/wait/ready with a few dozen distinct reasons and source lines, plus 1 % log
# lines with text of their own. Written by the real TraceWriter, read by the real loader.
_LOAD = r"""
import gc, json, sys, time
t0 = time.perf_counter()
from concurview.trace.store import load
t_import = time.perf_counter() - t0
t0 = time.perf_counter()
tl = load(sys.argv[1])
t_open = time.perf_counter() - t0
tl.lane_states(range(min(40, len(tl.lanes))), tl.t_first, tl.t_end, 200)  # a first frame's query
# VmHWM, not ru_maxrss: the latter carries over the RSS of the process this one was forked from.
hwm = next(int(line.split()[1]) for line in open("/proc/self/status") if line.startswith("VmHWM:"))
print(json.dumps({"open_s": t_open, "import_s": t_import, "events": tl.n_events,
                  "store_bytes": tl.memory_bytes(), "cache_bytes": tl.cache_bytes(),
                  "peak_rss_mb": hwm / 1024}))
"""


def missing() -> str | None:
    return None


def write_trace(path: Path, n: int) -> None:
    """A synthetic n-event trace through the real writer, in batches (memory stays flat)."""
    import numpy as np

    from concurview.trace.events import Event, Footer, Header, Lane
    from concurview.trace.tracefile import TraceWriter

    rng = np.random.default_rng(7)
    lanes = [Lane(0, "process", "python", pid=100)]
    for th in range(8):
        tid = len(lanes)
        lanes.append(Lane(tid, "thread", f"worker-{th}", parent=0, pid=100, tid=1000 + th))
        for k in range(12):
            lanes.append(Lane(len(lanes), "task", f"task-{th}-{k}", parent=tid, pid=100, tid=1000 + th))
    reasons = [f"await sleep({i / 10:.1f})" for i in range(20)] + ["Lock.acquire", "Queue.get", "recv"]
    wheres = [f"app.py:{line}" for line in range(10, 60)]
    w = TraceWriter(path, Header(scenario="synthetic", params={"events": n}))
    w.lanes(lanes)
    kinds = ("run", "wait", "ready")
    t, seq, batch = 0, 0, 100_000
    while seq < n:
        m = min(batch, n - seq)
        lane = rng.integers(1, len(lanes), m)
        step = rng.integers(200, 5000, m)
        pick = rng.integers(0, 100, m)
        r = rng.integers(0, len(reasons), m)
        wh = rng.integers(0, len(wheres), m)
        events = []
        for i in range(m):
            t += int(step[i])
            p = int(pick[i])
            if p == 0:
                events.append(Event(seq, t, int(lane[i]), "log", None, wheres[int(wh[i])], None, f"line {seq} of output"))
            else:
                kind = kinds[p % 3]
                events.append(Event(seq, t, int(lane[i]), kind,
                                    reasons[int(r[i])] if kind == "wait" else None, wheres[int(wh[i])],
                                    int(lane[i]) - 1 if kind == "ready" else None, None))
            seq += 1
        w.events(events)
    w.close(Footer(complete=True, events=n))


def open_in_child(path: Path) -> dict:
    out = subprocess.run([sys.executable, "-c", _LOAD, str(path)], capture_output=True, text=True,
                         cwd=REPO, timeout=600, check=True)
    return json.loads(out.stdout)


def run(quick: bool = False) -> list[Result]:
    results = []
    sizes = [(1_000_000, 1.0, None)] + ([] if quick else [(10_000_000, 10.0, 400.0)])
    with tempfile.TemporaryDirectory() as tmp:
        for n, target_s, target_mb in sizes:
            path = Path(tmp) / f"trace-{n}.jsonl"
            t0 = time.perf_counter()
            write_trace(path, n)
            made = time.perf_counter() - t0
            runs = [open_in_child(path) for _ in range(1 if n > 1_000_000 or quick else 3)]
            open_s = median([r["open_s"] for r in runs])
            rss = max(r["peak_rss_mb"] for r in runs)
            per_event = runs[-1]["store_bytes"] / runs[-1]["events"]
            label = f"{n // 1_000_000}M"
            details = {"file_mb": path.stat().st_size / 1e6, "write_s": made, "runs": runs}
            results.append(Result(NAME, f"open a {label}-event trace file:", open_s, " s", f"<= {target_s:g} s",
                                  open_s <= target_s, details))
            results.append(Result(NAME, f"store memory at {label} events:", per_event, " B/event", "<= 24",
                                  per_event <= 24, {}))
            results.append(Result(NAME, f"peak RSS opening {label} events:", rss, " MB",
                                  f"<= {target_mb:g} MB" if target_mb else "",
                                  None if target_mb is None else rss <= target_mb, {}))
            path.unlink()
    publish(NAME.replace("-", "_"), results)
    return results
