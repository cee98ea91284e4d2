"""A coroutine is "save state + switch": a generator consumer and its producer hand control back and forth at every send() and yield, on one thread.

Watch for: the consumer is a generator. Each `c.send(n)` in the producer is a
switch: the producer (on the MainThread lane) stops, the consumer resumes
right after its `yield`, with all its local variables as it left them (the
saved state). Each `yield` is the switch back: the consumer stops and the
producer continues after its send(), holding the consumer's answer. The two
lanes run strictly in turn - never both, never in parallel: it is concurrency
on one thread, with no scheduler but the program itself.

The first `c.send(None)` only starts the generator up to its first yield (a
new generator cannot take a value yet); `c.close()` throws GeneratorExit in at
the yield, and the consumer ends.

What the lesson's text leaves out: a generator's `yield` can also receive a
value (`n = yield r`) - that is what turns a generator into a coroutine, and
what `yield from` (next scenario) and later `await` are built on.
"""

SCENARIO = {
    "name": "generator-pingpong",
    "title": "yield: save state + switch (producer / consumer)",
    "topic": "coroutines",
    "params": {"n": 5}, "limits": {"n": (0, 100_000)},
    "facts": [
        "one generator lane (consumer) next to MainThread, where the producer runs",
        "control alternates strictly: every send() runs the consumer, every yield runs the producer",
        "each yield saves the consumer's locals (the step says `saved r='200 OK', n=1`); it resumes with them",
    ],
    "order": 1,
}
P = SCENARIO["params"]


def consumer():
    r = ''
    while True:
        n = yield r  # 保存状态 + 切换: 暂停在这里, 把 r 交给 send() 的调用者
        if not n:
            return
        print('[消费者] 消费了 %s' % n)
        r = '200 OK'


def producer(c):
    c.send(None)  # 启动生成器: 运行到第一个 yield
    n = 0
    while n < P["n"]:
        n = n + 1
        print('[生产者] 生产了 %s' % n)
        r = c.send(n)  # 切换到 consumer, 直到它再次 yield
        print('[生产者] 消费者返回: %s' % r)
    c.close()


if __name__ == '__main__':
    c = consumer()
    producer(c)
