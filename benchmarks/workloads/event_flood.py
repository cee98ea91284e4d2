"""Benchmark workload (traced only): floods the runner with N recorded events, as fast as the recorder encodes them.

Usage: event_flood.py OUT.json [N]. It talks to the recorder of the traced child it
runs in (reached through the captured sys.stdout) and appends whole batches of
64 task lanes taking turns - run/wait pairs with a few reasons and lines, about the
mix a busy asyncio program sends - so the child is not what limits the rate.
"""

import json
import sys
import time

rec = getattr(sys.stdout, "_rec", None)
if rec is None:
    sys.exit("event_flood.py needs concurview's traced child: run it through benchmarks")

from concurview.trace.events import RUN, WAIT  # noqa: E402 - only ever run inside concurview
from concurview.engines.recorder import BATCH_EVENTS as BATCH  # noqa: E402

out = sys.argv[1]
n = int(sys.argv[2]) if len(sys.argv) > 2 else 1_000_000
lanes = [rec.new_lane("task", f"flood-{i}", parent=rec.main_lane, cause=rec.main_lane) for i in range(64)]
reasons = [f"await thing{i}" for i in range(8)]
wheres = [f"event_flood.py:{40 + i}" for i in range(16)]
main = rec.main_lane
events = rec._events
rec.flush()
t0, c0 = time.perf_counter(), time.process_time()
for start in range(0, n, BATCH):
    t = rec.now()
    events.extend([
        (t + k - start, lanes[k & 63], RUN, None, wheres[k & 15], main) if (k >> 6) & 1 else
        (t + k - start, lanes[k & 63], WAIT, reasons[k & 7], wheres[k & 15])
        for k in range(start, min(start + BATCH, n))
    ])
    rec.flush()
elapsed, cpu = time.perf_counter() - t0, time.process_time() - c0
with open(out, "w") as f:
    json.dump({"elapsed_s": elapsed, "cpu_s": cpu, "events": n}, f)
