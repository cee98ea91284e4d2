"""GIL view: two CPU-bound threads and the thread-pool mix, traced with and without the sampled thread states: CPU time."""

from __future__ import annotations

import os

from benchmarks import Result, engine_present, interleave, median, publish, run_plain, run_traced

NAME = "gil_view"
TITLE = "GIL view: CPU time traced with / without the sampled thread states (2 spinning threads, pool mix)"
ENV = "CONCURVIEW_GIL"  # engines/gilview.py ENV_GIL
WORK = {"spin": 10_000_000, "mix": 600}  # spin: iterations per thread; mix: sleep tasks


def missing() -> str | None:
    return None if engine_present("gilview") else "engines/gilview.py not written yet"


def _traced(mode: str, gil: bool) -> dict:
    old = os.environ.get(ENV)
    os.environ[ENV] = "1" if gil else "0"
    try:
        return run_traced("gil_threads.py", mode, WORK[mode])
    finally:
        if old is None:
            del os.environ[ENV]
        else:
            os.environ[ENV] = old


def run(quick: bool = False) -> list[Result]:
    reps = 3 if quick else 7
    results, raw = [], {}
    for mode in ("spin", "mix"):
        samples = interleave({
            "untraced": lambda m=mode: run_plain("gil_threads.py", m, WORK[m]),
            "traced": lambda m=mode: _traced(m, False),
            "traced+gil": lambda m=mode: _traced(m, True),
        }, reps)
        cpu = {k: median([s["cpu_s"] for s in v]) for k, v in samples.items()}
        stats = [s["sampler"] for s in samples["traced+gil"] if s.get("sampler")]
        sampler_cpu = median([s["cpu_ns"] / 1e9 for s in stats]) if stats else None
        n_samples = median([s["samples"] for s in stats]) if stats else None
        ratio = cpu["traced+gil"] / cpu["traced"]
        results.append(Result(NAME, f"{mode}: CPU time with the GIL view / without", ratio, "x", "<= 1.05x",
                              ratio <= 1.05, {"median_cpu_s": cpu, "sampler_cpu_s": sampler_cpu,
                                              "samples": n_samples,
                                              "traced_vs_untraced": cpu["traced+gil"] / cpu["untraced"]}))
        if sampler_cpu is not None:
            results.append(Result(NAME, f"{mode}: the sampler's own CPU time", sampler_cpu * 1e3, " ms", "", None,
                                  {"samples": n_samples,
                                   "share_of_program_cpu": sampler_cpu / cpu["traced+gil"]}))
        raw[mode] = {k: [s["cpu_s"] for s in v] for k, v in samples.items()}
    publish(NAME, results, raw)
    return results
