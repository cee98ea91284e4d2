"""asyncio wake-ups: two tasks ping-pong through Queues; the cost of tracing it, and of the `ready` events alone."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile

from benchmarks import WORKLOADS, Result, interleave, median, publish, run_plain, run_traced

NAME = "asyncio-ready"
TITLE = "asyncio Queue ping-pong: traced / untraced, and what each ready event costs"
ROUNDS = 40_000


def missing() -> str | None:
    return None


def run(quick: bool = False) -> list[Result]:
    reps = 3 if quick else 5
    rounds = ROUNDS // 4 if quick else ROUNDS
    samples = interleave({
        "untraced": lambda: run_plain("asyncio_pingpong.py", rounds),
        "concurview": lambda: run_traced("asyncio_pingpong.py", rounds),
    }, reps)
    t = {k: median([s["cpu_s"] for s in v]) for k, v in samples.items()}
    wakeups = 2 * rounds
    ratio = t["concurview"] / t["untraced"]
    added = (t["concurview"] - t["untraced"]) / wakeups * 1e9
    # The ready events on their own: the engine in a process of its own, hook on and off.
    with tempfile.TemporaryDirectory(prefix="cv-bench-") as tmp:
        out = os.path.join(tmp, "ab.json")
        subprocess.run([sys.executable, str(WORKLOADS / "ready_ab.py"), out, str(rounds), str(reps + 2)],
                       check=True, stdout=subprocess.DEVNULL)
        with open(out) as f:
            ab = json.load(f)
    ready_ns = (ab["cpu_s"]["ready"] - ab["cpu_s"]["no_ready"]) / ab["wakeups"] * 1e9
    results = [
        Result(NAME, "Queue ping-pong traced / untraced (CPU time)", ratio, "x", "", None, {
            "wakeups": wakeups, "median_cpu_s": t, "added_ns_per_wakeup": added,
            "events_per_wakeup": 3,  # run, wait, ready
        }),
        Result(NAME + "-event", "ready event (cause found, recorded, sent) per wake-up", ready_ns, " ns", "", None, {
            "ab_cpu_s": ab["cpu_s"], "marker_add_done_callback_ns": ab["add_done_callback_ns"],
            "method": "in-process, Recorder writing to /dev/null; hook on vs call_soon dropping the marker unrecorded",
        }),
    ]
    publish(NAME, results, {k: [s["cpu_s"] for s in v] for k, v in samples.items()} | {"ab": ab["samples"]})
    print(f"#   tracing adds {added:.0f} ns per wake-up (run + wait + ready); the ready event "
          f"{ready_ns:.0f} ns of it, the marker callback ~{ab['add_done_callback_ns']:.0f} ns")
    return results
