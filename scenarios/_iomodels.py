"""Shared by the IO-model scenarios: a real peer process on loopback TCP, kernel arrival stamps, probes.

Not a scenario itself (the underscore keeps it out of the picker); the
scenarios import it as a sibling module, so each still runs as a plain
`python scenarios/io_x.py`.
"""

import socket
import struct
import subprocess
import sys
import time

SO_TIMESTAMPNS = getattr(socket, "SO_TIMESTAMPNS", 35)  # Linux; not exported by Python 3.11

# The peer: connect, wait `delay`, send `size` bytes, say when (its own clock), wait to be told to go.
PEER = r"""
import socket, sys, time
port, delay, size = int(sys.argv[1]), float(sys.argv[2]), int(sys.argv[3])
s = socket.create_connection(("127.0.0.1", port))
time.sleep(delay)
t = time.monotonic_ns()
s.sendall(b"x" * size)
print(t, flush=True)
s.recv(1)
"""


def probe(lane, kind, t_ns=0, reason="", text="", lane_kind=""):
    """Tell concurview (if it is listening) that `lane` did `kind` at `t_ns` (monotonic; 0 = now)."""
    sys.audit("concurview.event", lane, lane_kind, kind, t_ns, reason, text)


def realtime_offset():
    """realtime - monotonic in ns, from the tightest of a few samples (kernel stamps are realtime)."""
    best = None
    for _ in range(50):
        a = time.monotonic_ns()
        r = time.time_ns()
        b = time.monotonic_ns()
        if best is None or b - a < best[0]:
            best = (b - a, r - (a + b) // 2)
    return best[1]


class Peer:
    """A real process on loopback TCP that connects, waits `delay` seconds, then sends `size` bytes."""

    def __init__(self, delay, size):
        self.size = size
        listener = socket.create_server(("127.0.0.1", 0))
        port = listener.getsockname()[1]
        self.proc = subprocess.Popen([sys.executable, "-c", PEER, str(port), str(delay), str(size)],
                                     stdout=subprocess.PIPE, text=True)
        self.conn, _ = listener.accept()
        listener.close()
        self.conn.setsockopt(socket.SOL_SOCKET, SO_TIMESTAMPNS, 1)
        self.conn.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, max(2 * size, 1 << 16))
        # Readiness and recv() wait for the whole message (up to what the buffer can hold),
        # so the copy is one clean block.
        rcvbuf = self.conn.getsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF)
        self.conn.setsockopt(socket.SOL_SOCKET, socket.SO_RCVLOWAT, max(1, min(size, rcvbuf // 2)))
        self.offset = realtime_offset()

    def recv_into(self, buf):
        """recvmsg_into the user buffer: (bytes, kernel arrival stamp of the first of them on the monotonic clock)."""
        view = memoryview(buf)
        n, stamp = 0, None
        while n < len(buf):
            got, anc, _flags, _addr = self.conn.recvmsg_into([view[n:]], 64)
            if got == 0:
                break
            if stamp is None:
                stamp = self.kernel_stamp(anc)
            n += got
        return n, stamp

    def kernel_stamp(self, ancdata):
        for level, kind, data in ancdata:
            if level == socket.SOL_SOCKET and kind == SO_TIMESTAMPNS and len(data) >= 16:
                sec, nsec = struct.unpack("qq", data[:16])
                return sec * 1_000_000_000 + nsec - self.offset
        return None

    def sent_at(self):
        """When the peer sent, on its own monotonic clock (the same clock: one machine)."""
        return int(self.proc.stdout.readline())

    def close(self):
        try:
            self.conn.sendall(b"!")
        except OSError:
            pass
        self.conn.close()
        self.proc.wait(timeout=10)


def idle_sockets(n):
    """n sockets that never become readable, one descriptor each (raising the fd limit if needed)."""
    if n <= 0:
        return []
    try:
        import resource

        soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
        if soft != resource.RLIM_INFINITY and soft < n + 64:
            resource.setrlimit(resource.RLIMIT_NOFILE, (min(n + 64, hard), hard))
    except (ImportError, ValueError, OSError):
        pass
    # Unbound UDP sockets: nobody can send to them, so they stay unreadable.
    return [socket.socket(socket.AF_INET, socket.SOCK_DGRAM) for _ in range(n)]


def per_call_us(call, repeat=200):
    """Median cost of one call in microseconds."""
    samples = []
    for _ in range(repeat):
        t = time.perf_counter_ns()
        call()
        samples.append(time.perf_counter_ns() - t)
    samples.sort()
    return samples[len(samples) // 2] / 1000
