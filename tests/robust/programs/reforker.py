"""A daemon that keeps re-forking: fork, setsid, the parent exits, again and again (each link writes its pid).

usage: reforker.py PIDS_DIR [noenv]   (noenv: every link re-executes itself with an empty environment)
The program itself exits 0 at once; the chain runs until something kills it.
"""

import os
import sys
import time

pids, noenv = sys.argv[1], sys.argv[2:3] == ["noenv"]


def chain() -> None:
    while True:
        if os.fork():
            os._exit(0)  # the parent leaves; the child is an orphan in a session of its own
        os.setsid()
        open(os.path.join(pids, str(os.getpid())), "w").close()
        if noenv:
            os.execve(sys.executable, [sys.executable, os.path.abspath(__file__), pids, "noenv", "link"], {})
        time.sleep(0.001)


if sys.argv[3:4] == ["link"]:
    chain()
if os.fork() == 0:
    chain()
print("daemon started", flush=True)
time.sleep(0.2)
