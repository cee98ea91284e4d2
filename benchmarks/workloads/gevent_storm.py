"""Benchmark workload: TASKS gevent greenlets, each calling gevent.sleep(0) STEPS times.

Usage: gevent_storm.py OUT.json [TASKS] [STEPS] [any-tracer]. Writes its own timing as JSON.
With `any-tracer`, greenlet calls a no-op C function on every switch (`operator.is_`):
what greenlet itself spends calling a tracer, before the tracer does anything.
"""

import json
import operator
import sys
import time

import gevent
import greenlet


def worker(steps):
    for _ in range(steps):
        gevent.sleep(0)


if __name__ == "__main__":
    out = sys.argv[1]
    tasks = int(sys.argv[2]) if len(sys.argv) > 2 else 100
    steps = int(sys.argv[3]) if len(sys.argv) > 3 else 1000
    if sys.argv[4:] == ["any-tracer"]:
        greenlet.settrace(operator.is_)
    t0, c0 = time.perf_counter(), time.process_time()
    gevent.joinall([gevent.spawn(worker, steps) for _ in range(tasks)])
    elapsed, cpu = time.perf_counter() - t0, time.process_time() - c0
    with open(out, "w") as f:
        json.dump({"elapsed_s": elapsed, "cpu_s": cpu, "steps": tasks * steps}, f)
