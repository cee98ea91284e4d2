"""Shared by the IO-model scenarios: a real peer process on loopback TCP, kernel arrival stamps, and `Read`, which draws a read's two phases.

Not a scenario itself (the underscore keeps it out of the picker); the
scenarios import it as a sibling module, so each still runs as a plain
`python scenarios/io_x.py`, and its source shows the model's own calls
(`sock.recv_into(...)`, `select.select(...)`) with one short `read.phase1()`
/ `read.phase2()` line around them. Under concurview those lines become
events (through sys.audit, see engines/probe.py); without it they do nothing
but keep the times the results print.
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


PROBE_HELPER = True  # concurview records the scenario's line that called in here, not a line of this module
PROGRAM = "the program (synchronous)"
KERNEL = "the kernel (asynchronous)"


def probe(lane, kind, t_ns=0, reason="", text="", lane_kind="", at=None):
    """Tell concurview (if it is listening) that `lane` did `kind` at `t_ns` (monotonic; 0 = now).

    `at`: (filename, line) of the call it is about, when that is not the line calling this.
    """
    if at is None:
        sys.audit("concurview.event", lane, lane_kind, kind, t_ns, reason, text)
    else:
        sys.audit("concurview.event", lane, lane_kind, kind, t_ns, reason, text, at)


def now():
    return time.monotonic_ns()


def took(ns):
    """`191 µs`, `49.8 ms`, `0`."""
    if ns <= 0:
        return "0"
    if ns >= 1_000_000:
        return f"{ns / 1e6:.1f} ms"
    if ns >= 1000:
        return f"{ns / 1e3:.0f} µs"
    return f"{ns} ns"


def _caller():
    """(file, line) of the program's call into this module."""
    frame = sys._getframe(2)
    while frame is not None and frame.f_globals.get("PROBE_HELPER") is True:
        frame = frame.f_back
    return None if frame is None else (frame.f_code.co_filename, frame.f_lineno)


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


class Sock:
    """Our end of the connection: recv() and recv_into() as on a socket, which also note when each call
    that returned data ran, from which line, and the kernel's arrival stamp of that data (SO_TIMESTAMPNS,
    through recvmsg) - what `Read` draws. Everything else goes to the real socket."""

    def __init__(self, conn, offset):
        self.conn, self.offset = conn, offset
        self.copies = []  # (entered, returned, bytes, kernel stamp or None, (file, line)) per call that got data

    def __getattr__(self, name):
        return getattr(self.conn, name)

    def recv_into(self, buffer, nbytes=0, flags=0):
        view = memoryview(buffer)[:nbytes or None]
        t0 = time.monotonic_ns()
        got, anc, _flags, _addr = self.conn.recvmsg_into([view], 64, flags)  # EAGAIN raises, as recv_into
        if got:
            self.copies.append((t0, time.monotonic_ns(), got, self.kernel_stamp(anc), _caller()))
        return got

    def recv(self, bufsize, flags=0):
        t0 = time.monotonic_ns()
        data, anc, _flags, _addr = self.conn.recvmsg(bufsize, 64, flags)
        if data:
            self.copies.append((t0, time.monotonic_ns(), len(data), self.kernel_stamp(anc), _caller()))
        return data

    def kernel_stamp(self, ancdata):
        for level, kind, data in ancdata:
            if level == socket.SOL_SOCKET and kind == SO_TIMESTAMPNS and len(data) >= 16:
                sec, nsec = struct.unpack("qq", data[:16])
                return sec * 1_000_000_000 + nsec - self.offset
        return None


