"""Benchmark workload: ThreadPoolExecutor(3) running sleep tasks and call-heavy tasks; reports the process's CPU time.

Usage: threadpool_mix.py OUT.json [SLEEPS] [CALLS]. SLEEPS tasks sleep 1 ms and
take a lock; CALLS tasks run a recursive function (many small Python calls).
"""

import json
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor

lock = threading.Lock()
total = 0


def sleepy(i):
    global total
    time.sleep(0.001)
    with lock:
        total += i


def fib(n):
    return n if n < 2 else fib(n - 1) + fib(n - 2)


def busy(n):
    return fib(n)


if __name__ == "__main__":
    out = sys.argv[1]
    sleeps = int(sys.argv[2]) if len(sys.argv) > 2 else 600
    calls = int(sys.argv[3]) if len(sys.argv) > 3 else 60
    t0, c0 = time.perf_counter(), time.process_time()
    with ThreadPoolExecutor(3) as pool:
        futures = [pool.submit(sleepy, i) for i in range(sleeps)]
        futures += [pool.submit(busy, 18) for _ in range(calls)]
        for f in futures:
            f.result()
    elapsed, cpu = time.perf_counter() - t0, time.process_time() - c0
    with open(out, "w") as f:
        json.dump({"elapsed_s": elapsed, "cpu_s": cpu, "tasks": sleeps + calls}, f)
