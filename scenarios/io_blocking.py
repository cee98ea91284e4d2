"""Blocking IO: recv() sleeps in the kernel until data arrives from the network, then copies it into your buffer - and the program can do nothing else meanwhile.

Watch for: every read has two phases, drawn as bands on the kernel buffer
lane: phase 1 (░), waiting for the data to reach the kernel's buffer (here a
real peer process sends after `delay` seconds); phase 2 (▓), copying it from
the kernel buffer to the program's buffer. In the blocking model the program
(MainThread) waits through both, inside the one recv() call: phase 1 ends at
the instant the kernel stamped the data's arrival (SO_TIMESTAMPNS), phase 2
when recv() returns. Phase 2 lasts microseconds: its band is drawn at least
one column wide, magnified.

Timestamps say where they come from: the kernel's arrival stamp, what the
program observed around its own call, and the send time the peer reported.
For a small message the "copy" is mostly syscall and wake-up overhead; set
`size` to 262144 or more to see copying take real time.
"""

import socket

from _iomodels import Peer, Read, took

SCENARIO = {
    "name": "io-blocking",
    "title": "IO model 1: blocking",
    "topic": "io",
    "order": 1,
    "params": {"delay": 1.0, "size": 64}, "limits": {"size": (1, 67_108_864)},
    "facts": [
        "the program lane waits from recv() until the data reaches the kernel (about `delay`)",
        "phase 2, the copy, follows the kernel's arrival stamp inside the same recv() call",
    ],
}
P = SCENARIO["params"]

if __name__ == "__main__":
    peer = Peer(P["delay"], P["size"])  # a real process on loopback: waits `delay`, then sends
    sock = peer.sock
    buf = bytearray(P["size"])  # the user buffer, touched now so the copy does not page-fault
    read = Read(peer)  # draws the read's two phases (under concurview)

    read.phase1(blocked="recv()")
    n = sock.recv_into(buf, 0, socket.MSG_WAITALL)  # phase 1 and phase 2, both inside this call
    read.phase2("recv()")
    peer.close()

    waited, copying = read.blocked
    print(f"recv() waited {took(waited)} for data (phase 1), then {took(copying)} to wake up and "
          f"copy {n} B (phase 2): blocked {took(waited + copying)} in all")
