"""Benchmark workload: the asyncio engine in this process, ready events on and off.

Usage: ready_ab.py OUT.json [ROUNDS] [REPS]. Runs the Queue ping-pong REPS times
each way, interleaved: as traced, and with the engine's wake-up hook reduced to
nothing (call_soon drops the marker without calling TracedCoro._woken; the
done-callback marker is still added, and call_soon still has to recognise it).
The Recorder writes its frames to /dev/null: everything the child pays per event
(finding the cause, recording, encoding, the write) without a reader thread
taking the GIL back and forth, which made this difference too noisy to read.
"""

import json
import os
import statistics
import sys
import time

from concurview.engines import asyncio_engine
from concurview.engines.recorder import Recorder
from concurview.engines.where import Where

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

import asyncio  # noqa: E402

import asyncio_pingpong  # noqa: E402


def main() -> None:
    out = sys.argv[1]
    rounds = int(sys.argv[2]) if len(sys.argv) > 2 else 20000
    reps = int(sys.argv[3]) if len(sys.argv) > 3 else 5
    rec = Recorder(os.open(os.devnull, os.O_WRONLY), time.monotonic_ns())
    lane = rec.new_lane("main", "MainThread")
    rec.main_lane = lane
    rec.bind_thread(lane)
    asyncio_engine.install(rec, Where(HERE))
    loop_class = asyncio.base_events.BaseEventLoop
    call_soon = {"ready": loop_class.call_soon,
                 "no_ready": asyncio_engine.AsyncioEngine._make_call_soon(loop_class.call_soon.__wrapped__, woken=False)}
    samples = {"ready": [], "no_ready": []}
    for i in range(reps):
        for variant in (("ready", "no_ready") if i % 2 == 0 else ("no_ready", "ready")):
            loop_class.call_soon = call_soon[variant]
            c0 = time.process_time()
            asyncio.run(asyncio_pingpong.main(rounds))
            samples[variant].append(time.process_time() - c0)
    loop_class.call_soon = call_soon["ready"]
    fut_cost = marker_cost()
    with open(out, "w") as f:
        json.dump({"cpu_s": {k: statistics.median(v) for k, v in samples.items()}, "samples": samples,
                   "wakeups": 2 * rounds, "add_done_callback_ns": fut_cost}, f)


def marker_cost(n: int = 100_000) -> float:
    """What the marker adds to a wait: a future's second done-callback (the first has a slot of its own)."""
    loop = asyncio.new_event_loop()
    create, marker, wakeup = loop.create_future, object(), loop.time

    def one():
        for _ in range(n):
            create().add_done_callback(wakeup)

    def two():
        for _ in range(n):
            f = create()
            f.add_done_callback(marker)
            f.add_done_callback(wakeup)

    best = {}
    for _ in range(5):
        for name, fn in (("one", one), ("two", two)):
            t0 = time.perf_counter()
            fn()
            best[name] = min(best.get(name, 1e9), time.perf_counter() - t0)
    loop.close()
    return (best["two"] - best["one"]) / n * 1e9


if __name__ == "__main__":
    main()
