"""Hangs in one of several ways; every process that hangs first drops a file named by its pid into READY_DIR.

usage: hang.py MODE READY_DIR   (MODE: main, threadpool, processpool, grandchild, setsid, setsid-noenv)
"""

import os
import subprocess
import sys
import time
from concurrent.futures import ProcessPoolExecutor, ThreadPoolExecutor

mode, ready = sys.argv[1], sys.argv[2]


def mark(pid: int | None = None) -> None:
    pid = os.getpid() if pid is None else pid
    tmp = os.path.join(ready, f".{pid}")
    with open(tmp, "w") as f:
        f.write(str(pid))
    os.rename(tmp, os.path.join(ready, str(pid)))


def hang(_: object = None) -> None:
    mark()
    time.sleep(1000)


if mode == "main":
    print("hanging in the main thread", flush=True)
    hang()
elif mode == "threadpool":
    with ThreadPoolExecutor(3) as pool:
        for _ in range(3):
            pool.submit(time.sleep, 1000)
        mark()
elif mode == "processpool":
    with ProcessPoolExecutor(2) as pool:
        futures = [pool.submit(hang, i) for i in range(2)]
        mark()
        for f in futures:
            f.result()
elif mode == "grandchild":
    # A grandchild in our session (a plain subprocess), plus one in a process group of its own.
    code = "import os, sys, time; sys.path.insert(0, sys.argv[1]); import hang_mark; hang_mark.mark(sys.argv[2]); time.sleep(1000)"
    here = os.path.dirname(os.path.abspath(__file__))
    subprocess.Popen([sys.executable, "-c", code, here, ready])
    subprocess.Popen([sys.executable, "-c", code, here, ready], process_group=0)
    hang()
elif mode in ("setsid", "setsid-noenv"):
    # The daemon's double fork: leave the session, then orphan the grandchild.
    if os.fork() == 0:
        os.setsid()
        if os.fork() == 0:
            if mode == "setsid-noenv":
                os.execve(sys.executable, [sys.executable, "-c",
                          f"import os, time; open({ready!r} + '/' + str(os.getpid()), 'w').close(); time.sleep(1000)"], {})
            mark()
            time.sleep(1000)
        os._exit(0)
    hang()
else:
    raise SystemExit(f"unknown mode {mode!r}")
