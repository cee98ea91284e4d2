"""The five IO models side by side: the same message read five ways, one model under another on the same time axis - then what select(), poll() and epoll cost per call as idle descriptors pile up.

Watch for: each model has its own pair of lanes, the program's and the
kernel buffer's, run one after another (each with its own peer that sends
the same message after `delay`). Look down the column at each model's data
arrival (▒ on its kernel lane) and at what its program lane is doing:

1. blocking - waiting (─) in recv() through phase 1, woken to copy;
2. non-blocking - running (█) the whole time, burning CPU on EAGAINs;
3. multiplexing (epoll) - waiting in epoll, then a recv() that only copies;
4. signal-driven - running other work; the SIGIO handler copies;
5. asynchronous (io_uring) - running other work; the kernel copies, and the
   completion says the data is already in the buffer.

All of it runs on the one main thread; each model's program lane is that
thread while it runs that model. The last part times one readiness call over
1, 100, 1000 and 4000 idle sockets: select() and poll() pass the whole list
to the kernel on every call and grow with it, epoll keeps the list in the
kernel and stays flat, and select() refuses any descriptor numbered 1024 or
more - reported, not crashed.
"""

import fcntl
import os
import select
import signal
import sys
import time

from _iomodels import Peer, idle_sockets, per_call_us, probe
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
        "blocking and epoll wait through phase 1; non-blocking, signal-driven and async keep running",
        "only the async model's completion finds the data already copied (no recv() in the program)",
        "select() and poll() cost grows with idle descriptors, epoll stays flat; select() refuses fd >= 1024",
    ],
}
P = SCENARIO["params"]
MODELS = ("blocking", "non-blocking", "epoll", "signal-driven", "async")


def lanes(model):
    """The model's program lane and kernel lane (the program lane is the main thread running it)."""
    return f"MainThread · {model}", f"kernel buffer · {model}"


def start(model):
    prog, kernel = lanes(model)
    probe("", "mark", 0, f"model {MODELS.index(model) + 1}: {model}", "observed")
    peer = Peer(P["delay"], P["size"])  # a fresh peer: the same message, after the same delay
    probe(prog, "run", 0, f"{model}: starts reading {P['size']} B", "observed", lane_kind="main")
    probe(kernel, "wait", 0, "empty: no data yet", "observed", lane_kind="kernel")
    return peer, prog, kernel, bytearray(P["size"])


def finish(model, peer, n, t_arrived, t_copied, copied_by, t_start, cpu, blocked_ns=0):
    """Stamp the kernel lane, close the model's lanes, and return its row for the table."""
    prog, kernel = lanes(model)
    t_sent = peer.sent_at()
    if t_arrived is None:
        probe(kernel, "ready", t_sent, f"{n} B on the way in", "reported by the peer")
    else:
        probe(kernel, "ready", t_arrived, f"{n} B arrived", "stamped by the kernel (SO_TIMESTAMPNS)")
    probe(kernel, "close", t_copied, f"copied out by {copied_by}", "observed")
    t_end = time.monotonic_ns()
    probe(prog, "close", t_end, f"{model}: done, {n} B in the user buffer", "observed")
    peer.close()
    since = t_arrived if t_arrived is not None else t_sent
    return {"model": model, "bytes": n, "arrived_ms": (since - t_start) / 1e6, "blocked_ms": blocked_ns / 1e6,
            "after_arrival_us": (t_copied - since) / 1e3, "cpu_ms": cpu * 1000, "copied_by": copied_by}


def blocking():
    peer, prog, kernel, buf = start("blocking")
    cpu0, t_call = time.process_time(), time.monotonic_ns()
    probe(prog, "wait", t_call, "recv(): blocked, waiting for data", "observed")
    n, t_arrived = peer.recv_into(buf)  # both phases inside this one call
    t_back = time.monotonic_ns()
    probe(prog, "run", t_arrived or t_back, "woken: wake up + copy", "kernel stamp")
    return finish("blocking", peer, n, t_arrived, t_back, "recv()", t_call, time.process_time() - cpu0,
                  t_back - t_call)


def nonblocking():
    peer, prog, kernel, buf = start("non-blocking")
    peer.conn.setblocking(False)
    cpu0, t_start = time.process_time(), time.monotonic_ns()
    eagains = n = 0
    t_arrived = t_copied = None
    while n < len(buf):
        try:
            got, anc, _flags, _addr = peer.conn.recvmsg_into([memoryview(buf)[n:]], 64)
        except BlockingIOError:  # EAGAIN: nothing there yet, ask again at once
            eagains += 1
            continue
        if got == 0:
            break
        if t_arrived is None:
            t_copied, t_arrived = time.monotonic_ns(), peer.kernel_stamp(anc)
        n += got
    cpu = time.process_time() - cpu0
    probe(prog, "mark", t_copied, f"{eagains} × EAGAIN, then recv() copied {n} B",
          f"{cpu * 1000:.0f} ms of CPU spent polling")
    return finish("non-blocking", peer, n, t_arrived, t_copied, "the first recv() that found data", t_start, cpu)


def multiplexing():
    peer, prog, kernel, buf = start("epoll")
    ep = select.epoll()
    ep.register(peer.conn, select.EPOLLIN)
    cpu0, t_call = time.process_time(), time.monotonic_ns()
    probe(prog, "wait", t_call, "epoll: waiting until the socket is readable", "observed")
    ep.poll()  # phase 1
    t_ready = time.monotonic_ns()
    probe(prog, "run", t_ready, "epoll returned: readable", "observed")
    n, t_arrived = peer.recv_into(buf)  # phase 2: only the copy
    t_back = time.monotonic_ns()
    probe(prog, "mark", t_back, f"recv() copied {n} B", "observed")
    ep.close()
    return finish("epoll", peer, n, t_arrived, t_back, "recv() after epoll", t_call, time.process_time() - cpu0,
                  t_ready - t_call + (t_back - t_ready))


