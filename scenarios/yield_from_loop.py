"""How asyncio worked before async/await: a tiny event loop drives generator coroutines that `yield from` a sleep, and the total is the longest sleep, not the sum.

Watch for: task and task2 are generators. `yield from sleep(s)` passes the
request ('sleep', s) from the inner generator straight up to the loop: the
task stops there (its lane waits) and the loop - plain code on MainThread -
runs again. The loop keeps sleeping tasks in a timer heap, and when nothing
is ready it waits until the earliest timer is due, then sends the task its
wake-up. Both tasks sleep at the same time, so the total is about
max(task_sleep, task2_sleep).

The inner `sleep()` generator has no lane of its own: `yield from` runs it on
the task's lane, which is exactly what the delegation means.

What the lesson's code got wrong: `@asyncio.coroutine` was removed in Python
3.11 (generator-based coroutines cannot be used with asyncio any more - this
hand-written loop shows what it did); `loop.run_until__complete` has one
underscore too many; `asyncio.wait()` no longer accepts bare coroutines. Today
the same program is `async def` / `await asyncio.sleep()` (see asyncio-tasks).
"""

import heapq
import itertools
import time
from collections import deque

SCENARIO = {
    "name": "yield-from-loop",
    "title": "yield from: a tiny event loop of generator coroutines",
    "topic": "coroutines",
    "params": {"task_sleep": 1.0, "task2_sleep": 2.0},
    "facts": [
        "two generator lanes (task, task2) and the loop on MainThread",
        "each `yield from sleep()` is a switch from the task to the loop",
        "the loop waits for the earliest timer while both tasks sleep",
        "total is about max(task_sleep, task2_sleep), not the sum",
    ],
    "order": 2,
}
P = SCENARIO["params"]

def sleep(seconds):
    # 相当于以前的 asyncio.sleep(): 把 "睡多久" 交给事件循环, 等它唤醒
    yield ('sleep', seconds)


def task():  # 3.5 之前: @asyncio.coroutine 装饰的生成器
    print('开始了')
    yield from sleep(P["task_sleep"])  # asyncio.sleep(1) 模拟 io
    print('结束了')


def task2():
    print('开始了')
    yield from sleep(P["task2_sleep"])
    print('结束了')


class EventLoop:
    """Runs generator coroutines: each yield is a request, each send() a resume."""

    def __init__(self):
        self.ready = deque()  # coroutines that can run now
        self.timers = []  # heap of (due time, seq, coroutine)
        self.seq = itertools.count()

    def run_until_complete(self, coros):
        self.ready.extend(coros)
        while self.ready or self.timers:
            while self.ready:
                coro = self.ready.popleft()
                try:
                    request, seconds = coro.send(None)  # 切换到协程, 直到它 yield
                except StopIteration:
                    continue  # 协程结束了
                if request == 'sleep':
                    heapq.heappush(self.timers, (time.monotonic() + seconds, next(self.seq), coro))
            if self.timers:
                due, _, coro = heapq.heappop(self.timers)
                # nothing is ready: the loop waits for the earliest timer (a real loop waits in select/epoll)
                time.sleep(max(0.0, due - time.monotonic()))
                self.ready.append(coro)


if __name__ == '__main__':
    loop = EventLoop()  # 获取一个事件循环对象

    ctime = time.time()
    t = [task(), task2()]
    loop.run_until_complete(t)
    print(time.time() - ctime)
