"""Produces events as fast as it can: `flood.py lock|greenlet SECONDS`.

lock: four threads hammer one contended Lock (each contended acquire is a wait/ready/run);
greenlet: two greenlets switch back and forth (each switch is a run event).
"""

import sys
import threading
import time

mode, seconds = sys.argv[1], float(sys.argv[2])
deadline = time.monotonic() + seconds
count = 0

if mode == "lock":
    lock = threading.Lock()

    def hammer() -> None:
        global count
        n = 0
        while time.monotonic() < deadline:
            for _ in range(100):
                with lock:
                    n += 1
                    time.sleep(0)
        count += n

    threads = [threading.Thread(target=hammer) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
elif mode == "greenlet":
    import greenlet

    def pong() -> None:
        while True:
            main.switch()

    main = greenlet.getcurrent()
    other = greenlet.greenlet(pong)
    while time.monotonic() < deadline:
        for _ in range(1000):
            other.switch()
            count += 1
print(f"done {count}", flush=True)
