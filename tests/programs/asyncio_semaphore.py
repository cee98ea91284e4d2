"""asyncio: a TaskGroup of fetches, at most two inside a Semaphore at a time."""
import asyncio
import sys

N = int(sys.argv[1]) if len(sys.argv) > 1 else 6
DELAY = float(sys.argv[2]) if len(sys.argv) > 2 else 0.02
inside = 0
peak = 0


async def fetch(sem, i):
    global inside, peak
    async with sem:
        inside += 1
        peak = max(peak, inside)
        await asyncio.sleep(DELAY)
        inside -= 1
    return i


async def main():
    sem = asyncio.Semaphore(2)
    async with asyncio.TaskGroup() as tg:
        tasks = [tg.create_task(fetch(sem, i), name=f"fetch-{i}") for i in range(N)]
    print("results", [t.result() for t in tasks], "peak", peak)


asyncio.run(main())
