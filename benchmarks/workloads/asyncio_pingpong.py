"""Benchmark workload: two asyncio tasks pass a token through two Queues ROUNDS times; every get() waits on a future the other task completes.

Usage: asyncio_pingpong.py OUT.json [ROUNDS]. Writes its own timing as JSON.
"""

import asyncio
import json
import sys
import time


async def ping(rounds, to_pong, to_ping):
    for i in range(rounds):
        to_pong.put_nowait(i)
        await to_ping.get()


async def pong(rounds, to_pong, to_ping):
    for _ in range(rounds):
        to_ping.put_nowait(await to_pong.get())


async def main(rounds):
    to_pong, to_ping = asyncio.Queue(), asyncio.Queue()
    await asyncio.gather(ping(rounds, to_pong, to_ping), pong(rounds, to_pong, to_ping))


if __name__ == "__main__":
    out = sys.argv[1]
    rounds = int(sys.argv[2]) if len(sys.argv) > 2 else 20000
    t0, c0 = time.perf_counter(), time.process_time()
    asyncio.run(main(rounds))
    elapsed, cpu = time.perf_counter() - t0, time.process_time() - c0
    with open(out, "w") as f:
        json.dump({"elapsed_s": elapsed, "cpu_s": cpu, "wakeups": 2 * rounds}, f)
