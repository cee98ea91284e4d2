"""Benchmark workload: TASKS asyncio tasks, each awaiting sleep(0) STEPS times; writes its own timing as JSON.

Usage: asyncio_storm.py OUT.json [TASKS] [STEPS]. The time is measured inside, so
interpreter start-up, tracer set-up and trace saving are left out.
"""

import asyncio
import json
import sys
import time


async def worker(steps):
    for _ in range(steps):
        await asyncio.sleep(0)


async def main(tasks, steps):
    await asyncio.gather(*(worker(steps) for _ in range(tasks)))


if __name__ == "__main__":
    out = sys.argv[1]
    tasks = int(sys.argv[2]) if len(sys.argv) > 2 else 100
    steps = int(sys.argv[3]) if len(sys.argv) > 3 else 1000
    t0, c0 = time.perf_counter(), time.process_time()
    asyncio.run(main(tasks, steps))
    elapsed, cpu = time.perf_counter() - t0, time.process_time() - c0
    with open(out, "w") as f:
        json.dump({"elapsed_s": elapsed, "cpu_s": cpu, "steps": tasks * steps}, f)
