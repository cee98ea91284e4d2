"""Single-threaded socket concurrency: one echo server serves N clients at once - with selectors, gevent or asyncio on ONE OS thread, or with a thread per client.

Watch for: with `style` selectors, gevent or asyncio, one OS thread serves
every connection. selectors: the program's own loop waits in select() (epoll
on Linux) until some sockets are ready, then runs a short callback for each -
accept, recv, send - and never blocks in one of them. gevent: StreamServer
starts a greenlet per connection; each recv()/sendall() that would block
switches to the hub, whose event loop is the same epoll wait. asyncio streams:
a task per connection; each `await reader.read()` hands the thread back to
the event loop. threads: one OS thread per client, each blocked in its own
recv() - the kernel does the multiplexing, at the price of a thread (stack,
memory, scheduling) per connection.

The clients run in a separate process (never traced): each connects, waits
until all `clients` have connected, then does `requests` round trips of
`size` bytes. A `sample` of them is drawn as lanes from the times they
report; the server's per-connection greenlets, tasks or threads are traced
only for the first `sample` connections (the rest run untraced and are
counted), so even 1000 clients keep the diagram readable.

The result table at the end compares styles: requests/s, p50/p99 round-trip
latency, the OS threads that served connections, the process's peak OS
threads and peak memory (RSS). Run it once per style (the variants
socket-echo-gevent, -asyncio, -threads) with the same `clients`, or all four
in one table with `style` all (socket-echo-compare).
"""

SCENARIO = {
    "name": "socket-echo",
    "title": "Socket echo server: selectors (one thread)",
    "topic": "sockets",
    "params": {"style": "selectors", "clients": 100, "requests": 10, "size": 64, "sample": 5, "timeout": 30.0}, "limits": {"style": ("selectors", "gevent", "asyncio", "threads", "all"), "clients": (1, 10_000), "requests": (1, 1_000_000), "size": (1, 67_108_864), "timeout": (0.001, None)},
    "facts": [
        "selectors, gevent and asyncio: one OS thread serves every connection",
        "threads: one OS thread per connection",
        "every client gets all its echoes; no connection is lost",
        "only `sample` client lanes and `sample` per-connection lanes are drawn",
        "the result table: requests/s, p50/p99 latency, threads, memory",
    ],
    "variants": [
        {"name": "socket-echo-gevent", "title": "Socket echo server: gevent StreamServer (one thread)",
         "params": {"style": "gevent"}, "order": 1},
        {"name": "socket-echo-asyncio", "title": "Socket echo server: asyncio streams (one thread)",
         "params": {"style": "asyncio"}, "order": 2},
        {"name": "socket-echo-threads", "title": "Socket echo server: a thread per client",
         "params": {"style": "threads"}, "order": 3},
        {"name": "socket-echo-compare", "title": "Socket echo server: the four styles, one table",
         "params": {"style": "all"}, "order": 4,
         "description": "Runs the echo benchmark once per style - selectors, gevent, asyncio, threads - each "
                        "server in its own fresh, untraced process with the same clients, and prints one result "
                        "table: requests/s, p50/p99 latency, serving and peak OS threads, peak RSS. Raise `clients` "
                        "to 1000 to see the one-thread styles keep one thread while thread-per-client needs 1000."},
    ],
}
P = SCENARIO["params"]
STYLES = ("selectors", "gevent", "asyncio", "threads")

import json  # noqa: E402
import sys  # noqa: E402

if sys.argv[1:2] == ["--params"]:  # style=all runs each style as `python socket_echo.py --params {...}`
    P.update(json.loads(sys.argv[2]))

if P["style"] == "gevent":
    # gevent first, before socket, threading or time are imported (concurview may have done it already).
    from gevent import monkey

    if not monkey.is_module_patched("socket"):
        monkey.patch_all()

import os  # noqa: E402
import selectors  # noqa: E402
import socket  # noqa: E402
import subprocess  # noqa: E402
import threading  # noqa: E402
import time  # noqa: E402

from _echo import Clients, Stats, probe, row, show_clients, shown, table  # noqa: E402

