"""greenlet switches only when you tell it to: with the lesson's switch() calls commented out, play never runs, and time.sleep blocks the whole thread.

Watch for: the main greenlet starts eat with e.switch(). eat prints, then
time.sleep(1) stops everything - greenlet does not switch on IO, so no other
greenlet can run while eat sleeps; the whole thread waits. With the two
p.switch() lines commented out (as in the lesson), eat runs to its end, control
returns to its parent (main) and the program ends: play is created but never
runs, and its lines are never printed.

Set `switches` to true to enable the p.switch() calls: control then goes
eat -> play -> eat -> play, each switch() an explicit hand-over (save state +
switch). play ends first and control returns to main, its parent; eat is left
suspended at its last switch().

What the lesson's code got wrong: nothing in this part - but note that
`gevent` (next scenario) is what adds switching on IO on top of greenlet.
"""

import time

from greenlet import greenlet

SCENARIO = {
    "name": "greenlet-eat-play",
    "title": "greenlet: explicit switch, no switch on IO",
    "topic": "greenlet",
    "params": {"switches": False, "sleep": 1.0},
    "facts": [
        "with switches=False, play never runs: its lane stays ┄ (never), its lines never appear",
        "time.sleep inside eat blocks the whole thread: nothing else runs meanwhile",
        "with switches=True, control alternates eat -> play -> eat -> play at each switch()",
        "every greenlet runs on MainThread",
    ],
    "order": 1,
}
P = SCENARIO["params"]


# 遇到io不会切,初级模块,gevent模块基于它写的,处理io切换
def eat():
    print('我吃了一口')
    time.sleep(P["sleep"])
    if P["switches"]:  # 课上这一行是注释掉的: # p.switch()
        p.switch()
    print('我又吃了一口')
    if P["switches"]:  # 课上这一行是注释掉的: # p.switch()
        p.switch()


def play():
    print('我玩了一会儿')
    e.switch()
    print('我又玩了一会')


if __name__ == '__main__':
    e = greenlet(eat)
    p = greenlet(play)
    e.switch()
