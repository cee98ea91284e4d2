"""greenlet engine on real traced runs: the lesson's eat/play facts, switch explanations, lanes that survive id() reuse."""

from __future__ import annotations

from concurview.trace.store import Timeline
from recording import record_program
from concurview.trace.narrative import explain

SLEEP = 0.15


def lane_named(tl: Timeline, name: str):
    found = [lane for lane in tl.lanes if lane.name == name]
    return found[0] if found else None


def runs(tl: Timeline) -> list:
    """Every run event, in order."""
    return [tl.event(int(i)) for i in tl.events_of_kind("run")]


def handovers(tl: Timeline) -> list[str]:
    """Names of the lanes that got the thread from another lane (runs with a cause), in order."""
    return [tl.lanes[e.lane].name for e in runs(tl) if e.cause is not None and e.cause != e.lane]


def test_lesson_code_play_never_runs_and_sleep_blocks_the_thread(record):
    tl = record("greenlet-eat-play", sleep=SLEEP)
    assert tl.complete and tl.footer.exit_code == 0
    eat = lane_named(tl, "eat")
    assert eat is not None and eat.kind == "greenlet"
    main = tl.lanes[0]
    assert {lane.tid for lane in tl.lanes} == {main.tid}, "greenlets live on the main thread"

    # play is created but never switched to: no lane, or a lane that never runs; its lines never print.
    play = lane_named(tl, "play")
    assert play is None or all(e.lane != play.id for e in runs(tl))
    texts = [(tl.lanes[e.lane].name, e.text) for e in tl.logs()]
    assert texts == [("eat", "我吃了一口"), ("eat", "我又吃了一口")]

    # time.sleep blocks the whole thread: while eat sleeps, nothing else on the thread runs.
    logs = tl.logs()
    t_sleep, t_wake = logs[0].t, logs[1].t
    assert t_wake - t_sleep >= 0.9 * SLEEP * 1e9
    between = [e for e in runs(tl) if t_sleep < e.t < t_wake and e.lane != eat.id]
    assert between == [], "no other lane got the thread during the blocking sleep"
    sleeps = [tl.event(int(i)) for i in tl.events_of_kind("wait") if "sleep" in (tl.event(int(i)).reason or "")]
    assert all(e.lane == eat.id for e in sleeps), "a recorded sleep belongs to eat, the greenlet that blocks"

    # eat ends and control returns to its parent, main.
    closes = [tl.event(int(i)) for i in tl.events_of_kind("close")]
    assert any(e.lane == eat.id and e.reason == "returned" for e in closes)
    assert handovers(tl) == ["eat", "MainThread"]


def test_switches_alternate_eat_and_play_and_are_explained(record):
    tl = record("greenlet-eat-play", switches=True, sleep=0.05)
    assert tl.complete and tl.footer.exit_code == 0
    assert handovers(tl) == ["eat", "play", "eat", "play", "MainThread"]
    texts = [(tl.lanes[e.lane].name, e.text) for e in tl.logs()]
    assert texts == [("eat", "我吃了一口"), ("play", "我玩了一会儿"), ("eat", "我又吃了一口"), ("play", "我又玩了一会")]

    eat, play = lane_named(tl, "eat"), lane_named(tl, "play")
    # Each switch: the origin waits for a reason at a line of the program; the target runs with cause = origin.
    k = next(k for k in range(tl.n_switches) if tl.switch(k).lane == play.id)
    s = tl.switch(k)
    assert s.cause == eat.id and s.stopped == eat.id
    assert s.stopped_reason == "switch → play"
    assert s.stopped_where.startswith("greenlet_eat_play.py:")
    line = explain(tl, k)
    assert "eat -> play" in line and "switch → play" in line
    # Back to eat: it resumes at the line where it switched away.
    back = tl.switch(k + 1)
    assert back.lane == eat.id and back.where == s.stopped_where
    assert "play -> eat" in explain(tl, k + 1)
    # play finishes first; eat stays suspended at its second switch().
    closes = {tl.lanes[tl.event(int(i)).lane].name for i in tl.events_of_kind("close")}
    assert "play" in closes and "eat" not in closes


def test_short_lived_greenlets_each_get_their_own_lane(tmp_path):
    # id() of a finished greenlet is reused almost every time: lanes are tagged on the object.
    tl = record_program(tmp_path, """
        from greenlet import greenlet

        def work(i):
            return i

        for i in range(200):
            greenlet(work).switch(i)
        print("done")
    """)
    assert tl.complete and tl.footer.exit_code == 0
    work = [lane for lane in tl.lanes if lane.kind == "greenlet"]
    assert len(work) == 200
    assert work[0].name == "work" and work[1].name == "work-2"
    closes = {tl.event(int(i)).lane for i in tl.events_of_kind("close")}
    assert {lane.id for lane in work} <= closes
    assert [e.text for e in tl.logs()] == ["done"]


def test_tracer_chains_and_the_program_keeps_working(tmp_path):
    # A program's own greenlet tracer gets ours as its previous one; both see every switch,
    # and isinstance() against greenlet.greenlet still holds for every greenlet.
    tl = record_program(tmp_path, """
        import greenlet

        seen = []
        prev = None

        def mine(event, args):
            seen.append(event)
            if prev is not None:
                prev(event, args)

        prev = greenlet.settrace(mine)

        def child():
            greenlet.getcurrent().parent.switch()

        g = greenlet.greenlet(child)
        g.switch()
        g.switch()
        greenlet.settrace(prev)
        print(len(seen), prev is not None, isinstance(greenlet.getcurrent(), greenlet.greenlet),
              isinstance(g, greenlet.greenlet), g.dead)
    """)
    assert tl.complete and tl.footer.exit_code == 0
    assert [e.text for e in tl.logs()] == ["4 True True True True"]
    assert handovers(tl) == ["child", "MainThread", "child", "MainThread"]
