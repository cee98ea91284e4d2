"""gevent: 100 greenlets x 1000 `gevent.sleep(0)`, traced / untraced.

As for greenlet-pingpong, a third variant runs untraced with a no-op C tracer (`operator.is_`):
what greenlet spends calling any tracer, two switches a step, before the tracer does anything.
"""

from __future__ import annotations

from benchmarks import Result, engine_present, interleave, median, publish, run_plain, run_traced

NAME = "gevent-storm"
TITLE = "gevent 100 x 1000 sleep(0): traced / untraced"
TASKS, STEPS = 100, 1000


def missing() -> str | None:
    return None if engine_present("greenlet_engine") else "engines/greenlet_engine.py not written yet"


def run(quick: bool = False) -> list[Result]:
    reps = 3 if quick else 9
    samples = interleave({
        "untraced": lambda: run_plain("gevent_storm.py", TASKS, STEPS),
        "any-tracer": lambda: run_plain("gevent_storm.py", TASKS, STEPS, "any-tracer"),
        "concurview": lambda: run_traced("gevent_storm.py", TASKS, STEPS),
    }, reps)
    t = {k: median([s["cpu_s"] for s in v]) for k, v in samples.items()}
    steps = TASKS * STEPS
    ratio = t["concurview"] / t["untraced"]
    results = [
        Result(NAME, "traced / untraced", ratio, "x", "<= 1.5x", ratio <= 1.5, {
            "steps": steps, "median_cpu_s": t,
            "added_ns_per_step": (t["concurview"] - t["untraced"]) / steps * 1e9,
            "wire_bytes_per_step": median([s["wire_bytes"] for s in samples["concurview"]]) / steps,
        }),
        Result(NAME, "a no-op tracer / untraced", t["any-tracer"] / t["untraced"], "x", "", None, {
            "added_ns_per_step": (t["any-tracer"] - t["untraced"]) / steps * 1e9,
        }),
    ]
    publish(NAME, results, {k: [s["cpu_s"] for s in v] for k, v in samples.items()})
    return results
