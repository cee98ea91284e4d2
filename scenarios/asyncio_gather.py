"""Ten tasks are gathered at once, but an asyncio.Semaphore(3) lets only three at a time into the part that sleeps: the run takes about ceil(10/3) x 1 s = 4 s.

Watch for: every task starts at once and prints 开始了 (all on MainThread -
one thread, many tasks). Then only three get past `async with sem`; the
others wait in `Semaphore.acquire` (their lanes say so). Each time a task
leaves the section, the semaphore wakes the next waiter: its `ready` event
names the task that released it. The loop thread sleeps in epoll whenever
every task is waiting. Without the semaphore, all ten would sleep together
and the run would take 1 s; with Semaphore(1) it would take 10 s.

`asyncio.create_task(coro, name=...)` schedules a coroutine as a task (the
name is the lane's name); `asyncio.gather(*tasks)` waits for all of them and
returns their results in the order given, not the order they finished (given
bare coroutines, gather makes the tasks itself). A semaphore is a counter: `acquire` takes one (waiting when
it is zero), `release` gives it back - `async with` does both, even when the
body raises.
"""

import asyncio
import time
from threading import current_thread

SCENARIO = {
    "name": "asyncio-gather",
    "title": "asyncio: gather 10 tasks, a semaphore lets 3 in",
    "topic": "asyncio",
    "order": 1,
    "params": {"n_tasks": 10, "limit": 3, "task_sleep": 1.0}, "limits": {"n_tasks": (0, 10_000), "limit": (1, 10_000)},
    "facts": [
        "n_tasks task lanes, all on MainThread",
        "never more than `limit` tasks inside `async with sem` (the others wait in Semaphore.acquire)",
        "a waiter's ready event is caused by the task that released the semaphore",
        "total is about ceil(n_tasks / limit) x task_sleep",
    ],
}
P = SCENARIO["params"]


async def task(name, sem):
    print('%s 开始了' % name, current_thread().name)
    async with sem:  # 最多 limit 个任务同时进入
        print('%s 拿到信号量' % name)
        await asyncio.sleep(P["task_sleep"])  # 模拟 io
        print('%s 结束了' % name)
    return name


async def main():
    sem = asyncio.Semaphore(P["limit"])
    names = ['任务%s' % i for i in range(P["n_tasks"])]
    tasks = [asyncio.create_task(task(name, sem), name=name) for name in names]
    results = await asyncio.gather(*tasks)
    print(results)  # 按提交的顺序返回, 不是完成的顺序


if __name__ == '__main__':
    ctime = time.time()
    asyncio.run(main())
    print(time.time() - ctime)
