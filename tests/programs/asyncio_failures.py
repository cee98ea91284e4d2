"""Cancellation, asyncio.timeout, a TaskGroup whose child raises, and an exception nobody retrieves."""

import asyncio


async def sleeper():
    await asyncio.sleep(10)


async def boom():
    await asyncio.sleep(0.01)
    raise ValueError("boom")


async def main():
    t = asyncio.create_task(sleeper(), name="victim")
    await asyncio.sleep(0.01)
    t.cancel()
    try:
        await t
    except asyncio.CancelledError:
        print("cancelled ok")
    try:
        async with asyncio.timeout(0.02):
            await asyncio.sleep(10)
    except TimeoutError:
        print("timeout ok")
    try:
        async with asyncio.TaskGroup() as tg:
            tg.create_task(boom(), name="boomer")
            tg.create_task(sleeper(), name="sibling")
    except* ValueError as eg:
        print("taskgroup ok", repr(eg.exceptions[0]))
    lost = asyncio.create_task(boom(), name="unwatched")
    await asyncio.sleep(0.03)
    print("unwatched done", lost.done())


asyncio.run(main())
print("exit cleanly")
