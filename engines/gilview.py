"""The GIL view: arms the native sampler (engines/_gilview.c), registers threads with it, turns its changes into `sample` events."""

from __future__ import annotations

import os
import sys

from ..trace.events import (
    MARK, SAMPLE, SAMPLE_GIL_WAIT, SAMPLE_HOLDS, SAMPLE_KERNEL, SAMPLE_NO_GIL, SAMPLE_ON_CPU,
)
from .recorder import Recorder, _get_ident
from .where import Where

from .speedups import gilview as _gv  # None: not built here, or CONCURVIEW_PURE=1

ENV_GIL = "CONCURVIEW_GIL"  # "0": no sampling (the benchmark's baseline, or a program that wants none)
ENV_PERIOD = "CONCURVIEW_GIL_PERIOD_US"  # the sampler's period while the program is busy (µs)
DEFAULT_PERIOD_US = 1000  # a fifth of the default switch interval (5 ms): every hand-off is seen

# Linux system call numbers -> names, for "blocked in the kernel: read(fd 0)". Calls whose first
# argument is a file descriptor (or a pid) say it.
_SYSCALLS = {
    "x86_64": {0: "read", 1: "write", 7: "poll", 17: "pread64", 19: "readv", 23: "select", 34: "pause",
               35: "nanosleep", 42: "connect", 43: "accept", 44: "sendto", 45: "recvfrom", 46: "sendmsg",
               47: "recvmsg", 61: "wait4", 72: "fcntl", 73: "flock", 74: "fsync", 128: "rt_sigtimedwait",
               130: "rt_sigsuspend", 202: "futex", 230: "clock_nanosleep", 232: "epoll_wait", 247: "waitid",
               257: "openat", 270: "pselect6", 271: "ppoll", 281: "epoll_pwait", 288: "accept4",
               299: "recvmmsg", 426: "io_uring_enter", 441: "epoll_pwait2", 16: "ioctl", 295: "preadv"},
    "aarch64": {63: "read", 64: "write", 65: "readv", 67: "pread64", 73: "ppoll", 72: "pselect6",
                101: "nanosleep", 115: "clock_nanosleep", 98: "futex", 22: "epoll_pwait", 202: "accept",
                242: "accept4", 203: "connect", 206: "sendto", 207: "recvfrom", 211: "sendmsg", 212: "recvmsg",
                260: "wait4", 95: "waitid", 32: "flock", 82: "fsync", 133: "rt_sigsuspend",
                137: "rt_sigtimedwait", 56: "openat", 426: "io_uring_enter", 441: "epoll_pwait2", 29: "ioctl"},
}.get(os.uname().machine, {})  # platform.machine(), without importing platform (start-up)
_FD_FIRST = frozenset({"read", "write", "readv", "pread64", "preadv", "accept", "accept4", "connect", "sendto",
                       "recvfrom", "sendmsg", "recvmsg", "recvmmsg", "epoll_wait", "epoll_pwait", "epoll_pwait2",
                       "flock", "fsync", "fcntl", "ioctl", "io_uring_enter"})

_view: GilView | None = None  # the armed view of this process (threads.py registers its threads here)


def syscall_text(nr: int, arg: int) -> str:
    """`read(fd 0)`, `wait4(pid 7)`, `epoll_wait(fd 3)`, `futex()`, `syscall 333()`."""
    name = _SYSCALLS.get(nr, f"syscall {nr}")
    if name in _FD_FIRST and arg < 1 << 31:
        return f"{name}(fd {arg})"
    if name == "wait4" and arg < 1 << 31:
        return f"wait4(pid {arg})"
    return f"{name}()"


