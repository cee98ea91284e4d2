"""Opening and summarising traces shaped like real programs': a gevent server's greenlet storm, asyncio servers' 1M and 10M events."""

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
TITLE = "open and summarise real-shaped traces: many short-lived lanes, log text (s, peak RSS, and the floor)"

# In a fresh child: open (the store's load and a first frame's query), then the whole summary as
# `concurview summary` computes it (rows read one by one, as the CLI prints them).
_LOAD = r"""
import json, sys, time
from concurview.trace.store import lane_states_many, load
def hwm():
    return next(int(line.split()[1]) for line in open("/proc/self/status") if line.startswith("VmHWM:")) / 1024
base = hwm()
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
                  "start_rss_mb": base, "events": tl.n_events, "lanes": len(tl.lanes), "rows": n,
                  "store_mb": tl.memory_bytes() / 1e6}))
"""

# The floor, in another fresh child: the file's bytes read (1 MiB at a time), then every line decoded by
# msgspec into plain objects and dropped (what any reader of the file pays before keeping anything).
_FLOOR = r"""
import json, sys, time
import msgspec
t0 = time.perf_counter()
with open(sys.argv[1], "rb") as f:
    while f.read(1 << 20):
        pass
t_read = time.perf_counter() - t0
dec = msgspec.json.Decoder()
t0 = time.perf_counter()
with open(sys.argv[1], "rb") as f:
    rest = b""
    while chunk := f.read(1 << 20):
        buf = rest + chunk
        cut = buf.rfind(b"\n") + 1
        rest = buf[cut:]
        dec.decode_lines(buf[:cut])
print(json.dumps({"read_s": t_read, "decode_s": time.perf_counter() - t0}))
"""

RSS_MB = 400.0  # issue #17 / #24: whatever the shape or the lane count
# (open s, summary s) by size: #24 for 1M events, design.md / #17 for 10M
TARGETS = {1_000_000: (1.0, 2.0), 10_000_000: (10.0, 10.0)}


def missing() -> str | None:
    return None if sys.platform.startswith("linux") else "reads /proc/self/status"


def _child(code: str, path: Path) -> dict:
    out = subprocess.run([sys.executable, "-c", code, str(path)], capture_output=True, text=True,
                         cwd=REPO, timeout=900, check=True)
    return json.loads(out.stdout)


def _shapes(quick: bool):
    """(label, size class for the targets, writer)"""
    if quick:
        return [("asyncio server", 1_000_000, lambda p: many_tasks(p, 1_000_000)),
                ("greenlet storm", 1_000_000, lambda p: greenlet_storm(p, 170_000))]
    return [("asyncio server", 1_000_000, lambda p: many_tasks(p, 1_000_000)),
            ("asyncio server", 10_000_000, lambda p: many_tasks(p, 10_000_000)),
            ("asyncio server", 10_000_000, lambda p: many_tasks(p, 10_000_000, life=500)),  # ~20k lanes
            ("asyncio server", 10_000_000, lambda p: many_tasks(p, 10_000_000, life=5000)),  # ~2k lanes
            ("greenlet storm", 10_000_000, lambda p: greenlet_storm(p, 1_000_000))]


def run(quick: bool = False) -> list[Result]:
    results = []
    with tempfile.TemporaryDirectory() as tmp:
        for label, size, write in _shapes(quick):
            path = Path(tmp) / "trace.jsonl"
            t0 = time.perf_counter()
            write(path)
            made = time.perf_counter() - t0
            r = _child(_LOAD, path)
            floor = _child(_FLOOR, path)
            open_s, summary_s = TARGETS[size]
            what = f"{label} ({r['events'] / 1e6:.1f}M events, {r['lanes']:,} lanes)"
            details = {**r, **floor, "file_mb": path.stat().st_size / 1e6, "write_s": made}
            results += [
                Result(NAME, f"{what}: open", r["open_s"], " s", f"<= {open_s:g} s", r["open_s"] <= open_s, details),
                Result(NAME, f"{what}: summary", r["summary_s"], " s", f"<= {summary_s:g} s",
                       r["summary_s"] <= summary_s, {}),
                Result(NAME, f"{what}: peak RSS opening", r["open_rss_mb"], " MB", f"<= {RSS_MB:g} MB",
                       r["open_rss_mb"] <= RSS_MB, {}),
                Result(NAME, f"{what}: peak RSS with the summary", r["peak_rss_mb"], " MB", f"<= {RSS_MB:g} MB",
                       r["peak_rss_mb"] <= RSS_MB, {}),
                Result(NAME, f"{what}: floor: read the file's {path.stat().st_size / 1e6:,.0f} MB "
                       f"{floor['read_s']:.2f} s, msgspec-decode its lines {floor['decode_s']:.2f} s; open / decode",
                       r["open_s"] / floor["decode_s"], "x", "", None, {}),
            ]
            path.unlink()
    publish(NAME.replace("-", "_"), results)
    return results
