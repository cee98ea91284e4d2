"""Helper for hang.py's grandchildren: drop a file named by our pid into a directory."""

import os


def mark(ready: str) -> None:
    pid = os.getpid()
    tmp = os.path.join(ready, f".{pid}")
    with open(tmp, "w") as f:
        f.write(str(pid))
    os.rename(tmp, os.path.join(ready, str(pid)))