class GilView:
    """The sampler of one process: what it can see (`status`), the threads it samples, the drain."""

    def __init__(self, rec: Recorder, where: Where) -> None:
        self.rec = rec
        self.where = where
        self.errors = 0
        self._texts = {}
        if _gv is not None:
            self._texts = {_gv.HOLDS: SAMPLE_HOLDS, _gv.GILWAIT: SAMPLE_GIL_WAIT, _gv.NOGIL: SAMPLE_NO_GIL,
                           _gv.ONCPU: SAMPLE_ON_CPU}
        self.running = False

    def arm(self) -> str:
        """Start sampling (unless switched off or impossible here); returns the one line that says what the view shows."""
        if os.environ.get(ENV_GIL, "1") == "0":
            return f"GIL view: off ({ENV_GIL}=0)"
        if _gv is None or not sys.platform.startswith("linux"):
            return "GIL view: not available on this Python (no sampler for this build or platform)"
        layout = _gv.layout()
        try:
            period_us = int(os.environ.get(ENV_PERIOD, DEFAULT_PERIOD_US))
        except ValueError:
            period_us = DEFAULT_PERIOD_US
        try:
            self.running = bool(_gv.start(self.rec.t0, max(period_us, 100) * 1000))
        except OSError as e:
            return f"GIL view: not available (the sampler thread did not start: {e.strerror})"
        self.register(self.rec.main_lane, _get_ident())
        self.rec.drains.append(self.drain)
        if layout == "free-threaded":
            return "free-threaded: no GIL, threads run in parallel (threads blocked in the kernel are sampled)"
        if layout != "gil":
            return (f"GIL view: not available on this Python ({sys.version.split()[0]}); "
                    "threads blocked in the kernel are sampled")
        return f"GIL view: on (threads sampled every {period_us / 1000:g} ms while busy: GIL holder, " \
               "waits for the GIL, blocked in the kernel)"

    def register(self, lane: int, ident: int) -> None:
        """The calling thread is sampled as `lane` (its first moments: threads.py's open_thread)."""
        if self.running and lane >= 0:
            try:
                _gv.register(lane, ident)
            except Exception:  # noqa: BLE001 - a hook never raises into the program
                self.errors += 1

    def unregister(self) -> None:
        if self.running:
            _gv.unregister()

    def drain(self) -> None:
        """The sampler's changes since the last drain as `sample` events (run by the recorder's flusher,
        with the GIL). A thread still blocked in the kernel is named by the program's line it is at now."""
        try:
            rows = _gv.drain()
        except Exception:  # noqa: BLE001
            self.errors += 1
            return
        if not rows:
            return
        record_at, texts = self.rec.record_at, self._texts
        last = {row[2]: i for i, row in enumerate(rows)}  # ident -> its latest row
        frames = None
        for i, (t, lane, ident, state, nr, arg) in enumerate(rows):
            where = None
            if state == _gv.KERNEL:
                reason = f"{SAMPLE_KERNEL}: {syscall_text(nr, arg)}"
                if last[ident] == i:  # still there: its frame now is the frame of the call
                    if frames is None:
                        frames = sys._current_frames()
                    frame = self.where.user_frame(frames.get(ident))
                    where = None if frame is None else self.where.of_frame(frame)
            else:
                reason = texts.get(state, SAMPLE_ON_CPU)
            record_at(t, lane, SAMPLE, reason, where)

    def finish(self) -> None:
        """The program is over: the last changes, then a mark with the sampler's counters, and no more sampling."""
        if not self.running:
            return
        self.drain()
        stats = _gv.stats()
        _gv.stop()
        self.running = False
        cpu = stats.get("cpu_ns", -1)
        text = f"{stats.get('samples', 0)} samples"
        if cpu >= 0:
            text += f", the sampler's CPU time {cpu / 1e6:.1f} ms"
        if stats.get("dropped"):
            text += f", {stats['dropped']} changes lost (ring full)"
        self.rec.record(self.rec.main_lane, MARK, "GIL view sampler: " + text)


def arm(rec: Recorder, where: Where) -> GilView:
    """Arm the view for this process and say in the trace what it can see (a mark on the main lane)."""
    global _view
    view = GilView(rec, where)
    status = view.arm()
    rec.record(rec.main_lane, MARK, status)
    if view.running:
        _view = view
    return view


def register(lane: int, ident: int) -> None:
    view = _view
    if view is not None:
        view.register(lane, ident)


def unregister() -> None:
    view = _view
    if view is not None:
        view.unregister()
