"""generators engine on real traced runs: send/yield ping-pong, a yield-from event loop, and programs it leaves alone."""

from __future__ import annotations

import sys

from recording import events, record_program
from concurview.trace.narrative import explain


def test_pingpong_alternates_strictly_between_consumer_and_its_driver(record):
    n = 4
    tl = record("generator-pingpong", n=n)
    assert tl.complete and tl.footer.exit_code == 0
    main = tl.lanes[0]
    (consumer,) = [lane for lane in tl.lanes if lane.kind == "generator"]
    assert consumer.name == "consumer" and consumer.tid == main.tid and consumer.parent == main.id

    # After "program starts", the run events go consumer, MainThread, consumer, ... strictly:
    # every send() hands the thread to the consumer, every yield hands it back to the producer
    # (plain code on MainThread). Start + n sends + close = n + 2 round trips; since 3.13,
    # close() of a generator suspended outside any try block ends it without running it.
    closes_run = sys.version_info < (3, 13)
    seq = [e for e in events(tl, "run")][1:]
    assert [tl.lanes[e.lane].name for e in seq] == ["consumer", "MainThread"] * (n + 1 + closes_run)
    for a, b in zip(seq, seq[1:]):
        assert b.cause == a.lane, "each run is caused by the lane that ran just before"

    # The consumer waits at its yield with the value it hands back, and what it keeps while suspended
    # (its locals: the "save state" of save state + switch); the producer waits in send().
    waits = events(tl, "wait")
    assert [e.reason for e in waits if e.lane == consumer.id][:3] == [
        "yield '' · saved r=''", "yield '200 OK' · saved r='200 OK', n=1", "yield '200 OK' · saved r='200 OK', n=2"]
    assert all(e.where.startswith("generator_pingpong.py:") for e in waits)
    assert [e.reason for e in waits if e.lane == main.id].count("send → consumer") == n + 1
    close = [e.reason for e in events(tl, "close") if e.lane == consumer.id]
    assert close == (["closed"] if closes_run else [])

    k = next(k for k in range(tl.n_switches) if tl.switch(k).lane == consumer.id)
    assert "MainThread -> consumer: MainThread waits (send → consumer at generator_pingpong.py:" in explain(tl, k)
    assert "consumer -> MainThread: consumer waits (yield '' · saved r=''" in explain(tl, k + 1)
    assert "saved r='200 OK', n=1 at generator_pingpong.py:" in explain(tl, k + 3)

    # Printed lines belong to whoever printed them.
    by_lane = {(tl.lanes[e.lane].name, e.text.split(" ")[0]) for e in tl.logs()}
    assert by_lane == {("MainThread", "[生产者]"), ("consumer", "[消费者]")}


def test_yield_from_loop_total_is_the_longest_sleep(record):
    a, b = 0.15, 0.3
    tl = record("yield-from-loop", task_sleep=a, task2_sleep=b)
    assert tl.complete and tl.footer.exit_code == 0
    gens = {lane.name: lane for lane in tl.lanes if lane.kind == "generator"}
    assert set(gens) == {"task", "task2"}, "the inner sleep() runs on its task's lane (yield from)"

    total = float(tl.logs()[-1].text)
    assert 0.9 * b <= total < a + b - 0.5 * min(a, b)

    waits = {e.lane: e.reason for e in events(tl, "wait") if e.lane in (gens["task"].id, gens["task2"].id)}
    assert waits[gens["task"].id] == f"yield ('sleep', {a!r})"
    assert waits[gens["task2"].id] == f"yield ('sleep', {b!r})"
    # Both tasks are suspended at the same time: their waits overlap.
    t = {name: [e.t for e in events(tl, "wait") if e.lane == lane.id][0] for name, lane in gens.items()}
    done = {name: [e.t for e in events(tl, "close") if e.lane == lane.id][0] for name, lane in gens.items()}
    assert t["task2"] < done["task"]
    assert [tl.lanes[e.lane].name for e in tl.logs()[:4]] == ["task", "task2", "task", "task2"]


def test_saved_locals_are_bounded_and_never_run_the_programs_repr(tmp_path):
    # Only the builtins' reprs, each cut at 40 characters, five locals at most: a repr that raises or
    # never returns is the program's business, not the tracer's (it is shown as <TypeName>).
    tl = record_program(tmp_path, """
        class Hostile:
            def __repr__(self):
                raise RuntimeError("repr called")

        class Mine(int):
            def __repr__(self):
                while True:
                    pass

        def worker():
            h = Hostile()
            m = Mine(3)
            s = 'x' * 1000
            big = 10 ** 100000
            pair = (1, 'a', None)
            more = 6
            x = yield 'ready'
            print('got', x)
            yield 'done'

        w = worker()
        next(w)
        w.send(5)
        print('ok')
    """)
    assert tl.complete and tl.footer.exit_code == 0
    assert [e.text for e in tl.logs()] == ["got 5", "ok"]
    (lane,) = [lane for lane in tl.lanes if lane.kind == "generator"]
    first = [e.reason for e in events(tl, "wait") if e.lane == lane.id][0]
    head, saved = first.split(" · saved ")
    assert head == "yield 'ready'"
    items = saved.split(", ")
    assert items[:2] == ["h=<Hostile>", "m=<Mine>"]
    assert items[2].startswith("s='xxxx") and len(items[2]) <= 2 + 40
    assert items[3] == "big=<int of 332193 bits>"
    assert items[4:] == ["pair=(1", "'a'", "None)", "…"], "five locals, then an ellipsis"


def test_programs_without_generator_coroutines_are_left_alone(tmp_path):
    # Plain iteration and generator expressions are not coroutines: no lanes, and on 3.11
    # the trace function is gone by the program's first line (nothing is paid per call).
    tl = record_program(tmp_path, """
        import sys

        def numbers(n):
            for i in range(n):
                yield i

        total = sum(x * x for x in numbers(100))
        print(total, sys.gettrace() is None)
    """)
    assert tl.complete and tl.footer.exit_code == 0
    assert [lane.kind for lane in tl.lanes if lane.kind == "generator"] == []
    assert [e.text for e in tl.logs()] == ["328350 True"]


def test_a_generator_that_raises_closes_its_lane_with_an_error(tmp_path):
    tl = record_program(tmp_path, """
        def worker():
            x = yield 'ready'
            raise ValueError(x)

        w = worker()
        next(w)
        try:
            w.send('boom')
        except ValueError as e:
            print('caught', e)
    """)
    assert tl.complete and tl.footer.exit_code == 0
    (lane,) = [lane for lane in tl.lanes if lane.kind == "generator"]
    errors = [e for e in events(tl, "error") if e.lane == lane.id]
    assert errors and errors[0].reason == "ValueError" and "boom" in errors[0].text
    assert [e.reason for e in events(tl, "close") if e.lane == lane.id] == ["raised ValueError"]
    assert [e.text for e in tl.logs() if e.kind == "log"] == ["caught boom"]
    assert tl.lanes[tl.event(int(tl.events_of_kind("run")[-1])).lane].name == "MainThread"
