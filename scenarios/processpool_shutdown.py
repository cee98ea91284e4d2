"""The same shutdown lesson with a pool of three processes: each worker is its own process with its own pid.

Watch for: one lane per worker process, named with its pid, next to the
MainThread of the parent. Each task is a run on a worker's lane named after the
call, task('屌丝4'); between tasks a worker waits `waiting for work` on the
pool's call queue (a pipe between processes). The tasks print the pid of the
process they run in: three different pids, none of them the parent's. Like the
thread pool, shutdown(wait=True) waits for every task, so '主' comes last, and
a submit() after shutdown() raises `RuntimeError: cannot schedule new futures
after shutdown`. In the parent, a thread of the pool (the executor's manager)
waits for results and hands out work.

Processes cost more to start than threads and share no memory: the task, its
arguments and its result travel through pipes, pickled. Here the workers are
made with fork, the default on Linux up to Python 3.13.

What the lesson's code got wrong (the same shape as the thread pool): the
shutdown, the late submit() and print('主') must stay inside
`if __name__ == '__main__':` - with the spawn start method (Windows, macOS) a
worker imports the main module, and code outside the guard runs again in every
worker; the late submit()'s RuntimeError is caught here so '主' is printed.
"""

import os
import time
from concurrent.futures import ProcessPoolExecutor

SCENARIO = {
    "name": "processpool-shutdown",
    "title": "ProcessPoolExecutor: tasks on 3 worker processes, shutdown",
    "topic": "processes",
    "params": {"workers": 3, "n_tasks": 6, "sleep": 1.0, "wait": True}, "limits": {"workers": (1, 256), "n_tasks": (0, 100_000)},
    "facts": [
        "one lane per worker process, each with its own pid, none the parent's",
        "one run per task on a worker's lane, named after the call",
        "total is about ceil(n_tasks / workers) x sleep, plus process start-up",
        "'主' after the last '结束'; submit() after shutdown() raises RuntimeError",
    ],
    "order": 1,
}
P = SCENARIO["params"]


def task(name):
    print('%s 开始 (pid %s)' % (name, os.getpid()))
    time.sleep(P["sleep"])
    print('%s 结束' % name)


if __name__ == '__main__':
    print('主进程 pid %s' % os.getpid())
    pool = ProcessPoolExecutor(P["workers"])
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
    print('主')
