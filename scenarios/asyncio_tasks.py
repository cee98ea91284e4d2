"""Two coroutines take turns on one thread: task sleeps 3 s, task2 sleeps 2 s, and the whole run takes about 3 s, not 5.

Watch for: both tasks print MainThread - asyncio is concurrency inside one
thread. Each `await asyncio.sleep(...)` is a switch: the task stops, the event
loop (the main thread) waits in epoll until the next timer is due, then runs
whichever task is ready. The total is max(3, 2), not 3 + 2.

What the lesson's code got wrong: `asynico.get_event_loop()` is a typo (and
get_event_loop() with no running loop is deprecated: use new_event_loop() or
asyncio.run()); `asyncio.wait()` no longer accepts bare coroutines (3.11), so
they are made tasks first and gathered; `run_until__complete` has one underscore too many; `@asyncio.coroutine` / `yield from` were
removed in Python 3.11 - `async def` / `await` replace them.
"""

import asyncio
import time
from threading import current_thread

SCENARIO = {
    "name": "asyncio-tasks",
    "title": "asyncio: two tasks, one thread",
    "topic": "asyncio",
    "params": {"task_sleep": 3.0, "task2_sleep": 2.0},
    "facts": [
        "two task lanes, both on MainThread",
        "each await is a wait followed later by a run",
        "total is about max(task_sleep, task2_sleep)",
    ],
}
P = SCENARIO["params"]


async def task():
    print('开始了')
    print(current_thread().name)
    await asyncio.sleep(P["task_sleep"])  # await 等同于原来的 yield from
    print('结束了')


async def task2():
    print('开始了')
    print(current_thread().name)
    await asyncio.sleep(P["task2_sleep"])
    print('结束了')


if __name__ == '__main__':
    loop = asyncio.new_event_loop()  # 获取一个事件循环对象

    ctime = time.time()
    t = [loop.create_task(task()), loop.create_task(task2())]
    loop.run_until_complete(asyncio.gather(*t))
    loop.close()
    print(time.time() - ctime)
