"""Who wakes whom: an Event, a Queue, awaiting a task; explicit and default task names."""

import asyncio


async def setter(ev):
    await asyncio.sleep(0.02)
    ev.set()


async def waiter(ev):
    await ev.wait()
    return asyncio.current_task().get_name()


async def producer(q):
    for i in range(3):
        await q.put(i)
        await asyncio.sleep(0.01)


async def consumer(q):
    for _ in range(3):
        print("got", await q.get())


async def worker():
    await asyncio.sleep(0)
    return asyncio.current_task().get_name()


async def main():
    ev = asyncio.Event()
    w = asyncio.create_task(waiter(ev), name="the-waiter")
    asyncio.create_task(setter(ev))
    print("named", await w)
    q = asyncio.Queue()
    await asyncio.gather(producer(q), consumer(q))
    print("default", *await asyncio.gather(worker(), worker()))


asyncio.run(main())
