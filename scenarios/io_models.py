"""The five IO models side by side: the same message read five ways, one model under another on the same time axis - then what select(), poll() and epoll cost per call as idle descriptors pile up.

Watch for: each model has a lane of its own, its kernel buffer, drawn as the
read's two phases: phase 1 (░), waiting for the data to reach the kernel;
phase 2 (▓), copying it into the program's buffer - microseconds, so drawn
one column wide, magnified, and a step of its own. The models run one after
another (each with its own peer that sends the same message after `delay`)
on the one main thread, and the MainThread lane shows what the program does
meanwhile:

1. blocking - waiting (─) in recv() through both phases;
2. non-blocking - running (█) through phase 1, burning CPU on EAGAINs, then
   blocked in the recv() that copies;
3. multiplexing (epoll) - waiting in epoll through phase 1, then blocked in
   a recv() that only copies;
4. signal-driven - running other work through phase 1; blocked in the SIGIO
   handler's recv() for phase 2;
5. asynchronous (io_uring) - running other work through both phases: the
   kernel does phase 2, and the completion says the data is already there.

Models 1-4 are synchronous IO: the program is blocked in its own call while
phase 2 copies. The table at the end says how long the program was blocked
in each phase and who did phase 2. The last part times one readiness call
over 1, 100, 1000 and 4000 idle sockets: select() and poll() pass the whole
list to the kernel on every call and grow with it, epoll keeps the list in
the kernel and stays flat, and select() refuses any descriptor numbered 1024
or more - reported, not crashed.
"""

import fcntl
import os
import select
import signal
import socket
import sys
import time

from _iomodels import KERNEL, Peer, Read, idle_sockets, per_call_us, probe, took
from _iouring import Unavailable, open_backend
from io_multiplexing import readiness_call

SCENARIO = {
    "name": "io-models",
    "title": "IO models compared: five reads of one message, and select vs poll vs epoll",
    "topic": "io",
    "order": 8,
    "requires": ["linux", "epoll", "poll", "sigio"],
    "params": {"delay": 0.2, "size": 64, "fds": "1,100,1000,4000", "repeat": 100}, "limits": {"size": (1, 67_108_864), "fds": r"\d+(,\d+)*", "repeat": (1, 1_000_000)},
    "facts": [
        "every read has phase 1 (waiting for data) then phase 2 (copying it to the user buffer)",
        "blocking and epoll: MainThread waits through phase 1; non-blocking, signal-driven and async keep running",
        "models 1-4 are synchronous: the program is blocked in its own call during phase 2; only async's "
        "phase 2 is done by the kernel while the program runs",
        "select() and poll() cost grows with idle descriptors, epoll stays flat; select() refuses fd >= 1024",
    ],
}
P = SCENARIO["params"]
MODELS = ("blocking", "non-blocking", "epoll", "signal-driven", "async")


def start(model):
    """A fresh peer (the same message after the same delay), the user buffer, and the model's read lane."""
    probe("", "mark", 0, f"model {MODELS.index(model) + 1}: {model}")
    peer = Peer(P["delay"], P["size"])
    return peer, peer.sock, bytearray(P["size"]), Read(peer, f"kernel buffer · {model}", peer_lane=None)


def blocking():
    peer, sock, buf, read = start("blocking")
    cpu0 = time.process_time()
    read.phase1(blocked="recv()")
    sock.recv_into(buf, 0, socket.MSG_WAITALL)  # phase 1 and phase 2, both inside this one call
    read.phase2("recv()")
    return finish(peer, read, "blocking", "recv()", cpu0)


def nonblocking():
    peer, sock, buf, read = start("non-blocking")
    sock.setblocking(False)
    cpu0 = time.process_time()
    read.phase1(doing="it polls recv(), which fails at once with EAGAIN")
    eagains = n = 0
    while n < len(buf):
        try:
            n += sock.recv_into(memoryview(buf)[n:])  # the first one that finds data is phase 2
        except BlockingIOError:  # EAGAIN: nothing there yet, ask again at once
            eagains += 1
    read.phase2("recv()")
    probe("", "mark", 0, f"{eagains} × EAGAIN before recv() found the data")
    return finish(peer, read, "non-blocking", "recv()", cpu0)


def multiplexing():
    peer, sock, buf, read = start("epoll")
    ep = select.epoll()
    ep.register(sock, select.EPOLLIN)
    cpu0 = time.process_time()
    read.phase1(blocked="epoll.poll()")
    ep.poll()  # phase 1: blocked here until the socket is readable
    read.readable("epoll.poll() returned")
    sock.recv_into(buf)  # phase 2: only the copy
    read.phase2("recv()")
    ep.close()
    return finish(peer, read, "epoll", "recv() after epoll", cpu0)


def signal_driven():
    peer, sock, buf, read = start("signal-driven")
    got = []

    def on_sigio(signum, frame):  # runs on the main thread between bytecodes: drain until EAGAIN
        while True:
            try:
                chunk = sock.recv(1 << 20)  # phase 2
            except BlockingIOError:
                break
            if not chunk:
                break
            got.append(chunk)
        probe("", "mark", 0, f"SIGIO handler drained {sum(map(len, got))} B until EAGAIN")

    old = signal.signal(signal.SIGIO, on_sigio)
    fd = sock.fileno()
    fcntl.fcntl(fd, fcntl.F_SETOWN, os.getpid())
    fcntl.fcntl(fd, fcntl.F_SETFL, fcntl.fcntl(fd, fcntl.F_GETFL) | os.O_ASYNC | os.O_NONBLOCK)
    cpu0 = time.process_time()
    read.phase1(doing="it does its own work; SIGIO will interrupt it")
    deadline, work = time.monotonic_ns() + int((P["delay"] + 5) * 1e9), 0
    while sum(map(len, got)) < len(buf) and time.monotonic_ns() < deadline:
        work += 1  # the program's own work; the handler interrupts it
    fcntl.fcntl(fd, fcntl.F_SETFL, fcntl.fcntl(fd, fcntl.F_GETFL) & ~os.O_ASYNC)  # no SIGIO when the peer hangs up
    signal.signal(signal.SIGIO, old)
    read.phase2("recv() in the SIGIO handler")
    probe("", "mark", 0, f"did {work} units of other work meanwhile")
    return finish(peer, read, "signal-driven", "recv() in the SIGIO handler", cpu0)


