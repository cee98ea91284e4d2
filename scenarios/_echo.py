"""Shared by socket-echo: the client process (N concurrent echo clients on loopback), server-process stats, the result table.

Not a scenario itself (the underscore keeps it out of the picker). The
scenario imports it as a sibling module; the client side runs as its own
plain process (`python _echo.py PORT ...`), so it is never traced and never
competes with the server for the server's threads.
"""

import json
import os
import subprocess
import sys
import time

WAIT_SHOWN_NS = 100_000  # a readiness or accept wait at least this long is drawn as the lane waiting


def probe(lane, kind, t_ns=0, reason="", text="", lane_kind=""):
    """Tell concurview (if it is listening) that `lane` did `kind` at `t_ns` (monotonic; 0 = now)."""
    sys.audit("concurview.event", lane, lane_kind, kind, t_ns, reason, text)


class Shown:
    """`obj` as it is, except that the calls named in `waits` (name -> reason, or a function of `obj` giving
    it) are drawn, under concurview, as the calling lane waiting when they block for a while - one pair
    of events, and none for the many calls that return at once."""

    def __init__(self, obj, **waits):
        self._obj, self._waits = obj, waits

    def __getattr__(self, name):
        attr = getattr(self._obj, name)
        reason = self._waits.get(name)
        if reason is None:
            return attr

        # Named `probe`: concurview then records the line that made the call, not a line in here.
        def probe(*args, **kwargs):
            t0 = time.monotonic_ns()
            result = attr(*args, **kwargs)
            t1 = time.monotonic_ns()
            if t1 - t0 >= WAIT_SHOWN_NS:
                why = reason(self._obj) if callable(reason) else reason
                sys.audit("concurview.event", "", "", "wait", t0, why, "")
                sys.audit("concurview.event", "", "", "run", t1, "returned", "")
            return result

        return probe


def shown(obj, **waits):
    """`obj` with its blocking calls `waits` drawn as waits (see Shown)."""
    return Shown(obj, **waits)


# -- the server process ------------------------------------------------------------------------


def proc_status():
    """(OS threads in this process, RSS MiB, peak RSS MiB) from /proc (Linux), else what Python knows."""
    try:
        with open("/proc/self/status") as f:
            fields = dict(line.split(":", 1) for line in f if ":" in line)
        return (int(fields["Threads"]), int(fields["VmRSS"].split()[0]) / 1024,
                int(fields["VmHWM"].split()[0]) / 1024)
    except (OSError, KeyError, ValueError):
        import resource
        import threading

        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / (1024 if sys.platform != "darwin" else 1 << 20)
        return threading.active_count(), peak, peak


class Stats:
    """What the server saw: connections, bytes, peak OS threads, which OS threads served, memory."""

    def __init__(self):
        self.accepted = 0
        self.closed = 0
        self.bytes = 0
        self.serving_threads = set()  # native ids of the OS threads that ran a handler
        self.peak_threads, self.rss_before, _ = proc_status()
        self.peak_rss = self.rss_before

    def sample(self):
        threads, rss, _ = proc_status()
        self.peak_threads = max(self.peak_threads, threads)
        self.peak_rss = max(self.peak_rss, rss)


# -- the client process -----------------------------------------------------------------------


