"""python -m mypkg: an asyncio program with two tasks."""
import asyncio
import sys


async def job(n):
    await asyncio.sleep(0.01 * n)
    return n


async def main():
    print(await asyncio.gather(job(1), job(2)), sys.argv[1:])


asyncio.run(main())
