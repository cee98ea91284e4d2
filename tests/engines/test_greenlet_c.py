"""The greenlet engine's C tracer on real runs: the same trace as the Python tracer, common switches answered in C, chaining, failures counted, the lane cap."""

from __future__ import annotations

import os
import time

import greenlet
import pytest
from recording import events, record_program

from concurview.engines import speedups
from concurview.engines.greenlet_engine import ENV_TRACER, GreenletEngine
from concurview.engines.recorder import Recorder
from concurview.engines.where import Where

pytestmark = pytest.mark.skipif(speedups.native is None, reason="tests the C speedups (not built, or CONCURVIEW_PURE=1)")

# Plain greenlets (named when their function is called, one that raises, a throw) and gevent
# (sleep(0), timed sleeps, an Event, joins, a Timeout): every kind of explanation the engine has.
MIXED = """
    import gevent
    import greenlet
    from gevent.event import Event

    def child(n):
        for i in range(n):
            greenlet.getcurrent().parent.switch(i)
        return n

    def boom():
        raise ValueError("boom")

    g = greenlet.greenlet(child)
    while not g.dead:
        g.switch(3)
    try:
        greenlet.greenlet(boom).switch()
    except ValueError:
        pass
    h = greenlet.greenlet(child)
    h.switch(5)
    try:
        h.throw(KeyError("stop"))
    except KeyError:
        pass

    ready = Event()

    def eat():
        for _ in range(3):
            gevent.sleep(0)
        gevent.sleep(0.03)  # well after late's 1 ms Timeout, however busy the machine: the order is fixed
        ready.set()

    def play():
        ready.wait()
        gevent.sleep(0)

    def late():
        try:
            with gevent.Timeout(0.001):
                gevent.sleep(1)
        except gevent.Timeout:
            pass

    gevent.joinall([gevent.spawn(eat), gevent.spawn(play), gevent.spawn(late)])
    print("done")
"""


def _comparable(tl) -> list[tuple]:
    """The trace without times, lane ids or the hub's idle polls (how long a poll lasts is timing)."""
    name = {lane.id: lane.name for lane in tl.lanes}
    out = []
    for e in events(tl, "open", "run", "wait", "ready", "close", "log", "error"):
        if name[e.lane] == "Hub" and e.reason and (e.reason.startswith("event loop idle") or
                                                   e.reason.endswith(" returned")):
            continue
        out.append((name[e.lane], e.kind, e.reason, e.where, name.get(e.cause), e.text))
    return out


def test_c_and_python_tracers_record_the_same_trace(tmp_path, monkeypatch):
    monkeypatch.setenv(ENV_TRACER, "python")
    python = record_program(tmp_path, MIXED)
    monkeypatch.delenv(ENV_TRACER)
    c = record_program(tmp_path, MIXED)
    for tl in (python, c):
        assert tl.complete and tl.footer.exit_code == 0
        assert [e.text for e in tl.logs()] == ["done"]
    assert [(lane.name, lane.kind) for lane in c.lanes] == [(lane.name, lane.kind) for lane in python.lanes]
    ours, reference = _comparable(c), _comparable(python)
    assert ours == reference
    reasons = {e[2] for e in ours}
    assert {"sleep(0)", "sleep 0.03s", "returned", "raised", "throw"} <= reasons


def test_common_switches_are_answered_in_c(tmp_path):
    # slow_calls counts the tracer's calls into the engine's Python methods: after the first
    # switch of each greenlet from each line, ping-pong and gevent.sleep(0) need none.
    tl = record_program(tmp_path, """
        import gevent
        import greenlet

        tracer = greenlet.gettrace()

        def ping(n):
            for _ in range(n):
                pong_g.switch()

        def pong():
            while True:
                ping_g.switch()

        ping_g, pong_g = greenlet.greenlet(ping), greenlet.greenlet(pong)
        before = tracer.slow_calls
        ping_g.switch(5000)
        print("ping-pong", tracer.slow_calls - before)

        def worker(steps):
            for _ in range(steps):
                gevent.sleep(0)

        before = tracer.slow_calls
        gevent.joinall([gevent.spawn(worker, 200) for _ in range(20)])
        print("gevent", tracer.slow_calls - before)
    """)
    assert tl.complete and tl.footer.exit_code == 0
    counts = dict(e.text.split() for e in tl.logs())
    assert int(counts["ping-pong"]) <= 10, "10,000 switches, a handful of first sights"
    assert int(counts["gevent"]) <= 10 * 21, "4,000 sleeps: a few per greenlet, none per switch"
    waits = [e for e in events(tl, "wait") if e.reason == "sleep(0)"]
    assert len(waits) == 20 * 200 and {e.where for e in waits} == {"prog.py:22"}  # the worker's sleep(0) line


def test_a_tracer_failure_is_counted_and_the_program_goes_on(tmp_path):
    # A program that puts something else under the engine's attribute: that switch cannot be
    # recorded, the tracer says so once (a log line) and keeps tracing the rest.
    tl = record_program(tmp_path, """
        import greenlet

        def child():
            greenlet.getcurrent().parent.switch()

        odd = greenlet.greenlet(child)
        odd._concurview = "not the engine's"
        odd.switch()
        odd.switch()
        ok = greenlet.greenlet(child)
        ok.switch()
        ok.switch()
        print("still running", greenlet.gettrace() is not None)
    """)
    assert tl.complete and tl.footer.exit_code == 0
    logs = tl.logs()
    failure = [e.text for e in logs if e.reason == "concurview"]
    assert len(failure) == 1 and "greenlet tracer failed" in failure[0] and "TypeError" in failure[0]
    assert logs[-1].text == "still running True"
    # Both are declared when created; the one whose attribute the program replaced is not followed.
    child = [lane for lane in tl.lanes if lane.name.startswith("child")]
    assert [lane.name for lane in child] == ["child", "child-2"]
    assert sum(1 for e in events(tl, "run") if e.lane == child[0].id) == 0
    assert sum(1 for e in events(tl, "run") if e.lane == child[1].id) == 2