class Read:
    """One read, drawn (under concurview; nothing happens without it) as its two phases on a lane of its own:
    phase 1, waiting for the data to reach the kernel buffer; phase 2, copying it into the program's buffer.
    It also keeps what the program spent blocked in each phase, for the results table."""

    def __init__(self, peer, lane="kernel buffer", peer_lane="peer"):
        self.peer, self.sock, self.lane, self.peer_lane = peer, peer.sock, lane, peer_lane
        self.blocked = [0, 0]  # ns the program was blocked in phase 1, in phase 2
        self.asked = self.waiting = self.arrived = self.copied = None
        self.by, self.n = "", 0

    def phase1(self, blocked="", doing=""):
        """Phase 1 starts now: the program has asked for the data. `blocked`: the call it now waits in
        (its lane waits); `doing`: what it does instead."""
        t = self.asked = now()
        probe(self.lane, "wait", t, "empty: no data yet", "observed", lane_kind="kernel")
        probe(self.lane, "phase", t, "phase 1: waiting for the data to reach the kernel buffer",
              f"the program is blocked in {blocked}" if blocked else f"the program is not blocked: {doing}")
        if blocked:
            self.waiting = t
            probe("", "wait", t, f"{blocked}: blocked, waiting for data (phase 1)", "observed")

    def readable(self, what):
        """The readiness call the program waited in returned: it runs again, phase 2 is its to start."""
        t = now()
        self.blocked[0] += t - self.waiting
        self.waiting = None
        probe("", "run", t, f"{what}: the data is in the kernel buffer", "observed")

    def phase2(self, call):
        """Phase 2 as the socket noted it: the calls that copied the data, made by the program, which is
        blocked in them until the copy is done (synchronous IO)."""
        copies = self.sock.copies
        if not copies:
            return
        first, last = copies[0], copies[-1]
        self.n = sum(c[2] for c in copies)
        self.arrived = first[3] if first[3] is not None else self._sent()
        start = max(first[0], self.arrived)  # a call made before the data came copies once it has come
        self.copied, self.by = last[1], PROGRAM
        if self.waiting is not None:  # one call for both phases (blocking recv): phase 1 ends at the arrival
            self.blocked[0] += start - self.waiting
        self.blocked[1] += sum(c[1] - max(c[0], self.arrived) for c in copies)
        self._arrival(first[3] is not None)
        probe("", "wait", start, f"{call}: blocked while the kernel copies {self.n} B into the user buffer "
              "(phase 2)", "observed", at=first[4])
        self._copy(start, f"phase 2: copying {self.n} B into the user buffer for the program's {call}",
                   f"done by {PROGRAM}: the program is blocked in {call} until the copy is done", first[4])
        probe("", "run", self.copied, f"{call} returned {self.n} B: the data is in the user buffer", "observed",
              at=last[4])
        self._end(f"copied out by the program's {call}")

    def completed(self, arrived, done, n, by=KERNEL):
        """Phase 2 done by the kernel (or a helper) while the program ran: the data arrived at `arrived`
        and the completion was seen at `done`, the bytes already in the user buffer."""
        self.n, self.by, self.copied = n, by, done
        self.arrived = arrived if arrived is not None else self._sent()
        self._arrival(arrived is not None)
        self._copy(self.arrived, f"phase 2: {by.split(' (')[0]} copies {n} B into the user buffer",
                   f"done by {by}: the program is not blocked, it learns of it from the completion", None,
                   bound="at most ")
        self._end(f"copied out by {by.split(' (')[0]}")

    def row(self, model):
        """The results table's row: when the data came, the program's blocked time per phase, who copied."""
        return {"model": model, "bytes": self.n, "arrived_ms": (self.arrived - self.asked) / 1e6,
                "blocked": tuple(self.blocked), "copy_ns": self.copied - self.arrived, "by": self.by}

    # -- helpers -------------------------------------------------------------------------------------

    def _sent(self):
        return self.peer.sent_at()

    def _arrival(self, stamped):
        probe(self.lane, "ready", self.arrived, f"{self.n} B arrived: phase 1 is over",
              "stamped by the kernel (SO_TIMESTAMPNS)" if stamped else "reported by the peer (no kernel stamp)")

    def _copy(self, start, reason, text, at, bound=""):
        long = bound + took(self.copied - start)
        note = f"{text}; it took {long}, drawn at least one column wide (magnified when shorter)"
        probe(self.lane, "run", start, f"{reason} ({long}, magnified)", note, at=at)
        probe(self.lane, "phase", start, f"{reason} ({long}, magnified)", note, at=at)

    def _end(self, how):
        probe(self.lane, "phase", self.copied, f"done: {self.n} B in the user buffer", "observed")
        probe(self.lane, "close", self.copied, how, "observed")
        if self.peer_lane:
            t_sent = self._sent()
            probe(self.peer_lane, "run", t_sent, f"sends {self.n} B", "reported by the peer", lane_kind="peer")
            probe(self.peer_lane, "close", t_sent + 1, "sent", "reported by the peer")


class Peer:
    """A real process on loopback TCP that connects, waits `delay` seconds, then sends `size` bytes.

    `sock` is our end of the connection, as a `Sock`."""

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
        self.sock = Sock(self.conn, self.offset)
        self._sent = None

    def sent_at(self):
        """When the peer sent, on its own monotonic clock (the same clock: one machine)."""
        if self._sent is None:
            self._sent = int(self.proc.stdout.readline())
        return self._sent

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
