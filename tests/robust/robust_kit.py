"""Helpers for the robustness tests: run the CLI, find every process of a run in /proc, wait for hang markers."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

PROGRAMS = Path(__file__).parent / "programs"
EXE = [sys.executable, "-m", "concurview"]


def cv(*args: str, timeout: float = 90, **kwargs) -> subprocess.CompletedProcess[str]:
    """Run the concurview CLI to completion."""
    return subprocess.run([*EXE, *args], capture_output=True, text=True, timeout=timeout, **kwargs)


def processes() -> dict[int, tuple[str, int, int, int]]:
    """pid -> (state, ppid, pgid, sid) for every process in /proc."""
    out = {}
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        try:
            stat = Path(f"/proc/{name}/stat").read_bytes()
        except OSError:
            continue
        fields = stat[stat.rfind(b")") + 2:].split()
        out[int(name)] = (fields[0].decode(), int(fields[1]), int(fields[2]), int(fields[3]))
    return out


def leftovers(root: int, pids: list[int] = ()) -> dict[int, tuple[str, int, int, int]]:
    """Processes still in the run's process group or session (zombies too), or among `pids`."""
    time.sleep(0.1)  # what was killed has had time to go
    return {pid: st for pid, st in processes().items()
            if st[2] == root or st[3] == root or pid in pids or pid == root}


def wait_for_markers(ready: Path, n: int, timeout: float = 30) -> list[int]:
    """The pids hang.py's processes wrote into `ready` once at least n of them hang."""
    deadline = time.monotonic() + timeout
    while True:
        pids = [int(p.name) for p in ready.iterdir() if p.name.isdigit()]
        if len(pids) >= n:
            return pids
        assert time.monotonic() < deadline, f"only {len(pids)} of {n} processes started hanging"
        time.sleep(0.02)


def markers(ready: Path) -> list[int]:
    return [int(p.name) for p in ready.iterdir() if p.name.isdigit()]


def summary(trace: Path) -> dict:
    out = cv("summary", str(trace), "--json")
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout)


def footer(trace: Path):
    """(reader, lanes) of a trace file read to its end: reader.footer, reader.truncated, reader.n_read."""
    from concurview.trace.tracefile import TraceReader

    reader = TraceReader(trace)
    lanes, n = [], 0
    for batch_lanes, events in reader.batches():
        lanes += batch_lanes
        n += len(events)
    reader.n_read = n
    return reader, lanes
