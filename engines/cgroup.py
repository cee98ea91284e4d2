"""A cgroup (v2) of its own for each run, where the machine lets us make one: a run is then killed whole, however its processes re-fork."""

from __future__ import annotations

import itertools
import os
import signal
import time

_counter = itertools.count()


def _v2_root() -> str | None:
    """Where the unified (v2) hierarchy is mounted, or None."""
    try:
        with open("/proc/self/mountinfo", encoding="utf-8", errors="replace") as f:
            for line in f:
                left, _, right = line.partition(" - ")
                if right.split(" ", 1)[0] == "cgroup2":
                    return left.split(" ")[4].replace("\\040", " ")
    except OSError:
        pass
    return None


def _own_path() -> str | None:
    """This process's cgroup in the v2 hierarchy ("/" or "/user.slice/..."), or None."""
    try:
        with open("/proc/self/cgroup", encoding="utf-8", errors="replace") as f:
            for line in f:
                if line.startswith("0::"):
                    return line[3:].strip()
    except OSError:
        pass
    return None


class RunCgroup:
    """A child cgroup of ours holding one run's processes: everything they fork stays in it.

    `create()` gives None wherever cgroups cannot be made (not Linux, no v2 hierarchy, not
    ours to write: an unprivileged user without a delegated subtree); the runner then falls back
    to finding the run's processes by process group, session and environment.
    """

    def __init__(self, path: str, name: str = "") -> None:
        self.path = path
        self.name = name  # as /proc/PID/cgroup names it ("0::" + name)

    @classmethod
    def create(cls) -> RunCgroup | None:
        root, own = _v2_root(), _own_path()
        if root is None or own is None:
            return None
        name = os.path.join(own, f"concurview-{os.getpid()}-{next(_counter)}")
        path = os.path.join(root, name.lstrip("/"))
        try:
            os.mkdir(path, 0o755)
        except OSError:
            return None
        return cls(path, name)

    def add(self, pid: int) -> bool:
        """Move `pid` in (before it forks: the runner does it as soon as the child exists). False if refused."""
        try:
            self._write("cgroup.procs", str(pid))
            return True
        except OSError:
            self.remove(wait=0)
            return False

    def pids(self) -> list[int]:
        try:
            with open(os.path.join(self.path, "cgroup.procs"), encoding="ascii") as f:
                return [int(p) for p in f.read().split()]
        except (OSError, ValueError):
            return []

    def owns(self, pid: int) -> bool:
        """Whether `pid` is (or was, for a zombie not yet reaped) in this cgroup."""
        try:
            with open(f"/proc/{pid}/cgroup", encoding="utf-8", errors="replace") as f:
                return any(line.rstrip("\n") == "0::" + self.name for line in f)
        except OSError:
            return False

    def kill(self) -> None:
        """SIGKILL every process in the cgroup at once (cgroup.kill, Linux 5.14+); before that
        kernel, freeze the cgroup so nothing in it can fork, kill each process, thaw."""
        try:
            self._write("cgroup.kill", "1")
            return
        except OSError:
            pass
        try:
            self._write("cgroup.freeze", "1")
        except OSError:
            frozen = False
        else:
            frozen = True
        for pid in self.pids():
            try:
                os.kill(pid, signal.SIGKILL)
            except OSError:
                pass
        if frozen:
            try:
                self._write("cgroup.freeze", "0")  # a frozen process cannot die
            except OSError:
                pass

    def remove(self, wait: float = 1.0) -> None:
        """Delete the cgroup once its processes are gone (they die as they are reaped); gives up after `wait` s."""
        deadline = time.monotonic() + wait
        while True:
            try:
                os.rmdir(self.path)
                return
            except FileNotFoundError:
                return
            except OSError:
                if time.monotonic() >= deadline:
                    return
                time.sleep(0.005)

    def _write(self, name: str, value: str) -> None:
        fd = os.open(os.path.join(self.path, name), os.O_WRONLY)
        try:
            os.write(fd, value.encode())
        finally:
            os.close(fd)
