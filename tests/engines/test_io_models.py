"""io-models: five reads of one message on one time axis, each drawn as its two phases, and the per-call cost of select/poll/epoll (real runs)."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

from iophases import RUNNING, WAITING, lane_events, lane_id, phases, states

pytestmark = pytest.mark.skipif(sys.platform != "linux", reason="epoll, SIGIO, io_uring and SO_TIMESTAMPNS are Linux")

DELAY = 0.1
MODELS = ("blocking", "non-blocking", "epoll", "signal-driven", "async")
SYNCHRONOUS = MODELS[:4]
READ_CALL = re.compile(r"\b(recv\w*|read)\(")


@pytest.fixture(scope="module")
def run():
    from recording import record_timeline

    return record_timeline("io-models", delay=DELAY, fds="1,1500", repeat=30)


def read_of(tl, model):
    return phases(tl, f"kernel buffer · {model}")


def table(tl) -> dict[str, str]:
    """model -> its row of the results table (from the log)."""
    lines = [e.text for e in tl.logs() if e.kind == "log"]
    head = next(i for i, line in enumerate(lines) if line.startswith("model "))
    assert "program blocked = phase 1 + phase 2" in lines[head] and "phase 2 (the copy) done by" in lines[head]
    return {line.split()[0]: line for line in lines[head + 1:head + 1 + len(MODELS)]}


def test_one_main_thread_lane_and_a_read_lane_per_model_in_order(run):
    tl = run
    assert tl.complete and tl.footer.exit_code == 0
    assert [lane.name for lane in tl.lanes] == ["MainThread", *(f"kernel buffer · {m}" for m in MODELS)], \
        "no per-model program lanes: the one MainThread lane is the program"
    spans = []
    for m in MODELS:
        p = read_of(tl, m)
        spans.append((p.phase1.t, p.done.t))
        # Every model's data arrives about `delay` after it asked for it.
        assert 0.7 * DELAY * 1e9 <= p.arrived.t - p.phase1.t < 10 * DELAY * 1e9, m
    assert all(a[1] <= b[0] for a, b in zip(spans, spans[1:])), "one after another on the same time axis"


def test_every_read_has_both_phases_in_order(run):
    tl = run
    for m in MODELS:
        p = read_of(tl, m)
        assert p.arrived.text == "stamped by the kernel (SO_TIMESTAMPNS)", m
        assert p.arrived.reason == "64 B arrived: phase 1 is over", m
        assert p.phase1.t < p.arrived.t <= p.phase2.t <= p.done.t, m
        assert p.run.t == p.phase2.t, f"{m}: phase 2 is a step of its own (the kernel buffer lane runs)"
        assert "magnified" in p.phase2.reason and "magnified" in p.run.reason, m
        assert p.done.reason == "done: 64 B in the user buffer", m


def test_phase_two_of_models_one_to_four_is_the_programs_and_blocks_it(run):
    tl = run
    main = lane_id(tl, "MainThread")
    for m in SYNCHRONOUS:
        p = read_of(tl, m)
        assert p.program_copies and not p.kernel_copies, (m, p.phase2.text)
        assert READ_CALL.search(p.phase2.reason), f"{m}: phase 2 is the program's recv()"
        # The program is blocked in its call for the whole copy.
        assert tl.state_at(main, p.phase2.t)[0] == WAITING, m
        assert states(tl, main, p.phase2.t, p.done.t) == {WAITING}, m
        wait = tl.event(tl.state_at(main, p.phase2.t)[1])
        assert wait.reason.endswith("(phase 2)") and wait.where.startswith("io_models.py:"), (m, wait)
        assert tl.state_at(main, p.done.t)[0] == RUNNING, f"{m}: the call returned"


def test_phase_two_of_async_is_the_kernels_while_the_program_runs(run):
    tl = run
    main = lane_id(tl, "MainThread")
    p = read_of(tl, "async")
    assert p.kernel_copies and not p.program_copies, p.phase2.text
    assert states(tl, main, p.phase2.t - 1, p.done.t) == {RUNNING}, "the program is never blocked in phase 2"
    assert states(tl, main, p.phase1.t, p.arrived.t) == {RUNNING}, "nor in phase 1"
    between = [e for e in lane_events(tl, "MainThread") if p.phase1.t <= e.t <= p.done.t]
    assert not [e for e in between if e.kind == "wait"], "no wait at all while the kernel reads"
    assert not [e for e in between if READ_CALL.search(e.reason or "") and "never called" not in e.reason], "no read call in the program"
    completion = next(e for e in between if e.kind == "mark" and e.reason.startswith("completion:"))
    assert completion.reason == "completion: 64 B already in the user buffer" and completion.t >= p.done.t


def test_main_thread_waits_through_phase_one_only_when_its_call_blocks(run):
    tl = run
    main = lane_id(tl, "MainThread")
    for m in ("blocking", "epoll"):
        p = read_of(tl, m)
        assert states(tl, main, p.phase1.t, p.arrived.t) == {WAITING}, f"{m}: MainThread is not running in phase 1"
        wait = tl.event(tl.state_at(main, (p.phase1.t + p.arrived.t) // 2)[1])
        assert wait.reason.endswith("blocked, waiting for data (phase 1)"), (m, wait.reason)
    for m in ("non-blocking", "signal-driven", "async"):
        p = read_of(tl, m)
        assert states(tl, main, p.phase1.t, p.arrived.t) == {RUNNING}, f"{m}: MainThread keeps running in phase 1"
    polled = next(e for e in lane_events(tl, "MainThread") if e.kind == "mark" and "× EAGAIN" in e.reason)
    assert int(polled.reason.split(" ")[0]) > 0, "EAGAINs before the data came"
    work = [e for e in lane_events(tl, "MainThread") if e.kind == "mark" and e.reason.startswith("did ")]
    assert len(work) == 2 and all(int(e.reason.split(" ")[1]) > 0 for e in work), "signal-driven and async worked"


def test_results_table_counts_phase_two_and_says_who_did_it(run):
    rows = table(run)
    assert list(rows) == list(MODELS)
    blocked = {}
    for m, line in rows.items():
        got = re.search(r"(\S+(?: \S+)?) = +(\S+(?: \S+)?) \+ +(\S+(?: \S+)?) ", line)
        blocked[m] = got.groups()
    for m in SYNCHRONOUS:
        assert "the program (synchronous)" in rows[m], rows[m]
        assert blocked[m][2] != "0", f"{m}: the program is blocked in phase 2 - {rows[m]}"
    for m in ("blocking", "epoll"):
        assert blocked[m][1].endswith(" ms") and float(blocked[m][1].split()[0]) >= 0.7 * DELAY * 1000, rows[m]
    for m in ("non-blocking", "signal-driven"):
        assert blocked[m][1] == "0", f"{m}: not blocked in phase 1 - {rows[m]}"
    assert blocked["async"] == ("0", "0", "0"), rows["async"]
    assert "the kernel (asynchronous)" in rows["async"] or "helper thread" in rows["async"], rows["async"]


def test_select_poll_epoll_cost_and_select_refusal(run):
    tl = run
    lines = [e.text for e in tl.logs() if e.kind == "log"]
    head = next(i for i, line in enumerate(lines) if line.lstrip().startswith("idle fds"))
    cost = {}
    for line in lines[head + 1:]:
        cells = line.split()
        for api, cell in zip(("select", "poll", "epoll"), cells[1:4]):
            cost[api, int(cells[0])] = None if cell == "refused" else float(cell)
    assert cost["select", 1500] is None and cost["select", 1] is not None
    assert cost["poll", 1500] > 5 * cost["poll", 1], cost
    assert cost["poll", 1500] > 5 * cost["epoll", 1500], cost
    assert cost["epoll", 1500] < 10 * cost["epoll", 1] + 5, "epoll stays flat"
    log = "\n".join(lines)
    assert re.search(r"^\s+1500\s+refused\s+[\d.]+\s+[\d.]+\s+select: fd \d+ >= 1024$", log, re.M), log
    marks = [tl.event(int(i)).reason for i in tl.events_of_kind("mark")]
    assert not [m for m in marks if "per call" in m], "the cost table is printed once, not also as marks"


def test_source_lines_are_the_models_own_calls(run):
    """Each phase-2 event points at the line of the call that copied, in io_models.py."""
    tl = run
    src = (Path(__file__).parents[2] / "scenarios" / "io_models.py").read_text().splitlines()
    for m in SYNCHRONOUS:
        p = read_of(tl, m)
        file, line = p.phase2.where.split(":")
        assert file == "io_models.py", p.phase2.where
        assert re.search(r"sock\.recv(_into)?\(", src[int(line) - 1]), (m, src[int(line) - 1])


def test_bad_fds_is_a_one_line_error_with_status_2(tmp_path):
    src = Path(__file__).parents[2] / "scenarios"
    program = tmp_path / "io_models.py"
    program.write_text((src / "io_models.py").read_text().replace('"fds": "1,100,1000,4000"', '"fds": "1,lots"'))
    out = subprocess.run([sys.executable, str(program)], capture_output=True, text=True, timeout=30,
                         env={"PYTHONPATH": str(src), "PATH": "/usr/bin:/bin"})
    assert out.returncode == 2
    assert out.stderr.strip() == "io-models: fds must be comma-separated counts between 1 and 60000, not '1,lots'"
