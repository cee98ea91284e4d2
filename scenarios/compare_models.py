"""The same IO-bound jobs on five models - sequential, a thread pool, a process pool, a gevent pool and asyncio - to see which is faster, and why.

Watch for: every job just waits (sleep stands in for a network call), so
doing them one after another takes jobs x job_sleep, while every concurrent
model takes about ceil(jobs / workers) x job_sleep: while one job waits,
another runs. The lanes differ: threads and processes give one OS lane per
worker (processes each with their own pid), gevent gives greenlets on one
thread next to its hub, asyncio gives tasks on one thread next to the event
loop. `concurview compare` runs all five and stacks them on one time axis.
"""

SCENARIO = {
    "name": "compare-models",
    "title": "Compare: one workload, five models",
    "topic": "compare",
    "params": {"model": "threads", "jobs": 8, "job_sleep": 0.5, "workers": 4}, "limits": {"model": ("sequential", "threads", "processes", "gevent", "asyncio"), "jobs": (0, 10_000), "workers": (1, 256)},
    "facts": [
        "sequential takes about jobs x job_sleep",
        "threads, processes, gevent and asyncio take about ceil(jobs / workers) x job_sleep",
        "never more than `workers` jobs at once in any pool",
    ],
}
P = SCENARIO["params"]
MODELS = ("sequential", "threads", "processes", "gevent", "asyncio")

if P["model"] == "gevent":  # gevent must patch before the rest imports time
    from gevent import monkey

    monkey.patch_all()

import math  # noqa: E402
import time  # noqa: E402


def job(n):
    time.sleep(P["job_sleep"])
    return n


def run_sequential():
    return [job(n) for n in range(P["jobs"])]


def run_threads():
    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(P["workers"]) as pool:
        return list(pool.map(job, range(P["jobs"])))


def run_processes():
    from concurrent.futures import ProcessPoolExecutor

    with ProcessPoolExecutor(P["workers"]) as pool:
        return list(pool.map(job, range(P["jobs"])))


def run_gevent():
    from gevent.pool import Pool

    return Pool(P["workers"]).map(job, range(P["jobs"]))


def run_asyncio():
    import asyncio

    async def ajob(n, limit):
        async with limit:
            await asyncio.sleep(P["job_sleep"])
            return n

    async def main():
        limit = asyncio.Semaphore(P["workers"])
        return await asyncio.gather(*(ajob(n, limit) for n in range(P["jobs"])))

    return asyncio.run(main())


if __name__ == "__main__":
    if P["model"] not in MODELS:
        raise SystemExit(f"model must be one of {', '.join(MODELS)}, not {P['model']!r}")
    start = time.perf_counter()
    results = globals()["run_" + P["model"]]()
    total = time.perf_counter() - start
    assert sorted(results) == list(range(P["jobs"]))
    ideal = (P["jobs"] if P["model"] == "sequential" else math.ceil(P["jobs"] / P["workers"])) * P["job_sleep"]
    print(f"{P['model']}: {P['jobs']} jobs in {total:.3f} s (ideal {ideal:.3f} s)")