class Clients:
    """A separate process running `n` concurrent echo clients against 127.0.0.1:port.

    Started with posix_spawn where there is one: no fork() in Python (gevent's patched
    subprocess would fork here, and that fork is not part of the server's story).
    """

    def __init__(self, port, n, requests, size, sample, timeout):
        self.n = n
        argv = [sys.executable, os.path.abspath(__file__), str(port), str(n), str(requests), str(size),
                str(sample), str(timeout)]
        if hasattr(os, "posix_spawn"):
            self.out, w = os.pipe()
            self.pid = os.posix_spawn(sys.executable, argv, os.environ, file_actions=[
                (os.POSIX_SPAWN_DUP2, w, 1), (os.POSIX_SPAWN_DUP2, w, 2), (os.POSIX_SPAWN_CLOSE, self.out)])
            os.close(w)
            self.proc = None
        else:
            self.proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)

    def _read_all(self, timeout):
        """Everything the client process wrote, and its exit status (killed past `timeout`)."""
        import select

        if self.proc is not None:
            try:
                out, _ = self.proc.communicate(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                out, _ = self.proc.communicate()
            return out, self.proc.returncode
        deadline = time.monotonic() + timeout
        chunks = []
        while True:
            left = deadline - time.monotonic()
            if left <= 0 or not select.select([self.out], [], [], left)[0]:
                os.kill(self.pid, 9)
                break
            chunk = os.read(self.out, 65536)
            if not chunk:
                break
            chunks.append(chunk)
        os.close(self.out)
        _, status = os.waitpid(self.pid, 0)
        return b"".join(chunks), os.waitstatus_to_exitcode(status)

    def result(self, timeout):
        """The client process's report (a dict); kills it if it outlives `timeout`."""
        out, code = self._read_all(timeout)
        text = out.decode(errors="replace").strip()
        try:
            return json.loads(text.splitlines()[-1])
        except (ValueError, IndexError):
            return {"ok": 0, "failed": self.n, "errors": [f"client process: exit {code}: {text[-300:]}"],
                    "latencies_us": {}, "requests": 0, "seconds": 0.0, "sampled": []}


def show_clients(report, size):
    """Draw the sampled clients as lanes, from the times the client process reported (same monotonic clock)."""
    for i, t_conn, rounds, t_end in report["sampled"]:
        lane = f"client {i + 1}"
        src = "reported by the client process"
        probe(lane, "run", t_conn, "connected, first echo back", src, lane_kind="peer")
        probe(lane, "wait", t_conn + 1, "waits for every client to connect", src)
        for k, (t_send, t_echo) in enumerate(rounds):
            probe(lane, "run", t_send, f"send {size} B (request {k + 1})", src)
            probe(lane, "wait", t_send + 1, "waits for the echo", src)
            probe(lane, "run", t_echo, f"echo back after {(t_echo - t_send) / 1e3:.0f} µs", src)
        if t_end:
            probe(lane, "close", t_end, "closed", src)


def table(rows):
    """The result table: one line per style."""
    head = ("style", "clients", "ok", "lost", "req/s", "p50 ms", "p99 ms", "serving thr", "OS thr", "RSS MiB")
    lines = [head] + [tuple(str(c) for c in r) for r in rows]
    widths = [max(len(r[i]) for r in lines) for i in range(len(head))]
    return "\n".join("  ".join(c.rjust(w) for c, w in zip(r, widths)) for r in lines)


def row(style, report, stats, clients):
    lat = report["latencies_us"]
    lost = clients - report["ok"]
    return (style, clients, report["ok"], lost, f"{report['requests'] / max(report['seconds'], 1e-9):,.0f}",
            f"{lat.get('p50', float('nan')) / 1e3:.2f}", f"{lat.get('p99', float('nan')) / 1e3:.2f}",
            len(stats.serving_threads), stats.peak_threads, f"{stats.peak_rss:.0f}")


# The clients: one thread, one epoll loop (the cheapest Python client, so the server is what is
# measured). Each client connects and gets one untimed echo (the server has accepted it and serves
# it); once all have, so that the server really holds N connections at once, each does `requests`
# timed round trips, then closes.
def _client_main(port, n, requests, size, sample, timeout):
    import selectors
    import socket

    deadline = time.monotonic() + timeout
    payload = b"x" * size
    sampled_ids = {i * n // sample for i in range(sample)} if sample else set()
    errors = []
    lat = []
    sampled = {}
    sel = selectors.DefaultSelector()
    socks = []
    for i in range(n):
        try:
            s = socket.create_connection(("127.0.0.1", port), timeout=max(0.1, deadline - time.monotonic()))
        except OSError as e:
            errors.append(f"client {i + 1}: connect: {e}")
            continue
        s.setblocking(False)
        s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        socks.append((i, s))
    # state per client: [socket, bytes of the echo still expected, round trips left, t_send, rounds]
    state = {}

    def send(st):
        st[1] = size
        st[3] = time.monotonic_ns()
        st[0].sendall(payload)  # small payloads: the send buffer takes it at once

    def run_phase(timed):
        """Every client does its round trips (one untimed, or `requests` timed); returns the clients that finished."""
        active = 0
        for i, s in socks:
            if i in failed:
                continue
            st = state[i] = [s, 0, 1 if not timed else requests, 0, []]
            sel.register(s, selectors.EVENT_READ, i)
            send(st)
            active += 1
        while active and time.monotonic() < deadline:
            for key, _ in sel.select(0.5):
                i = key.data
                st = state[i]
                try:
                    data = st[0].recv(65536)
                except BlockingIOError:
                    continue
                except OSError as e:
                    data, err = b"", e
                else:
                    err = "connection closed by the server"
                if not data:
                    if len(errors) < 5:
                        errors.append(f"client {i + 1}: {err}")
                    failed.add(i)
                    sel.unregister(st[0])
                    active -= 1
                    continue
                st[1] -= len(data)
                if st[1] > 0:
                    continue
                t = time.monotonic_ns()
                if timed:
                    lat.append(t - st[3])
                    if i in sampled_ids:
                        st[4].append((st[3], t))
                st[2] -= 1
                if st[2]:
                    send(st)
                else:
                    sel.unregister(st[0])
                    active -= 1
        if active:
            errors.append(f"{active} clients still waiting after {timeout:g} s")
            for i, st in state.items():
                if i not in failed and st[2]:
                    failed.add(i)
                    sel.unregister(st[0])

    failed = set()
    run_phase(timed=False)
    t_all = time.monotonic_ns()
    run_phase(timed=True)
    t_first = t_all
    t_last = time.monotonic_ns()
    for i, s in socks:
        s.close()
        if i in sampled_ids:
            sampled[i] = [i, t_all, state[i][4] if i in state else [], time.monotonic_ns()]
    lat.sort()
    pct = {}
    if lat:
        pct = {"p50": lat[len(lat) // 2] / 1e3, "p99": lat[min(len(lat) - 1, int(len(lat) * 0.99))] / 1e3}
    ok = len(socks) - len(failed)
    print(json.dumps({"ok": ok, "failed": n - ok, "errors": errors, "latencies_us": pct, "requests": len(lat),
                      "seconds": (t_last - t_first) / 1e9, "sampled": [sampled[i] for i in sorted(sampled)]}))


if __name__ == "__main__":
    a = sys.argv[1:]
    _client_main(int(a[0]), int(a[1]), int(a[2]), int(a[3]), int(a[4]), float(a[5]))
