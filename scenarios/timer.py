"""threading.Timer runs a task once, after a delay, in a thread of its own - unless cancel() comes first.

Watch for: t.start() opens a timer lane (a Thread subclass) and returns at
once; MainThread has nothing left to do, so the program waits at exit for the
timer's thread (it is not a daemon). The timer lane waits `Timer: wait 2s`
(an Event.wait with a timeout), then runs task(name='lqz'), which prints
'我是大帅逼———lqz' on the timer's lane, not on MainThread. With cancel=True,
MainThread calls t.cancel() halfway through: the cancel sets the Event, the
timer wakes early (ready, caused by MainThread), sees it was cancelled and ends
without calling the task.

What the lesson's code got wrong: the commented-out line
`Timer(2,task,kwargs = ('lqz',)` passes a tuple as kwargs (Timer calls
task(**kwargs), which needs a mapping: kwargs={'name': 'lqz'}, or
args=('lqz',)) and misses a closing parenthesis. The comments say the delay is
one second (延迟一秒执行) - it is the first argument, 2 seconds - and that a
Timer "opens two threads" (本质是开两个线程): it is one thread, next to the main
thread.
"""

import time
from threading import Timer

SCENARIO = {
    "name": "timer",
    "title": "threading.Timer: a task after 2 s",
    "topic": "threads",
    "params": {"interval": 2.0, "cancel": False},
    "facts": [
        "a timer lane next to MainThread",
        "the timer waits about `interval`, then the task prints on the timer's lane",
        "with cancel=True the timer wakes early and the task never runs",
    ],
    "order": 3,
    "variants": [
        {
            "name": "timer-cancel",
            "title": "threading.Timer: cancelled before it fires",
            "params": {"cancel": True},
            "facts": [
                "the timer lane waits, is woken by MainThread's cancel(), and ends",
                "'我是大帅逼———lqz' is never printed",
            ],
            "order": 4,
        },
    ],
}
P = SCENARIO["params"]


def task(name):
    print('我是大帅逼———%s' % name)


if __name__ == '__main__':
    # t = Timer(2,task,kwargs = ('lqz',)  # 错: kwargs 要的是字典, 元组应该传给 args
    t = Timer(P["interval"], task, kwargs={'name': 'lqz'})  # 本质是开一个线程, 延迟 interval 秒执行
    t.start()
    if P["cancel"]:
        time.sleep(P["interval"] / 2)
        t.cancel()  # 还没到时间: 取消, task 不会执行
        print('取消了')
