"""Signal-driven IO: the kernel sends the process SIGIO when data arrives; the handler reads it while the program goes on with other work - it never waits for data.

Watch for: the program lane runs through phase 1 (░ on the kernel buffer
lane: it is busy with other work, counting). When the data reaches the
kernel buffer, the kernel raises SIGIO; Python runs the handler on the main
thread at the next bytecode boundary, and the handler drains the socket until
EAGAIN (one large message can raise several SIGIOs). Phase 1 costs the
program nothing; phase 2 (▓, magnified to one column) is the handler's
recv(), and the program is blocked in it: signal-driven IO is synchronous. Set `long_c_call` to true:
the main thread is then inside one long C call when the data arrives, and
the handler has to wait for it to return - Python handlers only run between
bytecodes. The lesson calls this model "theory only"; it is real, and Linux
still has it (F_SETOWN + O_ASYNC).
"""

import fcntl
import hashlib
import os
import signal
import time

from _iomodels import Peer, Read, probe, took

SCENARIO = {
    "name": "io-signal",
    "title": "IO model 4: signal-driven (SIGIO)",
    "topic": "io",
    "order": 6,
    "requires": ["linux", "sigio"],
    "params": {"delay": 1.0, "size": 64, "long_c_call": False, "c_call_ms": 40}, "limits": {"size": (1, 67_108_864)},
    "facts": [
        "the handler runs after the data arrives and drains until EAGAIN",
        "the main lane keeps running through phase 1: it never waits for data",
        "phase 2 is the handler's recv(): the program is blocked in it",
        "a long C call in the main thread delays the handler",
    ],
}
P = SCENARIO["params"]
received = bytearray()
signals = []  # (when the handler ran, bytes it drained)


def on_sigio(signum, frame):
    """Runs on the main thread between two bytecodes: drain the socket until EAGAIN."""
    t_handler = time.monotonic_ns()
    got = 0
    while True:
        try:
            chunk = sock.recv(1 << 20)  # phase 2: copies what the kernel holds
        except BlockingIOError:  # EAGAIN: drained
            break
        if not chunk:
            break
        received.extend(chunk)
        got += len(chunk)
    signals.append((t_handler, got))
    probe("", "mark", t_handler, f"SIGIO handler ran: drained {got} B until EAGAIN")


def busy_c_call(ms):
    """One C call that holds the main thread about `ms` milliseconds (a key stretch of hashing)."""
    t = time.perf_counter()
    hashlib.pbkdf2_hmac("sha256", b"password", b"salt", 20_000)
    per = time.perf_counter() - t
    hashlib.pbkdf2_hmac("sha256", b"password", b"salt", max(1, int(20_000 * ms / 1000 / per)))


if __name__ == "__main__":
    if not hasattr(signal, "SIGIO") or not hasattr(os, "O_ASYNC"):
        raise SystemExit("signal-driven IO (SIGIO, O_ASYNC) is not available on this platform")
    peer = Peer(P["delay"], P["size"])
    sock = peer.sock
    read = Read(peer)  # draws the read's two phases (under concurview)
    signal.signal(signal.SIGIO, on_sigio)
    fd = sock.fileno()
    fcntl.fcntl(fd, fcntl.F_SETOWN, os.getpid())  # send SIGIO for this socket to us
    fcntl.fcntl(fd, fcntl.F_SETFL, fcntl.fcntl(fd, fcntl.F_GETFL) | os.O_ASYNC | os.O_NONBLOCK)

    read.phase1(doing="it does its own work; SIGIO will interrupt it")
    work = 0
    c_call_pending = P["long_c_call"]
    t_start = time.monotonic_ns()
    deadline = t_start + int((P["delay"] + 5) * 1e9)
    while len(received) < P["size"] and time.monotonic_ns() < deadline:
        if c_call_pending and time.monotonic_ns() > t_start + int((P["delay"] - P["c_call_ms"] / 2000) * 1e9):
            probe("", "mark", 0, f"enters a {P['c_call_ms']} ms C call")
            busy_c_call(P["c_call_ms"])  # a signal arriving now waits until this returns
            probe("", "mark", 0, "C call returned")
            c_call_pending = False
        work += 1  # the program's other work, uninterrupted by waiting
    read.phase2("recv() in the SIGIO handler")
    peer.close()

    first = signals[0][0] if signals else time.monotonic_ns()
    print(f"did {work} units of other work; {len(signals)} SIGIO handler run(s) drained {len(received)} B; "
          f"the first ran {took(first - peer.sent_at())} after the peer sent; its recv() blocked the "
          f"program {took(read.blocked[1])} (phase 2)")