def test_past_the_lane_cap_greenlets_record_nothing_and_stay_in_c(tmp_path):
    tl = record_program(tmp_path, """
        import os
        os.environ["CONCURVIEW_MAX_LANES"] = "3"

        import gevent
        import greenlet

        def worker(steps):
            for _ in range(steps):
                gevent.sleep(0)

        tracer = greenlet.gettrace()
        before = tracer.slow_calls
        gevent.joinall([gevent.spawn(worker, 100) for _ in range(30)])
        print(tracer.slow_calls - before)
    """)
    assert tl.complete and tl.footer.exit_code == 0
    workers = [lane for lane in tl.lanes if lane.kind == "greenlet"]
    assert [lane.name for lane in workers] == ["worker", "worker-2", "worker-3"]
    assert int(tl.logs()[-1].text) <= 10 * 31
    ids = {lane.id for lane in tl.lanes}
    assert all(e.lane in ids for e in events(tl, "run", "wait", "close"))
    # The traced ones: 100 sleeps each, all there; the hub's hand-overs to the other 27 are its own waits.
    sleeps = [e for e in events(tl, "wait") if e.reason == "sleep(0)"]
    assert len(sleeps) == 3 * 100
    assert any("lane cap" in (e.reason or "") for e in events(tl, "mark"))


@pytest.fixture
def engine(tmp_path):
    """The engine on this thread of the test process (no process-wide hooks), its recorder on a pipe."""
    r, w = os.pipe()
    rec = Recorder(w, time.monotonic_ns())
    rec.main_lane = rec.new_lane("main", "MainThread")
    rec.bind_thread(rec.main_lane)
    eng = GreenletEngine(rec, Where(os.path.dirname(__file__)))
    yield eng
    greenlet.settrace(None)
    os.close(r)
    os.close(w)


def test_the_previous_tracer_is_called_after_ours_and_put_back(engine):
    seen = []

    def theirs(event, args):
        seen.append((event, args[1]))

    greenlet.settrace(theirs)
    engine.install(process_wide=False)
    ours = greenlet.gettrace()
    assert ours is not theirs and ours.previous is theirs
    main = greenlet.getcurrent()
    g = greenlet.greenlet(lambda: main.switch(1))
    assert g.switch() == 1
    assert seen == [("switch", g), ("switch", main)]
    assert engine.errors == 0
    engine.stop()
    assert greenlet.gettrace() is theirs


def test_an_exception_of_the_previous_tracer_is_theirs_to_raise(engine):
    def theirs(event, args):
        raise LookupError("their tracer")

    greenlet.settrace(theirs)
    engine.install(process_wide=False)
    g = greenlet.greenlet(lambda: 1)
    # greenlet's own rule for a raising tracer: it is removed and the switch raises.
    with pytest.raises(LookupError):
        g.switch()
    assert engine.errors == 0, "our part of the switch did not fail"


def test_play_gets_its_lane_where_the_lesson_creates_it(record):
    """greenlet-eat-play as the lesson has it: play is created and never switched to; its lane is opened
    at `p = greenlet(play)` (not at its def), and it never runs."""
    tl = record("greenlet-eat-play", sleep=0.05)
    assert tl.complete and tl.footer.exit_code == 0
    lanes = {lane.name: lane for lane in tl.lanes}
    opens = {tl.lanes[e.lane].name: e for e in events(tl, "open")}
    assert opens["eat"].where == "greenlet_eat_play.py:57" and opens["play"].where == "greenlet_eat_play.py:58"
    assert opens["play"].cause == tl.lanes[0].id, "created by the main greenlet"
    assert lanes["play"].kind == "greenlet" and lanes["play"].tid == tl.lanes[0].tid
    assert not [e for e in events(tl, "run") if e.lane == lanes["play"].id]
    assert tl.state_at(lanes["play"].id, tl.t_end)[0] == 0, "not started, to the end"
    from concurview.trace.lints import lints

    assert [lint.lane for lint in lints(tl) if lint.rule == "never-switched-to"] == [lanes["play"].id]


def test_the_creation_hook_is_invisible_to_the_program(tmp_path):
    """The type, its __init__, isinstance, getcurrent(), subclasses and gevent are what they are untraced;
    a greenlet made by a subclass's own __init__ gets its lane too."""
    tl = record_program(tmp_path, """
        import greenlet
        from greenlet import greenlet as G, getcurrent

        def work():
            return 1

        g = G(work)
        print(type(g) is G, isinstance(getcurrent(), G), type(getcurrent()) is G)
        print(G.__init__ is greenlet.greenlet.__dict__["__init__"], type(G.__init__).__name__)

        class Mine(G):
            def __init__(self):
                super().__init__(work)

        class Plain(G):
            pass

        m, p = Mine(), Plain(work)
        print(type(m) is Mine, isinstance(m, G), m.switch(), p.switch(), g.switch())

        import gevent
        print(gevent.spawn(work).get())
    """)
    assert tl.complete and tl.footer.exit_code == 0
    assert [e.text for e in tl.logs()] == ["True True True", "True wrapper_descriptor", "True True 1 1 1", "1"]
    names = [lane.name for lane in tl.lanes if lane.kind == "greenlet"]
    assert names[:3] == ["work", "work-2", "work-3"], names
    opens = [e.where for e in events(tl, "open") if tl.lanes[e.lane].name in ("work", "work-2", "work-3")]
    assert opens == ["prog.py:8", "prog.py:19", "prog.py:19"]
