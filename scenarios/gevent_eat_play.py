"""gevent switches on IO: after monkey.patch_all(), time.sleep hands the thread to the hub, so eat (1 s) and play (2 s) take about 2 s together, not 3.

Watch for: every greenlet is on MainThread, next to gevent's hub. When eat
calls time.sleep(1) - patched, it is gevent.sleep now - eat waits and the hub
runs: it starts play, which also sleeps, and then the hub waits in its event
loop until a timer is due. The total is max(1, 2) (the lesson measured
2.0165 s).

Set `patch` to false to skip monkey.patch_all(): time.sleep is then the real,
blocking one, eat blocks the whole thread for 1 s and play for 2 s, one after
the other, and the total is about 3 s.

What the lesson's code got wrong: `from gevent import monkey,monkey.patch_all()`
is a syntax error - import first, then call `monkey.patch_all()`, before
anything else imports time, socket or threading; `print'主'print(...)` is
Python 2 syntax run together on one line (two print() calls); the mixed tabs
and spaces in `play` and under `if __name__` would not even compile in Python 3.
"""

SCENARIO = {
    "name": "gevent-eat-play",
    "title": "gevent: monkey.patch_all() and the hub",
    "topic": "greenlet",
    "gevent": True,
    "params": {"patch": True, "eat_sleep": 1.0, "play_sleep": 2.0},
    "facts": [
        "patched: total is about max(eat_sleep, play_sleep), not the sum",
        "a hub lane runs between the greenlets: every sleep is a switch to the hub",
        "unpatched (patch=false): time.sleep blocks the thread, total is about the sum",
        "every greenlet runs on MainThread",
    ],
    "order": 2,
}
P = SCENARIO["params"]

# 以后使用,这一句必须写 (在导入 time / socket / threading 之前)
from gevent import monkey  # noqa: E402

if P["patch"]:
    monkey.patch_all()

import time  # noqa: E402

import gevent  # noqa: E402


def eat(name):
    print('%s 吃了一口' % name)
    time.sleep(P["eat_sleep"])
    print('%s 有吃了一口' % name)


def play(name):
    print('%s 玩了一会儿' % name)
    time.sleep(P["play_sleep"])
    print('%s 有玩了一会儿' % name)


if __name__ == '__main__':
    ctim = time.time()
    e = gevent.spawn(eat, 'lqz')
    p = gevent.spawn(play, 'lqz')
    e.join()  # 等待e执行完成
    p.join()
    print('主')
    print(time.time() - ctim)  # 2.0165154933929443
