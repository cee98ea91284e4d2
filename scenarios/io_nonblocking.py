"""Non-blocking IO: recv() never sleeps - it returns EAGAIN at once while no data is there, so the program polls, and burns CPU doing it.

Watch for: the program lane keeps running the whole time (no waiting glyph
at all): every recv() before the data arrives fails immediately with EAGAIN
(BlockingIOError in Python). The lane's marks count the EAGAINs in each
interval, and the CPU time the polling cost. Once the kernel has the data
(phase 1 is over - the kernel lane turns ▒), the next recv() copies it
(phase 2). Set `poll_sleep` above 0 to sleep between polls: far less CPU,
but the data is noticed up to that much later.
"""

import time

from _iomodels import Peer, probe

SCENARIO = {
    "name": "io-nonblocking",
    "title": "IO model 2: non-blocking (busy polling)",
    "topic": "io",
    "order": 2,
    "params": {"delay": 1.0, "size": 64, "poll_sleep": 0.0, "report_every": 0.1}, "limits": {"size": (1, 67_108_864), "report_every": (0.001, None)},
    "facts": [
        "EAGAIN count > 0 before the data arrives",
        "the program lane never waits: it is running (polling) throughout",
        "the successful recv() is the copy",
    ],
}
P = SCENARIO["params"]

if __name__ == "__main__":
    peer = Peer(P["delay"], P["size"])
    peer.conn.setblocking(False)  # recv() now fails with EAGAIN instead of sleeping
    buf = bytearray(P["size"])
    probe("kernel buffer", "wait", 0, "empty: no data yet", "observed", lane_kind="kernel")

    eagains = total_eagains = 0
    cpu0 = time.process_time()
    t_start = last_report = time.monotonic_ns()
    n, t_arrived = 0, None
    while n < P["size"]:
        try:  # recvmsg_into is recv_into that also hands back the kernel's arrival stamp
            got, anc, _flags, _addr = peer.conn.recvmsg_into([memoryview(buf)[n:]], 64)
        except BlockingIOError:  # EAGAIN: nothing in the kernel buffer yet
            eagains += 1
            now = time.monotonic_ns()
            if now - last_report >= P["report_every"] * 1e9:
                probe("", "mark", now, f"{eagains} × EAGAIN", f"in the last {(now - last_report) / 1e6:.0f} ms")
                total_eagains += eagains
                eagains, last_report = 0, now
            if P["poll_sleep"]:
                time.sleep(P["poll_sleep"])
            continue
        if got == 0:
            break
        if n == 0:
            t_copied = time.monotonic_ns()
            t_arrived = peer.kernel_stamp(anc)
        n += got
    total_eagains += eagains
    cpu = time.process_time() - cpu0
    t_back = time.monotonic_ns()

    t_sent = peer.sent_at()
    probe("peer", "run", t_sent, f"sends {n} B", "reported by the peer", lane_kind="peer")
    probe("peer", "close", t_sent + 1, "sent", "reported by the peer")
    if t_arrived is None:
        probe("kernel buffer", "ready", t_sent, f"{n} B on the way in", "reported by the peer")
    else:
        probe("kernel buffer", "ready", t_arrived, f"{n} B arrived", "stamped by the kernel (SO_TIMESTAMPNS)")
    probe("kernel buffer", "close", t_copied, "copied out by the first recv() that found data", "observed")
    probe("", "mark", t_back, f"{total_eagains} × EAGAIN in all", f"{cpu * 1000:.0f} ms of CPU spent polling")
    peer.close()

    print(f"{total_eagains} recv() calls found nothing (EAGAIN) in {(t_copied - t_start) / 1e6:.0f} ms, "
          f"costing {cpu * 1000:.0f} ms of CPU; then one recv() copied {n} B")
