"""gevent's hub on real traced runs: patched sleeps overlap (total ≈ max), unpatched ones add up (total ≈ sum)."""

from __future__ import annotations

from recording import events
from concurview.trace.narrative import explain

EAT, PLAY = 0.2, 0.4


def lanes_by_name(tl):
    return {lane.name: lane for lane in tl.lanes}


def printed_total(tl) -> float:
    """The last line the program printed: its own measured total."""
    return float(tl.logs()[-1].text)


def test_patched_sleeps_overlap_through_the_hub(record):
    tl = record("gevent-eat-play", eat_sleep=EAT, play_sleep=PLAY)
    assert tl.complete and tl.footer.exit_code == 0
    lanes = lanes_by_name(tl)
    hub, eat, play = lanes["Hub"], lanes["eat"], lanes["play"]
    assert hub.kind == "hub" and eat.kind == "greenlet" and play.kind == "greenlet"
    assert len({lane.tid for lane in tl.lanes}) == 1, "the hub and every greenlet share MainThread"

    # Total ≈ max(eat, play), clearly less than the sum.
    total = printed_total(tl)
    assert 0.9 * PLAY <= total < EAT + PLAY - 0.5 * min(EAT, PLAY)
    first_run = min(e.t for e in events(tl, "run") if e.lane == eat.id)
    play_done = max(e.t for e in events(tl, "close") if e.lane == play.id)
    assert (play_done - first_run) / 1e9 < EAT + PLAY - 0.5 * min(EAT, PLAY)

    # Each patched time.sleep is a wait with its duration, at the program's line, handing over to the hub.
    waits = events(tl, "wait")
    eat_sleep = [e for e in waits if e.lane == eat.id and e.reason == f"sleep {EAT:g}s"]
    assert eat_sleep and eat_sleep[0].where.startswith("gevent_eat_play.py:")
    assert any(e.lane == play.id and e.reason == f"sleep {PLAY:g}s" for e in waits)
    k = next(k for k in range(tl.n_switches)
             if tl.switch(k).lane == hub.id and tl.switch(k).stopped == eat.id)
    assert f"eat -> Hub: eat waits (sleep {EAT:g}s at gevent_eat_play.py:" in explain(tl, k)
    # While both sleep, the hub waits in its event loop (not "running" for the whole time).
    idle = [e for e in events(tl, "wait") if e.lane == hub.id and (e.reason or "").startswith("event loop idle")]
    assert idle and sum(1 for e in idle if e.t > first_run) >= 1
    # The hub is who hands the thread to eat and play; main waits in join().
    assert any(e.lane == tl.lanes[0].id and e.reason == "e.join()" for e in events(tl, "wait"))
    assert {e.cause for e in events(tl, "run") if e.lane in (eat.id, play.id) and e.cause is not None} == {hub.id}
    texts = [(tl.lanes[e.lane].name, e.text) for e in tl.logs()[:4]]
    assert texts == [("eat", "lqz 吃了一口"), ("play", "lqz 玩了一会儿"), ("eat", "lqz 有吃了一口"), ("play", "lqz 有玩了一会儿")]
    assert tl.logs()[-2].text == "主"


def test_unpatched_sleeps_block_and_add_up(record):
    tl = record("gevent-eat-play", patch=False, eat_sleep=EAT, play_sleep=PLAY)
    assert tl.complete and tl.footer.exit_code == 0
    lanes = lanes_by_name(tl)
    assert lanes["Hub"].kind == "hub"
    total = printed_total(tl)
    assert total >= 0.95 * (EAT + PLAY)
    # The real time.sleep blocks the thread: while eat (then play) sleeps, no other lane gets it.
    logs = tl.logs()
    for name, (a, b) in (("eat", (0, 1)), ("play", (2, 3))):
        lane = lanes[name].id
        t0, t1 = logs[a].t, logs[b].t
        assert not [e for e in events(tl, "run") if t0 < e.t < t1 and e.lane != lane], name
    texts = [(tl.lanes[e.lane].name, e.text) for e in tl.logs()[:4]]
    assert texts == [("eat", "lqz 吃了一口"), ("eat", "lqz 有吃了一口"), ("play", "lqz 玩了一会儿"), ("play", "lqz 有玩了一会儿")]
