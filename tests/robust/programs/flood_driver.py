"""Drives a flood the way the app does (Run -> Timeline) and reports JSON: events kept, dropped, rate, parent RSS.

usage: flood_driver.py MODE SECONDS MAX_EVENTS
Runs flood.py MODE SECONDS traced, folding every batch into a Timeline, sampling our own RSS as it goes.
"""

import json
import os
import resource
import sys
import time

from concurview.engines.runner import Run, Target
from concurview.trace.store import Timeline


def rss_mb() -> float:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return 0.0


mode, seconds, cap = sys.argv[1], sys.argv[2], int(sys.argv[3])
here = os.path.dirname(os.path.abspath(__file__))
run = Run(Target(os.path.join(here, "flood.py"), args=[mode, seconds]), timeout=120, max_events=cap)
tl = Timeline(run.header)
start_rss = peak = rss_mb()
t0 = time.monotonic()
cpu0 = resource.getrusage(resource.RUSAGE_SELF)
first = None
arrived = 0
sampled = t0
for batch in run:
    now = time.monotonic()
    if batch.events and first is None:
        first = now
    arrived += len(batch.events)
    tl.add(batch.lanes, batch.events)
    if now - sampled > 0.05:
        peak = max(peak, rss_mb())
        sampled = now
end = time.monotonic()
cpu1 = resource.getrusage(resource.RUSAGE_SELF)
footer = run.footer()
tl.finish(footer)
peak = max(peak, rss_mb())
span = (end - first) if first is not None and end > first else None
# Our own CPU time for it all (accept, read, decode, renumber, fold into the store): what the
# parent could take per second if the child produced faster.
cpu = (cpu1.ru_utime - cpu0.ru_utime) + (cpu1.ru_stime - cpu0.ru_stime)
print(json.dumps({
    "kept": tl.n_events, "arrived": arrived, "dropped": footer.dropped, "capped": run.capped,
    "max_events": footer.max_events, "complete": footer.complete, "exit_code": footer.exit_code,
    "events_per_s": None if span is None else (arrived + run.capped) / span,
    "parent_cpu_s": round(cpu, 3),
    "parent_capacity_events_per_s": None if not cpu else (arrived + run.capped) / cpu,
    "rss_start_mb": round(start_rss, 1), "rss_peak_mb": round(peak, 1),
    "logs": [e.text for e in tl.logs() if e.kind == "log"][-3:],
}))
