"""gevent: the program patches first, then a Pool of 3 greenlets runs 6 jobs that sleep (patched time.sleep)."""
from gevent import monkey

monkey.patch_all()

import sys  # noqa: E402
import time  # noqa: E402

from gevent.pool import Pool  # noqa: E402

N = int(sys.argv[1]) if len(sys.argv) > 1 else 6
DELAY = float(sys.argv[2]) if len(sys.argv) > 2 else 0.05


def job(i):
    time.sleep(DELAY)
    return i * i


start = time.monotonic()
pool = Pool(3)
results = pool.map(job, range(N))
print("results", results, "rounds", round((time.monotonic() - start) / DELAY))
