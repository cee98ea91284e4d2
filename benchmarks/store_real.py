"""Opening and summarising traces shaped like real programs': a gevent server's greenlet storm, an asyncio server's 10M events."""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from benchmarks import REPO, Result, publish
from benchmarks.real_shapes import greenlet_storm, many_tasks

NAME = "store-real"
TITLE = "open and summarise real-shaped traces: many short-lived lanes, log text (s, peak RSS)"

# In a fresh child: open (the store's load and a first frame's query), then the whole summary as
# `concurview summary` computes it (rows read one by one, as the CLI prints them).
_LOAD = r"""
import json, sys, time
from concurview.trace.store import lane_states_many, load
def hwm():
    return next(int(line.split()[1]) for line in open("/proc/self/status") if line.startswith("VmHWM:")) / 1024
t0 = time.perf_counter()
tl = load(sys.argv[1])
lane_states_many(tl, list(range(min(45, len(tl.lanes)))), tl.t_first, tl.t_end, 200)
t_open = time.perf_counter() - t0
rss_open = hwm()
t0 = time.perf_counter()
s = tl.summary()
n = sum(1 for _ in s["lane_totals"])
t_summary = time.perf_counter() - t0
print(json.dumps({"open_s": t_open, "summary_s": t_summary, "open_rss_mb": rss_open, "peak_rss_mb": hwm(),
                  "events": tl.n_events, "lanes": len(tl.lanes), "rows": n}))
"""

OPEN_S, SUMMARY_S, RSS_MB = 10.0, 10.0, 400.0  # design.md's 10M-event targets, whatever the shape


def missing() -> str | None:
    return None if sys.platform.startswith("linux") else "reads /proc/self/status"


def _measure(path: Path) -> dict:
    out = subprocess.run([sys.executable, "-c", _LOAD, str(path)], capture_output=True, text=True,
                         cwd=REPO, timeout=900, check=True)
    return json.loads(out.stdout)


def run(quick: bool = False) -> list[Result]:
    shapes = [("greenlet storm", lambda p: greenlet_storm(p, 200_000 if quick else 1_000_000)),
              ("asyncio server", lambda p: many_tasks(p, 1_000_000 if quick else 10_000_000))]
    results = []
    with tempfile.TemporaryDirectory() as tmp:
        for label, write in shapes:
            path = Path(tmp) / "trace.jsonl"
            t0 = time.perf_counter()
            write(path)
            made = time.perf_counter() - t0
            r = _measure(path)
            what = f"{label} ({r['events'] / 1e6:.1f}M events, {r['lanes']:,} lanes)"
            details = {**r, "file_mb": path.stat().st_size / 1e6, "write_s": made}
            results += [
                Result(NAME, f"{what}: open", r["open_s"], " s", f"<= {OPEN_S:g} s", r["open_s"] <= OPEN_S, details),
                Result(NAME, f"{what}: summary", r["summary_s"], " s", f"<= {SUMMARY_S:g} s",
                       r["summary_s"] <= SUMMARY_S, {}),
                Result(NAME, f"{what}: peak RSS opening", r["open_rss_mb"], " MB", f"<= {RSS_MB:g} MB",
                       r["open_rss_mb"] <= RSS_MB, {}),
                Result(NAME, f"{what}: peak RSS with the summary", r["peak_rss_mb"], " MB", f"<= {RSS_MB:g} MB",
                       r["peak_rss_mb"] <= RSS_MB, {}),
            ]
            path.unlink()
    publish(NAME.replace("-", "_"), results)
    return results
