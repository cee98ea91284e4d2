"""Benchmark workload: two CPU-bound threads (MODE spin), or the thread-pool mix (MODE mix); reports CPU time.

Usage: gil_threads.py OUT.json MODE N. spin: two threads each count to N in a pure-Python loop.
mix: threadpool_mix's ThreadPoolExecutor(3) with N sleep tasks and N // 3 call-heavy ones. When
run under concurview with the GIL view armed, the sampler's own counters are reported too.
"""

import json
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor

from threadpool_mix import busy, sleepy


def spin(n):
    i = 0
    while i < n:
        i += 1


def sampler_stats():
    view = sys.modules.get("concurview.engines.gilview")
    if view is None or view._view is None or view._gv is None:
        return None
    return view._gv.stats()


if __name__ == "__main__":
    out, mode, n = sys.argv[1], sys.argv[2], int(sys.argv[3])
    t0, c0 = time.perf_counter(), time.process_time()
    if mode == "spin":
        threads = [threading.Thread(target=spin, args=(n,)) for _ in range(2)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    else:
        with ThreadPoolExecutor(3) as pool:
            futures = [pool.submit(sleepy, i) for i in range(n)] + [pool.submit(busy, 18) for _ in range(n // 3)]
            for f in futures:
                f.result()
    result = {"elapsed_s": time.perf_counter() - t0, "cpu_s": time.process_time() - c0, "sampler": sampler_stats()}
    with open(out, "w") as f:
        json.dump(result, f)
