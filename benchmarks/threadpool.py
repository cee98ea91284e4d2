"""threads: ThreadPoolExecutor(3) running a sleep-and-lock mix and call-heavy tasks: CPU time traced / untraced."""

from __future__ import annotations

from benchmarks import Result, engine_present, interleave, median, publish, run_plain, run_traced

NAME = "threadpool"
TITLE = "ThreadPoolExecutor(3), sleep and call-heavy mix: CPU time traced / untraced"
SLEEPS, CALLS = 600, 200


def missing() -> str | None:
    return None if engine_present("threads") else "engines/threads.py not written yet"


def run(quick: bool = False) -> list[Result]:
    reps = 3 if quick else 7
    samples = interleave({
        "untraced": lambda: run_plain("threadpool_mix.py", SLEEPS, CALLS),
        "concurview": lambda: run_traced("threadpool_mix.py", SLEEPS, CALLS),
    }, reps)
    t = {k: median([s["cpu_s"] for s in v]) for k, v in samples.items()}
    ratio = t["concurview"] / t["untraced"]
    results = [Result(NAME, "CPU time traced / untraced", ratio, "x", "<= 1.1x", ratio <= 1.1, {
        "tasks": SLEEPS + CALLS, "median_cpu_s": t,
        "median_wall_s": {k: median([s["elapsed_s"] for s in v]) for k, v in samples.items()},
        "wire_bytes": median([s["wire_bytes"] for s in samples["concurview"]]),
    })]
    publish(NAME, results, {k: [s["cpu_s"] for s in v] for k, v in samples.items()})
    return results
