"""A ProcessPoolExecutor of 2 workers with the start method given as argv[1] (spawn, fork, forkserver)."""
import multiprocessing
import os
import sys
import time
from concurrent.futures import ProcessPoolExecutor


def square(n):
    time.sleep(0.02)
    return n * n, os.getpid()


if __name__ == "__main__":
    method = sys.argv[1] if len(sys.argv) > 1 else "spawn"
    ctx = multiprocessing.get_context(method)
    with ProcessPoolExecutor(2, mp_context=ctx) as pool:
        futures = [pool.submit(square, n) for n in range(4)]
        results = [f.result() for f in futures]
    pids = sorted({pid for _, pid in results})
    print("squares", [r for r, _ in results], "parent not among them:", os.getpid() not in pids)
    print("worker pids", *pids)