def signal_driven():
    peer, prog, kernel, buf = start("signal-driven")
    got, stamp, handled = [], [], []

    def on_sigio(signum, frame):  # runs on the main thread between bytecodes: drain until EAGAIN
        while True:
            try:
                chunk, anc, _flags, _addr = peer.conn.recvmsg(1 << 20, 64)
            except BlockingIOError:
                break
            if not chunk:
                break
            if not stamp:
                stamp.append(peer.kernel_stamp(anc))
            got.append(chunk)
        handled.append(time.monotonic_ns())
        probe(prog, "mark", handled[-1], f"SIGIO handler drained {sum(map(len, got))} B until EAGAIN", "observed")

    old = signal.signal(signal.SIGIO, on_sigio)
    fd = peer.conn.fileno()
    fcntl.fcntl(fd, fcntl.F_SETOWN, os.getpid())
    fcntl.fcntl(fd, fcntl.F_SETFL, fcntl.fcntl(fd, fcntl.F_GETFL) | os.O_ASYNC | os.O_NONBLOCK)
    cpu0, t_start = time.process_time(), time.monotonic_ns()
    deadline, work = t_start + int((P["delay"] + 5) * 1e9), 0
    while sum(map(len, got)) < len(buf) and time.monotonic_ns() < deadline:
        work += 1  # the program's own work; the handler interrupts it
    fcntl.fcntl(fd, fcntl.F_SETFL, fcntl.fcntl(fd, fcntl.F_GETFL) & ~os.O_ASYNC)  # no SIGIO when the peer hangs up
    signal.signal(signal.SIGIO, old)
    probe(prog, "mark", 0, f"did {work} units of other work meanwhile", "observed")
    data = b"".join(got)
    buf[:len(data)] = data
    return finish("signal-driven", peer, len(data), stamp[0] if stamp else None,
                  handled[0] if handled else time.monotonic_ns(), "the SIGIO handler", t_start,
                  time.process_time() - cpu0)


def asynchronous():
    try:
        ring, why_not = open_backend("auto")
    except Unavailable as e:
        probe("", "mark", 0, "async: no backend", str(e))
        return None
    if why_not:
        probe("", "mark", 0, "io_uring not used: falling back to POSIX AIO", why_not)
    peer, prog, kernel, buf = start("async")
    ep = select.epoll()
    ep.register(ring.fileno(), select.EPOLLIN)
    cpu0, t_start = time.process_time(), time.monotonic_ns()
    probe(prog, "phase", t_start, f"submit: read {len(buf)} B into the user buffer", ring.label)
    ring.submit(peer.conn.fileno(), buf)
    n, work, t_arrived, t_done = 0, 0, None, None
    deadline, next_check = t_start + int((P["delay"] + 5) * 1e9), 0
    while n < len(buf) and time.monotonic_ns() < deadline:
        work += 1  # the program's own work
        now = time.monotonic_ns()
        if now < next_check:
            continue
        next_check = now + 200_000  # look at the completion queue's eventfd every 0.2 ms
        if not ep.poll(0):
            continue
        t_done = time.monotonic_ns()
        for _rid, result, request in ring.completions():
            if result <= 0:
                raise SystemExit(f"io-models: the async read failed (result {result})")
            if t_arrived is None and request is not None:
                stamp = request.kernel_stamp_realtime()
                t_arrived = None if stamp is None else stamp - peer.offset
            n += result
            probe(prog, "phase", t_done, f"completion: {result} B already in the user buffer", ring.label)
            if n < len(buf):
                ring.submit(peer.conn.fileno(), buf, n)
    probe(prog, "mark", 0, f"did {work} units of other work meanwhile", "observed; recv() never called")
    ep.close()
    ring.close()
    return finish("async", peer, n, t_arrived, t_done or time.monotonic_ns(),
                  "the kernel (io_uring)" if ring.name == "io_uring" else "glibc's helper thread",
                  t_start, time.process_time() - cpu0)


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
            except ValueError as e:  # select() and a descriptor >= 1024
                row[api] = None
                probe("", "mark", 0, f"{api}() refused {n} fds", f"{e} (highest fd {highest})")
                continue
            row[api] = per_call_us(lambda: wait(0), P["repeat"])
            probe("", "mark", 0, f"{api}() over {n} idle fds: {row[api]:.1f} µs per call", "observed")
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


if __name__ == "__main__":
    counts = parse_counts(P["fds"])
    rows = [r for r in (blocking(), nonblocking(), multiplexing(), signal_driven(), asynchronous()) if r]
    print(f"{'model':<14} {'data arrived':>13} {'program blocked':>16} {'in buffer after':>16} {'CPU':>7}  copied by")
    for r in rows:
        print(f"{r['model']:<14} {r['arrived_ms']:>10.1f} ms {r['blocked_ms']:>13.1f} ms "
              f"{r['after_arrival_us']:>13.0f} µs {r['cpu_ms']:>4.0f} ms  {r['copied_by']}")
    costs = per_call_costs(counts)
    print(f"{'idle fds':>8} {'select':>12} {'poll':>12} {'epoll':>12}   (µs per call, nothing ready)")
    for c in costs:
        cells = ["refused" if c[a] is None else f"{c[a]:.1f}" for a in ("select", "poll", "epoll")]
        print(f"{c['fds']:>8} {cells[0]:>12} {cells[1]:>12} {cells[2]:>12}"
              + (f"   select: fd {c['highest_fd']} >= 1024" if c["select"] is None else ""))
