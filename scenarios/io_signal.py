"""Signal-driven IO: the kernel sends the process SIGIO when data arrives; the handler reads it while the program goes on with other work - it never waits for data.

Watch for: the program lane runs the whole time (it is busy with other work,
counting). When the data reaches the kernel buffer (▒ on the kernel lane),
the kernel raises SIGIO; Python runs the handler on the main thread at the
next bytecode boundary, and the handler drains the socket until EAGAIN (one
large message can raise several SIGIOs). Phase 1 costs the program nothing;
phase 2 (the copy) happens inside the handler. Set `long_c_call` to true:
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

from _iomodels import Peer, probe

SCENARIO = {
    "name": "io-signal",
    "title": "IO model 4: signal-driven (SIGIO)",
    "topic": "io",
    "order": 6,
    "requires": ["linux", "sigio"],
    "params": {"delay": 1.0, "size": 64, "long_c_call": False, "c_call_ms": 40}, "limits": {"size": (1, 67_108_864)},
    "facts": [
        "the handler runs after the data arrives and drains until EAGAIN",
        "the main lane keeps running meanwhile: it never waits for data",
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
            chunk, anc, _flags, _addr = peer.conn.recvmsg(1 << 20, 64)
        except BlockingIOError:  # EAGAIN: drained
            break
        if not chunk:
            break
        if not received:
            stamp = peer.kernel_stamp(anc)
            if stamp is not None:
                probe("kernel buffer", "ready", stamp, f"{P['size']} B arriving", "stamped by the kernel")
        received.extend(chunk)
        got += len(chunk)
    signals.append((t_handler, got))
    probe("", "mark", t_handler, f"SIGIO handler ran: drained {got} B until EAGAIN", "observed in the handler")


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
    signal.signal(signal.SIGIO, on_sigio)
    fd = peer.conn.fileno()
    fcntl.fcntl(fd, fcntl.F_SETOWN, os.getpid())  # send SIGIO for this socket to us
    fcntl.fcntl(fd, fcntl.F_SETFL, fcntl.fcntl(fd, fcntl.F_GETFL) | os.O_ASYNC | os.O_NONBLOCK)
    probe("kernel buffer", "wait", 0, "empty: no data yet", "observed", lane_kind="kernel")

    work = 0
    c_call_pending = P["long_c_call"]
    t_start = time.monotonic_ns()
    deadline = t_start + int((P["delay"] + 5) * 1e9)
    while len(received) < P["size"] and time.monotonic_ns() < deadline:
        if c_call_pending and time.monotonic_ns() > t_start + int((P["delay"] - P["c_call_ms"] / 2000) * 1e9):
            t_c = time.monotonic_ns()
            probe("", "mark", t_c, f"enters a {P['c_call_ms']} ms C call", "observed")
            busy_c_call(P["c_call_ms"])  # a signal arriving now waits until this returns
            probe("", "mark", 0, "C call returned", "observed")
            c_call_pending = False
        work += 1  # the program's other work, uninterrupted by waiting
    t_done = time.monotonic_ns()

    t_sent = peer.sent_at()
    probe("peer", "run", t_sent, f"sends {P['size']} B", "reported by the peer", lane_kind="peer")
    probe("peer", "close", t_sent + 1, "sent", "reported by the peer")
    probe("kernel buffer", "close", signals[-1][0] if signals else t_done, "drained by the handler", "observed")
    peer.close()
    first = signals[0][0] if signals else t_done
    print(f"did {work} units of other work; {len(signals)} SIGIO handler run(s) drained {len(received)} B; "
          f"the first ran {(first - t_sent) / 1e3:.0f} µs after the peer sent")