# Only the first `sample` per-connection greenlets/tasks/threads get lanes (concurview reads this;
# without concurview it means nothing): per family of lanes, conn-1, conn-2, ...
os.environ["CONCURVIEW_MAX_LANES"] = str(max(1, P["sample"]))
BUF = 65536


def serve_selectors(listener, stats, deadline):
    """One thread, one loop: wait until sockets are ready, then do only what will not block."""
    sel = shown(selectors.DefaultSelector(), select=lambda s: f"select(): waiting on {len(s.get_map())} sockets")
    listener.setblocking(False)
    sel.register(listener, selectors.EVENT_READ)
    pending = {}  # conn -> bytes still to send back

    def accept():
        conn, _ = listener.accept()
        conn.setblocking(False)
        sel.register(conn, selectors.EVENT_READ)
        stats.accepted += 1
        stats.sample()

    def read(conn):
        data = conn.recv(BUF)
        if not data:
            sel.unregister(conn)
            conn.close()
            stats.closed += 1
            return
        stats.bytes += len(data)
        stats.serving_threads.add(threading.get_native_id())
        write(conn, data)

    def write(conn, data):
        try:
            sent = conn.send(data)
        except BlockingIOError:
            sent = 0
        if sent < len(data):  # the kernel's send buffer is full: finish when it is writable
            pending[conn] = data[sent:]
            sel.modify(conn, selectors.EVENT_WRITE)
        elif conn in pending:
            del pending[conn]
            sel.modify(conn, selectors.EVENT_READ)

    while stats.closed < stats.accepted or stats.accepted < P["clients"]:
        if time.monotonic() > deadline:
            break
        for key, mask in sel.select(timeout=0.5):
            if key.fileobj is listener:
                accept()
            elif mask & selectors.EVENT_WRITE:
                write(key.fileobj, pending[key.fileobj])
            else:
                read(key.fileobj)
    sel.close()


def serve_gevent(listener, stats, deadline):
    """gevent's StreamServer: a greenlet per connection; blocking-looking calls switch to the hub."""
    import gevent
    from gevent.event import Event
    from gevent.server import StreamServer

    all_closed = Event()

    def handle(conn, address):
        stats.accepted += 1
        stats.sample()
        while True:
            data = conn.recv(BUF)  # another greenlet runs while this one waits
            if not data:
                break
            stats.bytes += len(data)
            stats.serving_threads.add(threading.get_native_id())
            conn.sendall(data)
        conn.close()
        stats.closed += 1
        if stats.closed >= P["clients"]:
            all_closed.set()

    server = StreamServer(listener, handle, spawn=P["clients"] + 1)
    server.start()
    all_closed.wait(timeout=max(0.0, deadline - time.monotonic()))
    server.stop(timeout=1)
    gevent.sleep(0)


def serve_asyncio(listener, stats, deadline):
    """asyncio streams: a task per connection; each await hands the thread back to the event loop."""
    import asyncio

    all_closed = asyncio.Event()  # bound to the loop on first use (Python >= 3.10)

    async def handle(reader, writer):
        stats.accepted += 1
        stats.sample()
        while True:
            data = await reader.read(BUF)
            if not data:
                break
            stats.bytes += len(data)
            stats.serving_threads.add(threading.get_native_id())
            writer.write(data)
            await writer.drain()
        writer.close()
        stats.closed += 1
        if stats.closed >= P["clients"]:
            all_closed.set()

    async def main():
        server = await asyncio.start_server(handle, sock=listener, backlog=P["clients"])
        try:
            await asyncio.wait_for(all_closed.wait(), max(0.0, deadline - time.monotonic()))
        except asyncio.TimeoutError:
            pass
        server.close()

    asyncio.run(main())


