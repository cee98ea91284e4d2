"""Blocking IO: recv() sleeps in the kernel until data arrives from the network, then copies it into your buffer - and the program can do nothing else meanwhile.

Watch for: every read has two phases. Phase 1, waiting for data to reach the
kernel's buffer (here a real peer process sends after `delay` seconds); phase 2,
copying it from the kernel buffer to the program's buffer. In the blocking
model the program's lane is waiting through phase 1 and is woken for phase 2:
both phases happen inside the one recv() call. The kernel lane shows the buffer
empty (─), then holding the data (▒) at the instant the kernel stamped its
arrival (SO_TIMESTAMPNS), until recv() has copied it out.

Timestamps say where they come from: the kernel's arrival stamp, what the
program observed around its own call, and the send time the peer reported.
For a small message the "copy" is mostly syscall and wake-up overhead; set
`size` to 262144 or more to see copying take real time.
"""

import time

from _iomodels import Peer, probe

SCENARIO = {
    "name": "io-blocking",
    "title": "IO model 1: blocking",
    "topic": "io",
    "order": 1,
    "params": {"delay": 1.0, "size": 64}, "limits": {"size": (1, 67_108_864)},
    "facts": [
        "the program lane waits from recv() until the data reaches the kernel (about `delay`)",
        "the copy follows the kernel's arrival stamp, inside the same recv() call",
    ],
}
P = SCENARIO["params"]

if __name__ == "__main__":
    peer = Peer(P["delay"], P["size"])  # a real process on loopback: waits `delay`, then sends
    buf = bytearray(P["size"])  # the user buffer, touched now so the copy does not page-fault
    probe("kernel buffer", "wait", 0, "empty: no data yet", "observed", lane_kind="kernel")

    t_call = time.monotonic_ns()
    probe("", "wait", t_call, "recv(): blocked, waiting for data", "observed: recv() called")
    n, t_arrived = peer.recv_into(buf)  # phase 1 and phase 2, both inside this call
    t_back = time.monotonic_ns()

    t_sent = peer.sent_at()
    probe("peer", "run", t_sent, f"sends {n} B", "reported by the peer", lane_kind="peer")
    probe("peer", "close", t_sent + 1, "sent", "reported by the peer")
    if t_arrived is None:  # no kernel stamp on this platform: only what the program saw
        t_arrived = t_back
    probe("kernel buffer", "ready", t_arrived, f"{n} B arrived", "stamped by the kernel (SO_TIMESTAMPNS)")
    probe("", "run", t_arrived, f"woken: wake up + copy {n} B to the user buffer", "kernel stamp")
    probe("kernel buffer", "close", t_back, "copied out: recv() returned", "observed")
    peer.close()

    print(f"recv() waited {(t_arrived - t_call) / 1e6:.1f} ms for data (phase 1), then took "
          f"{(t_back - t_arrived) / 1e3:.0f} µs to wake up and copy {n} B (phase 2)")
