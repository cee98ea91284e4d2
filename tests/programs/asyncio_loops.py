"""Every way to get an event loop is traced: asyncio.run, asyncio.Runner, a loop made by hand, a loop in a thread, eager tasks."""

import asyncio
import sys
import threading


async def job(label):
    await asyncio.sleep(0.005)
    return label


async def eager_main():
    loop = asyncio.get_running_loop()
    loop.set_task_factory(asyncio.eager_task_factory)
    assert loop.get_task_factory() is asyncio.eager_task_factory
    quick = asyncio.create_task(job_quick(), name="eager-quick")
    print("eager done at once", quick.done())
    print(await asyncio.create_task(job("eager-slow")))


async def job_quick():
    return "quick"


print(asyncio.run(job("run")))
with asyncio.Runner() as runner:
    print(runner.run(job("runner")))
loop = asyncio.new_event_loop()
print(loop.run_until_complete(job("manual")))
loop.close()


def in_thread():
    print(asyncio.run(job("thread")))


th = threading.Thread(target=in_thread, name="loop-thread")
th.start()
th.join()
if sys.version_info >= (3, 12):
    asyncio.run(eager_main())
