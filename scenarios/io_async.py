"""Asynchronous IO: the program hands the kernel a read into its own buffer and goes on; the kernel waits for the data, copies it, and only then says "done" - the bytes are already in the buffer.

Watch for: the program lane submits the read and returns at once - no
recv() anywhere in the program. It does other work while the kernel waits
for the data (phase 1, ░ on the kernel buffer lane) and copies it into the
user buffer (phase 2, ▓, magnified to one column): phase 2 is done by the
kernel, not by a call of the program - the one asynchronous model. Then, with nothing left to do, it waits on the ring's eventfd
through epoll - for the completion, not for readiness. When it wakes, the
buffer already holds the message. Compare io-epoll: there the wake-up means
"data is there, now copy it yourself"; here it means "your data has been
copied".

The read goes through Linux io_uring, driven with raw syscalls (setup, the
shared submission and completion rings, enter to submit only; the wait is on
an eventfd, because waiting inside io_uring_enter would hold the GIL and
freeze every thread). Where io_uring is missing or refused, the errno is
shown and glibc POSIX AIO is used instead - labelled "emulated by a helper
thread", because that is what it is: a thread glibc starts inside the
process blocks in read() for you. Set `backend` to posix_aio to see it.
"""

import select
import sys
import time

from _iomodels import KERNEL, Peer, Read, probe, took
from _iouring import Unavailable, open_backend

SCENARIO = {
    "name": "io-async",
    "title": "IO model 5: asynchronous (io_uring)",
    "topic": "io",
    "order": 7,
    "requires": ["linux"],
    "params": {"delay": 1.0, "size": 64, "work": 0.5, "backend": "auto"}, "limits": {"size": (1, 67_108_864), "backend": ("auto", "io_uring", "posix_aio")},
    "facts": [
        "the program submits the read and returns at once; it never calls recv()",
        "phase 2 is done by the kernel while the program runs: the buffer is already filled when the "
        "program learns of the completion",
        "without io_uring: the errno is shown and POSIX AIO is used, emulated by a helper thread",
    ],
}
P = SCENARIO["params"]


def other_work(seconds):
    """The program's own work while the kernel handles the read: count for `seconds`."""
    units, end = 0, time.monotonic_ns() + int(seconds * 1e9)
    while time.monotonic_ns() < end:
        units += 1
    return units


if __name__ == "__main__":
    if P["backend"] not in ("auto", "io_uring", "posix_aio"):
        print(f"io-async: backend must be auto, io_uring or posix_aio, not {P['backend']!r}", file=sys.stderr)
        sys.exit(2)
    try:
        ring, why_not = open_backend(P["backend"])
    except Unavailable as e:
        raise SystemExit(f"io-async: {e}") from None
    if why_not:  # io_uring missing or refused: say so, with its errno
        probe("", "mark", 0, f"io_uring not used, POSIX AIO instead: {why_not}")
        print(f"io_uring not used ({why_not}); POSIX AIO instead, emulated by a helper thread")
    peer = Peer(P["delay"], P["size"])
    sock = peer.sock
    buf = bytearray(P["size"])  # the user buffer the kernel will fill
    ep = select.epoll()
    ep.register(ring.fileno(), select.EPOLLIN)  # readable when a read has *completed*
    read = Read(peer)  # draws the read's two phases (under concurview)

    read.phase1(doing=f"it submitted the read ({ring.label}) and does its own work")
    t_submit = time.monotonic_ns()
    ring.submit(sock.fileno(), buf)  # returns at once: the read is the kernel's job now
    t_submitted = time.monotonic_ns()
    probe("", "mark", t_submitted, f"submit returned in {took(t_submitted - t_submit)}")
    if ring.name == "posix_aio":
        probe("aio helper thread", "wait", t_submitted, "read(): blocked, waiting for data",
              "emulated by a helper thread (glibc POSIX AIO)", lane_kind="thread")

    units = other_work(P["work"])  # phase 1 and phase 2 cost the program nothing
    probe("", "mark", 0, f"did {units} units of other work")

    n, t_arrived, t_done = 0, None, None
    deadline = time.monotonic() + P["delay"] + 10
    while n < P["size"]:
        probe("", "wait", 0, "epoll: waiting on the eventfd for the completion")
        if not ep.poll(max(0.0, deadline - time.monotonic())):  # a completion, not readiness
            raise SystemExit(f"io-async: no completion within {P['delay'] + 10:.0f} s")
        t_done = time.monotonic_ns()
        probe("", "run", t_done, "completion signalled (eventfd)")
        for _rid, result, request in ring.completions():
            if result < 0:
                raise SystemExit(f"io-async: the read failed: errno {-result}")
            if result == 0:
                raise SystemExit("io-async: the peer closed the connection early")
            if t_arrived is None and request is not None:
                stamp = request.kernel_stamp_realtime()  # when the data reached the kernel buffer
                t_arrived = None if stamp is None else stamp - peer.offset
            n += result
            probe("", "mark", t_done, f"completion: {result} B already in the user buffer")
            if n < P["size"]:  # a short read: ask for the rest
                ring.submit(sock.fileno(), buf, n)
    filled = buf == b"x" * P["size"]
    probe("", "mark", 0, f"the buffer holds all {n} B; recv() was never called" if filled
          else "the buffer is NOT filled")
    if ring.name == "posix_aio":
        probe("aio helper thread", "close", t_done, f"read() returned {n} B: completion signalled",
              "observed (the helper thread is glibc's, invisible to Python)")
    read.completed(t_arrived, t_done, n, by=KERNEL if ring.name == "io_uring"
                   else "glibc's helper thread (asynchronous, emulated)")
    peer.close()
    ring.close()

    print(f"{ring.name}: submit took {took(t_submitted - t_submit)}; the data arrived "
          f"{took(read.arrived - t_submit)} after submit; the completion was seen "
          f"{took(t_done - read.arrived)} after arrival with all {n} B in the buffer; "
          f"meanwhile {units} units of other work; recv() was never called: blocked 0 in phase 1 and phase 2")
