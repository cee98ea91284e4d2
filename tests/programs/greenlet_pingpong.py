"""greenlet: ping and pong hand control to each other explicitly, N times each."""
import sys

from greenlet import greenlet

N = int(sys.argv[1]) if len(sys.argv) > 1 else 5
seen = []


def ping():
    for i in range(N):
        seen.append(f"ping {i}")
        pong_g.switch()


def pong():
    for i in range(N):
        seen.append(f"pong {i}")
        ping_g.switch()


ping_g = greenlet(ping)
pong_g = greenlet(pong)
ping_g.switch()
print(" ".join(seen[:4]), "...", len(seen))
