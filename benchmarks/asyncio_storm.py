"""asyncio: 100 tasks x 1000 `sleep(0)` untraced, traced by concurview and under viztracer --log_async, side by side."""

from __future__ import annotations

import sys

from benchmarks import Result, has_viztracer, interleave, median, publish, run_plain, run_through_store, run_traced

NAME = "asyncio-storm"
TITLE = "asyncio 100 tasks x 1000 sleep(0): traced / untraced, and against viztracer --log_async"
TASKS, STEPS = 100, 1000
# viztracer keeps a ring buffer of this many entries (default 1,000,000): a smaller one costs the
# same per entry while running (if anything it is faster: it stays in cache) and saves in 1 s, not 8.
VIZ_ENTRIES = "200000"


def missing() -> str | None:
    return None


def run(quick: bool = False) -> list[Result]:
    reps = 3 if quick else 7
    variants = {
        "untraced": lambda: run_plain("asyncio_storm.py", TASKS, STEPS),
        "concurview": lambda: run_traced("asyncio_storm.py", TASKS, STEPS),
    }
    if has_viztracer():
        variants["viztracer"] = lambda: run_viztracer_async()
    samples = interleave(variants, reps)
    steps = TASKS * STEPS
    # CPU time: the workloads are single-threaded, and it leaves out what noisy neighbours take.
    t = {k: median([s["cpu_s"] for s in v]) for k, v in samples.items()}
    wall = {k: median([s["elapsed_s"] for s in v]) for k, v in samples.items()}
    base = t["untraced"]
    ratio = t["concurview"] / base
    ours_ns = (t["concurview"] - base) / steps * 1e9
    py = sys.version_info
    on_311 = py[:2] == (3, 11)
    details = {
        "tasks": TASKS, "steps": steps, "reps": reps, "median_cpu_s": t, "median_wall_s": wall,
        "added_ns_per_step": {"concurview": ours_ns},
        "untraced_ns_per_step": base / steps * 1e9,
        "wire_bytes_per_step": median([s["wire_bytes"] for s in samples["concurview"]]) / steps,
        "events_per_step": 3,  # run, wait, ready (sleep(0) yields straight back to the ready queue)
    }
    results = [Result(
        NAME, "traced / untraced", ratio, "x",
        "<= 1.5x on 3.11" + ("" if on_311 else f"; this is {py.major}.{py.minor}"),
        ratio <= 1.5 if on_311 else None, details,
    )]
    if "viztracer" in t:
        viz_ns = (t["viztracer"] - base) / steps * 1e9
        details["added_ns_per_step"]["viztracer"] = viz_ns
        share = ours_ns / viz_ns
        results.append(Result(
            NAME + "-vs-viztracer", f"added cost per step {ours_ns:.0f} ns vs viztracer's {viz_ns:.0f} ns =", share,
            "", "<= 0.25", share <= 0.25,
            {"viztracer_ratio": t["viztracer"] / base, "viztracer_options": ["--log_async", "--tracer_entries",
                                                                             VIZ_ENTRIES]},
        ))
    # The same run as `concurview record` does it: the runner decodes and the store ingests in
    # this process while the child runs; when they fall behind, the child waits on the pipe.
    e2e = [run_through_store("asyncio_storm.py", TASKS, STEPS)[0]["elapsed_s"] for _ in range(1 if quick else 2)]
    results.append(Result(
        NAME + "-into-store", "wall time traced through Run into the Timeline / untraced",
        median(e2e) / wall["untraced"], "x", "", None,
        {"median_wall_s": median(e2e), "note": "the child waits on the socket when the parent falls behind"},
    ))
    publish(NAME, results, {k: [s["cpu_s"] for s in v] for k, v in samples.items()})
    return results


def run_viztracer_async() -> dict:
    from benchmarks import run_viztracer

    return run_viztracer("asyncio_storm.py", TASKS, STEPS, options=("--log_async", "--tracer_entries", VIZ_ENTRIES))