def asynchronous():
    try:
        ring, why_not = open_backend("auto")
    except Unavailable as e:
        probe("", "mark", 0, f"async: no backend ({e})")
        return None
    if why_not:
        probe("", "mark", 0, f"io_uring not used, POSIX AIO instead: {why_not}")
    peer, sock, buf, read = start("async")
    ep = select.epoll()
    ep.register(ring.fileno(), select.EPOLLIN)  # readable when a read has completed
    cpu0 = time.process_time()
    read.phase1(doing=f"it submitted the read ({ring.label}) and does its own work")
    ring.submit(sock.fileno(), buf)  # returns at once: phases 1 and 2 are the kernel's job now
    n, work, t_arrived, t_done = 0, 0, None, None
    deadline, next_check = time.monotonic_ns() + int((P["delay"] + 5) * 1e9), 0
    while n < len(buf) and time.monotonic_ns() < deadline:
        work += 1  # the program's own work
        t = time.monotonic_ns()
        if t < next_check:
            continue
        next_check = t + 200_000  # look at the completion queue's eventfd every 0.2 ms
        if not ep.poll(0):
            continue
        t_done = time.monotonic_ns()
        for _rid, result, request in ring.completions():
            if result <= 0:
                raise SystemExit(f"io-models: the async read failed (result {result})")
            if t_arrived is None and request is not None:
                stamp = request.kernel_stamp_realtime()  # when the data reached the kernel buffer
                t_arrived = None if stamp is None else stamp - peer.offset
            n += result
            probe("", "mark", t_done, f"completion: {result} B already in the user buffer")
            if n < len(buf):
                ring.submit(sock.fileno(), buf, n)
    ep.close()
    ring.close()
    read.completed(t_arrived, t_done or time.monotonic_ns(), n,
                   by=KERNEL if ring.name == "io_uring" else "glibc's helper thread (asynchronous, emulated)")
    probe("", "mark", 0, f"did {work} units of other work meanwhile; recv() never called")
    return finish(peer, read, "async", ring.name if ring.name == "io_uring" else "POSIX AIO", cpu0)


def finish(peer, read, model, how, cpu0):
    """Close the model's peer and return its row for the table."""
    peer.close()
    return {**read.row(model), "how": how, "cpu_ms": (time.process_time() - cpu0) * 1000}


def per_call_costs(counts):
    """Median cost of one readiness call with nothing ready, for each count of idle sockets."""
    rows = []
    idle = idle_sockets(max(counts))
    for n in counts:
        socks = idle[:n]
        highest = max(s.fileno() for s in socks)
        row = {"fds": n, "highest_fd": highest}
        for api in ("select", "poll", "epoll"):
            try:
                wait = readiness_call(api, socks)
                wait(0)
            except ValueError:  # select() and a descriptor >= 1024
                row[api] = None
                continue
            row[api] = per_call_us(lambda: wait(0), P["repeat"])
        rows.append(row)
    for s in idle:
        s.close()
    return rows


def parse_counts(raw):
    try:
        counts = [int(x) for x in raw.split(",") if x.strip()]
    except ValueError:
        counts = []
    if not counts or min(counts) < 1 or max(counts) > 60000:
        print(f"io-models: fds must be comma-separated counts between 1 and 60000, not {raw!r}", file=sys.stderr)
        sys.exit(2)
    return counts


def results_table(rows):
    """The five models: when the data came, how long the program was blocked in each phase, who copied."""
    lines = [f"{'model':<14} {'data came':>9}   {'program blocked = phase 1 + phase 2':<36} {'CPU':>6}  "
             "phase 2 (the copy) done by"]
    for r in rows:
        p1, p2 = r["blocked"]
        blocked = f"{took(p1 + p2):>9} = {took(p1):>8} + {took(p2):>7}"
        lines.append(f"{r['model']:<14} {r['arrived_ms']:>6.1f} ms   {blocked:<36} {r['cpu_ms']:>3.0f} ms  "
                     f"{r['by']}: {r['how']}")
    lines.append("synchronous: the program is blocked in its own call until phase 2 is done (models 1-4); "
                 "asynchronous: the kernel does phase 2 while the program runs (model 5)")
    return "\n".join(lines)


if __name__ == "__main__":
    counts = parse_counts(P["fds"])
    rows = [r for r in (blocking(), nonblocking(), multiplexing(), signal_driven(), asynchronous()) if r]
    print(results_table(rows))
    costs = per_call_costs(counts)
    print(f"{'idle fds':>8} {'select':>12} {'poll':>12} {'epoll':>12}   (µs per call, nothing ready)")
    for c in costs:
        cells = ["refused" if c[a] is None else f"{c[a]:.1f}" for a in ("select", "poll", "epoll")]
        print(f"{c['fds']:>8} {cells[0]:>12} {cells[1]:>12} {cells[2]:>12}"
              + (f"   select: fd {c['highest_fd']} >= 1024" if c["select"] is None else ""))
