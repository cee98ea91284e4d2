"""Twenty tasks on a pool of three threads: shutdown(wait=True) waits for all of them, and the closed pool refuses new work.

Watch for: three worker lanes (ThreadPoolExecutor-0_0, _1, _2) and never more
than three tasks running at once. Each task is a run on its worker named after
the call, task('屌丝4'), that soon waits in `sleep 1.0s`; a worker with nothing
queued waits `waiting for work`. MainThread submits all twenty at once (submit
never blocks: the work queue just grows), then waits in shutdown(wait=True),
joining each worker in turn, so '主' is printed only after the last '结束'. The
whole run takes about ceil(20 / 3) = 7 sleeps, not 20.

With wait=False, shutdown() returns at once and '主' is printed while tasks are
still running - yet the program does not end early: the workers are not daemon
threads, so the interpreter waits for the queued tasks before it exits.

Either way the pool is closed: a submit() after shutdown() raises
`RuntimeError: cannot schedule new futures after shutdown`. Here it is caught
and printed, so the run ends cleanly.

What the lesson's code got wrong: shutdown(), the late submit() and print('主')
ended up outside `if __name__ == '__main__':` ("放到for外面" means below the for
loop, still inside the if); the uncaught RuntimeError of the late submit() would
end the program before print('主') ever ran; and the comment on print('主') talks
about "20个线程" - there are 3 threads running 20 tasks.
"""

import time
from concurrent.futures import ThreadPoolExecutor

SCENARIO = {
    "name": "threadpool-shutdown",
    "title": "ThreadPoolExecutor: 20 tasks, 3 threads, shutdown",
    "topic": "threads",
    "params": {"workers": 3, "n_tasks": 20, "sleep": 1.0, "wait": True}, "limits": {"workers": (1, 256), "n_tasks": (0, 100_000)},
    "facts": [
        "three worker lanes, never more than three running at once",
        "one run per task, named after the call: task('屌丝4')",
        "total is about ceil(n_tasks / workers) x sleep",
        "with wait=True '主' comes after the last '结束'; with wait=False before it",
        "submit() after shutdown() raises RuntimeError: cannot schedule new futures after shutdown",
    ],
    "order": 1,
    "variants": [
        {
            "name": "threadpool-shutdown-nowait",
            "title": "ThreadPoolExecutor: shutdown(wait=False)",
            "params": {"wait": False},
            "facts": [
                "shutdown(wait=False) returns at once: '主' comes before the tasks end",
                "the queued tasks still all run: the program waits for the workers at exit",
                "submit() after shutdown() still raises RuntimeError",
            ],
            "order": 2,
        },
    ],
}
P = SCENARIO["params"]


def task(name):
    print('%s 开始' % name)
    time.sleep(P["sleep"])
    print('%s 结束' % name)


if __name__ == '__main__':
    pool = ThreadPoolExecutor(P["workers"])
    for i in range(P["n_tasks"]):
        pool.submit(task, '屌丝%s' % i)

    # 放到for外面
    pool.shutdown(wait=P["wait"])  # 等待所有任务完成,并且把池关闭
    # 问题:如果关了还能再提交任务嘛?
    # 回答:不能再提交了
    try:
        pool.submit(task, 'sddddd')
    except RuntimeError as e:
        print('RuntimeError: %s' % e)
    print('主')  # wait=True: 20 个任务都执行完了才执行; wait=False: 立马执行
