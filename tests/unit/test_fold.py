"""Lane families that fold, the lane filter, and the store queries behind them (no Textual)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from concurview.trace.store import (
    DONE, NONE, READY_S, RUNNING, WAITING, family_states, family_states_at, lane_families, lane_lifetimes,
    lanes_in_state, lanes_that_waited, load,
)
from concurview.tui.navigator import FOLD_AT, LaneFilter, Navigator

TRACE = Path(__file__).resolve().parent.parent / "traces" / "many-tasks.jsonl"


@pytest.fixture(scope="module")
def tl():
    return load(TRACE)


def nav_on(tl) -> Navigator:
    nav = Navigator()
    nav.reset(tl)
    nav.catch_up()
    return nav


def family_of(tl, label: str) -> int:
    _codes, labels = lane_families(tl)
    return labels.index(label)


def test_families_are_names_alike_but_for_their_numbers_and_kind(tl):
    codes, labels = lane_families(tl)
    names = [lane.name for lane in tl.lanes]
    req = family_of(tl, "handle_request-N")
    assert {names[i] for i in np.flatnonzero(codes == req)} == {n for n in names if n.startswith("handle_request-")}
    assert codes[0] != codes[1]  # MainThread (main) and main (task): different families
    assert len(labels) == 4


def test_big_families_fold_into_one_row_and_their_members_map_to_it(tl):
    nav = nav_on(tl)
    rows = nav.rows()
    folded = rows.family[rows.family >= 0].tolist()
    assert sorted(rows.labels[f] for f in folded) == ["handle_connection-N", "handle_request-N"]
    assert len(rows) == 4  # MainThread, main and two family rows
    req = family_of(tl, "handle_request-N")
    members = rows.members(req)
    assert len(members) == rows.sizes[req] >= FOLD_AT
    row = rows.row_of(int(members[-1]))
    assert rows.is_family(row) and rows.family[row] == req
    assert rows.lane[row] == members[0]  # the row stands where its first member was


def test_enter_unfolds_one_family_and_folds_it_back_and_f_switches_folding_off(tl):
    nav = nav_on(tl)
    req = family_of(tl, "handle_request-N")
    nav.toggle_family(req)
    rows = nav.rows()
    assert not (rows.family == req).any() and len(rows) == 4 - 1 + rows.sizes[req]
    nav.selected = int(rows.members(req)[3])
    assert nav.family_of_selected() == req  # an unfolded member: Enter folds its family back
    nav.toggle_family(req)
    assert (nav.rows().family == req).any()
    nav.toggle_folding()
    assert len(nav.rows()) == len(tl.lanes) and not (nav.rows().family >= 0).any()


def test_up_down_select_a_family_row_and_lane_switch_steps_through_its_members(tl):
    nav = nav_on(tl)
    nav.goto_switch(0)
    rows = nav.rows()
    req = family_of(tl, "handle_request-N")
    req_row = int(np.flatnonzero(rows.family == req)[0])
    nav.selected = int(rows.lane[0])
    for _ in range(req_row):
        nav.lane(1)
    assert rows.row_of(nav.selected) == req_row
    seen = set()
    for _ in range(12):
        assert nav.lane_switch(1)
        ran = int(tl.switch_lanes()[nav.cursor.switch])
        assert ran == nav.selected and lane_families(tl)[0][ran] == req  # the member that runs, selected
        assert nav.rows().row_of(nav.selected) == req_row  # the selected row is still the family
        seen.add(ran)
    assert len(seen) > 1
    before = nav.cursor.switch
    assert nav.lane_switch(-1) and nav.cursor.switch < before


def test_family_counts_are_the_members_states_at_each_instant(tl):
    req = family_of(tl, "handle_request-N")
    codes, _ = lane_families(tl)
    members = np.flatnonzero(codes == req)
    times = np.linspace(tl.t_first, tl.t_end, 37).astype(np.int64)
    got = family_states_at(tl, req, members, times)
    want = np.zeros_like(got)
    for lane in members.tolist():
        want[tl.states_at(lane, times), np.arange(len(times))] += 1
    want[NONE] = 0
    assert (got == want).all()
    # Over the whole trace (the density's samples), each column's counts are members present at most.
    cols = family_states(tl, req, members, tl.t_first, tl.t_end, 40)
    present = cols[[RUNNING, READY_S, WAITING]].sum(axis=0)
    assert present.max() <= len(members) and present.sum() > 0


def test_lifetimes_are_each_lanes_first_change_and_close(tl):
    first, end = lane_lifetimes(tl)
    for lane in (2, 10, 40):
        t, st, _ev = tl._track(lane).t.view(), tl._track(lane).state.view(), None
        assert first[lane] == t[0]
        assert end[lane] == (t[-1] if st[-1] == DONE else np.iinfo(np.int64).max)


def test_filter_terms_name_kind_state_and_waited(tl):
    everyone = np.ones(len(tl.lanes), dtype=bool)
    f = LaneFilter.parse("request kind:task")
    names = [lane.name for lane in tl.lanes]
    assert f.mask(tl, None).tolist() == ["request" in n for n in names]
    assert LaneFilter.parse("kind:main").mask(tl, None).tolist() == [True] + [False] * (len(names) - 1)
    waited = lanes_that_waited(tl, "lock.ACQUIRE")
    assert waited.any() and not waited.all()
    for lane in np.flatnonzero(waited)[:5].tolist():
        ev = np.flatnonzero(tl._lane.view() == lane)
        assert any(tl.event(int(i)).kind == "wait" and "Lock.acquire" in (tl.event(int(i)).reason or "") for i in ev)
    t = (tl.t_first + tl.t_end) // 2
    waiting = lanes_in_state(tl, everyone, t, [WAITING])
    assert waiting.any()
    assert all(tl.state_at(lane, t)[0] == WAITING for lane in range(len(tl.lanes)) if waiting[lane])
    assert all(tl.state_at(lane, t)[0] != WAITING for lane in range(len(tl.lanes)) if not waiting[lane])
    with pytest.raises(ValueError, match="state:sleepy"):
        LaneFilter.parse("state:sleepy")


def test_the_filter_drops_rows_and_folds_what_is_left(tl):
    nav = nav_on(tl)
    nav.set_filter("handle_request")
    rows = nav.rows()
    assert rows.n_shown == sum(lane.name.startswith("handle_request") for lane in tl.lanes)
    assert len(rows) == 1 and rows.is_family(0)  # all of them, folded into one row
    assert rows.row_of(0) is None  # MainThread is filtered out
    nav.set_filter("handle_request-1")  # -1, -10..-19, -100...: fewer than FOLD_AT? still a family row when >= 8
    assert nav.rows().n_shown == sum(lane.name.startswith("handle_request-1") for lane in tl.lanes)
    nav.set_filter("")
    assert nav.lane_filter is None and nav.rows().n_shown == len(tl.lanes)


def test_a_state_filter_follows_the_cursor(tl):
    nav = nav_on(tl)
    nav.set_filter("state:run")
    nav.goto_switch(5)
    ran = int(tl.switch_lanes()[5])
    assert nav.rows().shown[ran]
    before = nav.rows().shown.copy()
    nav.goto_switch(400)
    shown = nav.rows().shown
    assert shown[int(tl.switch_lanes()[400])] and (shown != before).any()
    t = nav.cursor.t
    assert shown.tolist() == [tl.state_at(lane, t)[0] == RUNNING for lane in range(len(tl.lanes))]


def test_the_members_present_in_a_span_are_found_without_a_pass(tl):
    from concurview.trace.store import family_alive, family_present

    req = family_of(tl, "handle_request-N")
    codes, _ = lane_families(tl)
    members = np.flatnonzero(codes == req)
    first, end = lane_lifetimes(tl)
    for frac in (0.0, 0.1, 0.5, 0.9, 1.0):
        t0 = int(tl.t_first + (tl.t_end - tl.t_first) * frac)
        t1 = t0 + (tl.t_end - tl.t_first) // 50
        want = members[(first[members] <= t1) & (end[members] > t0)]
        assert family_present(tl, req, t0, t1) == len(want)
        assert family_alive(tl, req, t0, t1).tolist() == want.tolist()
