"""Benchmark workload: two greenlets switch to each other ROUNDS times each (2 x ROUNDS switches).

Usage: greenlet_pingpong.py OUT.json [ROUNDS] [any-tracer]. Writes its own timing as JSON.
With `any-tracer`, greenlet calls a no-op C function on every switch (`operator.is_`):
what greenlet itself spends calling a tracer, before the tracer does anything.
"""

import json
import operator
import sys
import time

from greenlet import greenlet, settrace


def ping(rounds):
    for _ in range(rounds):
        pong_g.switch()


def pong():
    while True:
        ping_g.switch()


if __name__ == "__main__":
    out = sys.argv[1]
    rounds = int(sys.argv[2]) if len(sys.argv) > 2 else 100_000
    if sys.argv[3:] == ["any-tracer"]:
        settrace(operator.is_)
    ping_g, pong_g = greenlet(ping), greenlet(pong)
    t0, c0 = time.perf_counter(), time.process_time()
    ping_g.switch(rounds)
    elapsed, cpu = time.perf_counter() - t0, time.process_time() - c0
    with open(out, "w") as f:
        json.dump({"elapsed_s": elapsed, "cpu_s": cpu, "switches": 2 * rounds}, f)
