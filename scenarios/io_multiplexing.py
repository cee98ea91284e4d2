"""IO multiplexing: one call - select(), poll() or epoll - waits until any of many sockets is readable; then recv() copies. One thread can watch thousands of connections.

Watch for: phase 1 (waiting for data, ░ on the kernel buffer lane) is now
spent blocked in the readiness call, not in recv(): the program lane waits in
select/poll/epoll until the kernel has the data, then runs, and the recv()
that follows only copies (phase 2, ▓, magnified to one column) - the program
is blocked in it for microseconds, so this model is still synchronous. The difference between the
three calls shows with many idle sockets (`idle_fds`): select() and poll()
hand the kernel the whole list on every call, so each call costs more as the
list grows, while epoll keeps the list in the kernel and costs the same.
select() also cannot watch a descriptor numbered 1024 or more: with
`idle_fds` around 1100 it refuses (ValueError), and this program reports that
instead of crashing. Windows has select() only; Linux has all three.
"""

import select

from _iomodels import Peer, Read, idle_sockets, per_call_us, probe, took

SCENARIO = {
    "name": "io-select",
    "title": "IO model 3: multiplexing with select()",
    "topic": "io",
    "order": 3,
    "requires": ["select"],
    "params": {"api": "select", "delay": 1.0, "size": 64, "idle_fds": 100}, "limits": {"api": ("select", "poll", "epoll"), "size": (1, 67_108_864), "idle_fds": (0, 100_000)},
    "facts": [
        "the program lane waits in the readiness call until the data arrives",
        "the recv() after it only copies",
        "select() refuses file descriptors >= 1024",
    ],
    "variants": [
        {"name": "io-poll", "title": "IO model 3: multiplexing with poll()", "params": {"api": "poll"},
         "order": 4, "requires": ["poll"]},
        {"name": "io-epoll", "title": "IO model 3: multiplexing with epoll", "params": {"api": "epoll"},
         "order": 5, "requires": ["epoll"]},
    ],
}
P = SCENARIO["params"]


def readiness_call(api, socks):
    """A function that waits (timeout in seconds, None = forever) until one of `socks` is readable."""
    if api == "select":
        return lambda timeout=None: select.select(socks, [], [], timeout)[0]
    if api == "poll":
        poller = select.poll()
        for s in socks:
            poller.register(s, select.POLLIN)
        return lambda timeout=None: poller.poll(None if timeout is None else timeout * 1000)
    if api == "epoll":
        ep = select.epoll()
        for s in socks:
            ep.register(s, select.EPOLLIN)
        return lambda timeout=None: ep.poll(-1 if timeout is None else timeout)
    raise SystemExit(f"api must be select, poll or epoll, not {api!r}")


if __name__ == "__main__":
    api = P["api"]
    if not hasattr(select, api):
        raise SystemExit(f"{api} is not available on this platform")
    idle = idle_sockets(P["idle_fds"])
    peer = Peer(P["delay"], P["size"])
    sock = peer.sock
    socks = [sock, *idle]
    highest = max(s.fileno() for s in socks)
    try:
        wait = readiness_call(api, socks)
        wait(0)
    except ValueError as e:  # select() and a descriptor >= 1024
        probe("", "mark", 0, f"{api}() refused {len(socks)} fds: {e} (highest fd {highest})")
        print(f"{api}() cannot watch {len(socks)} sockets: {e} (highest fd is {highest}; "
              "select() stops at 1024 - use poll() or epoll)")
        peer.close()
        raise SystemExit(0)
    buf = bytearray(P["size"])
    read = Read(peer)  # draws the read's two phases (under concurview)

    read.phase1(blocked=f"{api}() on {len(socks)} sockets")
    ready = wait()  # phase 1: blocked here until a socket is readable
    read.readable(f"{api}() returned {len(ready)} readable")
    n = sock.recv_into(buf)  # phase 2: only the copy, the data is already there
    read.phase2("recv()")

    cost = per_call_us(lambda: wait(0))  # nothing is readable again: the bare cost of asking
    peer.close()

    print(f"{api}() over {len(socks)} sockets costs {cost:.1f} µs a call; it waited "
          f"{took(read.blocked[0])} for data (phase 1); recv() then copied {n} B in "
          f"{took(read.blocked[1])} (phase 2): the program was blocked in both")
