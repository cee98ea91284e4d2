"""Producer and consumers: three worker threads take jobs from a queue.Queue; None tells each to stop."""
import queue
import sys
import threading
import time

N_JOBS = int(sys.argv[1]) if len(sys.argv) > 1 else 9
WORK = float(sys.argv[2]) if len(sys.argv) > 2 else 0.02

jobs = queue.Queue()
done = []
done_lock = threading.Lock()


def consumer():
    while True:
        job = jobs.get()
        if job is None:
            break
        time.sleep(WORK)
        with done_lock:
            done.append(job)


workers = [threading.Thread(target=consumer, name=f"consumer-{i}") for i in range(3)]
for w in workers:
    w.start()
for job in range(N_JOBS):
    jobs.put(job)
    time.sleep(WORK / 4)
for _ in workers:
    jobs.put(None)
for w in workers:
    w.join()
print("done", sorted(done) == list(range(N_JOBS)))
