"""Non-blocking IO: recv() never sleeps - it returns EAGAIN at once while no data is there, so the program polls, and burns CPU doing it.

Watch for: the program lane keeps running through phase 1 (░ on the kernel
buffer lane): every recv() before the data arrives fails immediately with
EAGAIN (BlockingIOError in Python). The lane's marks count the EAGAINs in
each interval, and the CPU time the polling cost. Once the kernel has the
data (phase 1 is over - the kernel lane turns ▒), the next recv() copies it:
phase 2 (▓, magnified to one column), and the program is blocked in that
call until the copy is done - non-blocking IO is still synchronous. Set `poll_sleep` above 0 to sleep between polls: far less CPU,
but the data is noticed up to that much later.
"""

import time

from _iomodels import Peer, Read, probe, took

SCENARIO = {
    "name": "io-nonblocking",
    "title": "IO model 2: non-blocking (busy polling)",
    "topic": "io",
    "order": 2,
    "params": {"delay": 1.0, "size": 64, "poll_sleep": 0.0, "report_every": 0.1}, "limits": {"size": (1, 67_108_864), "report_every": (0.001, None)},
    "facts": [
        "EAGAIN count > 0 before the data arrives",
        "the program lane never waits in phase 1: it is running (polling) throughout",
        "phase 2, the copy, is the successful recv(): the program is blocked in it",
    ],
}
P = SCENARIO["params"]

if __name__ == "__main__":
    peer = Peer(P["delay"], P["size"])
    sock = peer.sock
    sock.setblocking(False)  # recv() now fails with EAGAIN instead of sleeping
    buf = bytearray(P["size"])
    read = Read(peer)  # draws the read's two phases (under concurview)

    read.phase1(doing="it polls recv(), which fails at once with EAGAIN")
    eagains = total_eagains = n = 0
    cpu0 = time.process_time()
    t_start = last_report = time.monotonic_ns()
    while n < len(buf):
        try:
            n += sock.recv_into(memoryview(buf)[n:])  # the first one that finds data is phase 2
        except BlockingIOError:  # EAGAIN: nothing in the kernel buffer yet
            eagains += 1
            now = time.monotonic_ns()
            if now - last_report >= P["report_every"] * 1e9:
                probe("", "mark", now, f"{eagains} × EAGAIN in the last {(now - last_report) / 1e6:.0f} ms")
                total_eagains += eagains
                eagains, last_report = 0, now
            if P["poll_sleep"]:
                time.sleep(P["poll_sleep"])
    total_eagains += eagains
    cpu = time.process_time() - cpu0
    read.phase2("recv()")
    probe("", "mark", 0, f"{total_eagains} × EAGAIN in all, {cpu * 1000:.0f} ms of CPU spent polling")
    peer.close()

    print(f"{total_eagains} recv() calls found nothing (EAGAIN) in {took(read.arrived - t_start)}, "
          f"costing {cpu * 1000:.0f} ms of CPU; then one recv() copied {n} B in {took(read.blocked[1])} "
          "(phase 2, the program blocked in it)")