def serve_threads(listener, stats, deadline):
    """Thread per client: each connection gets its own OS thread, blocked in its own recv()."""
    lock = threading.Lock()
    workers = []

    def handle(conn, traced):
        if traced:
            conn = shown(conn, recv=f"recv fd={conn.fileno()}")
        while True:
            data = conn.recv(BUF)
            if not data:
                break
            with lock:
                stats.bytes += len(data)
                stats.serving_threads.add(threading.get_native_id())
            conn.sendall(data)
        conn.close()
        with lock:
            stats.closed += 1

    listener = shown(listener, accept="accept(): waiting for a client")
    listener.settimeout(0.5)
    while stats.accepted < P["clients"] and time.monotonic() < deadline:
        try:
            conn, _ = listener.accept()
        except socket.timeout:
            continue
        conn.settimeout(None)
        stats.accepted += 1
        t = threading.Thread(target=handle, args=(conn, stats.accepted <= P["sample"]),
                             name=f"conn-{stats.accepted}", daemon=True)
        t.start()
        workers.append(t)
        stats.sample()
    for t in workers:
        t.join(timeout=round(max(0.0, deadline - time.monotonic()), 1))


SERVERS = {"selectors": serve_selectors, "gevent": serve_gevent, "asyncio": serve_asyncio,
           "threads": serve_threads}


def compare_all():
    """style=all: each style in its own fresh process (gevent patches the whole process), one table."""
    rows = []
    for style in STYLES:
        t0 = time.monotonic_ns()
        probe(f"{style} server", "run", t0, f"python socket_echo.py with style={style}", lane_kind="process")
        probe("", "wait", t0, f"waits for the {style} run")
        try:
            done = subprocess.run([sys.executable, os.path.abspath(__file__), "--params",
                                   json.dumps({**P, "style": style})],
                                  capture_output=True, text=True, timeout=P["timeout"] + 10)
        except subprocess.TimeoutExpired as e:
            done = subprocess.CompletedProcess(e.cmd, "timeout", "", f"timed out after {e.timeout:g} s")
        got = [json.loads(line[5:]) for line in done.stdout.splitlines() if line.startswith("ROW: ")]
        rows.append(got[0] if got else (style, P["clients"], 0, P["clients"], "-", "-", "-", "-", "-", "-"))
        probe(f"{style} server", "close", 0, f"{rows[-1][4]} req/s" if got else f"failed: exit {done.returncode}")
        probe("", "run", 0, f"the {style} run ended")
        print(f"{style}: {rows[-1][4]} req/s" if got else f"{style}: failed\n{done.stderr.strip()[-500:]}")
    result = table(rows)
    print(result)
    probe("", "mark", 0, f"{P['clients']} clients: " + ", ".join(f"{r[0]} {r[4]} req/s" for r in rows))


if __name__ == "__main__":
    style, n = P["style"], P["clients"]
    if style == "all":
        compare_all()
        raise SystemExit(0)
    if style not in STYLES:
        raise SystemExit(f"style must be one of {', '.join(STYLES)} or all, not {style!r}")
    if not (1 <= n <= 5000 and 1 <= P["requests"] <= 100_000 and 1 <= P["size"] <= 65536 and P["sample"] >= 0):
        raise SystemExit("clients must be 1..5000, requests 1..100000, size 1..65536 (one echo fits the "
                         "socket buffers, so a client never blocks in send) and sample >= 0")
    listener = socket.create_server(("127.0.0.1", 0), backlog=n)
    port = listener.getsockname()[1]
    stats = Stats()
    print(f"{style} echo server on 127.0.0.1:{port}: {n} clients x {P['requests']} requests of {P['size']} B")
    clients = Clients(port, n, P["requests"], P["size"], P["sample"], P["timeout"])
    deadline = time.monotonic() + P["timeout"]
    SERVERS[style](listener, stats, deadline)
    listener.close()
    stats.sample()
    report = clients.result(timeout=max(1.0, deadline - time.monotonic()))
    show_clients(report, P["size"])

    lost = n - report["ok"]
    print(f"served {stats.accepted} connections, {stats.closed} closed cleanly, {stats.bytes} B echoed; "
          f"OS threads that served them: {len(stats.serving_threads)}")
    for err in report["errors"]:
        print("client error:", err)
    result = table([row(style, report, stats, n)])
    print(result)
    if sys.argv[1:2] == ["--params"]:
        print("ROW:", json.dumps(row(style, report, stats, n)))
    probe("", "mark", 0, f"{style}: {report['requests'] / max(report['seconds'], 1e-9):,.0f} req/s, "
          f"{len(stats.serving_threads)} serving thread(s), {lost} lost")
