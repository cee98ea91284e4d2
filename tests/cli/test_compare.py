"""`concurview compare`: one workload on several models, totals that tell the lesson, one stacked trace."""

from __future__ import annotations

import json
import subprocess
import sys

from concurview.trace.store import load


def test_compare_models_side_by_side(tmp_path):
    trace = tmp_path / "cmp.jsonl"
    out = subprocess.run(
        [sys.executable, "-m", "concurview", "compare", "--models", "sequential,threads,gevent,asyncio", "--jobs", "6",
         "--job-sleep", "0.05", "--workers", "3", "-o", str(trace), "--json"],
        capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    rows = {r["model"]: r for r in json.loads(out.stdout)}
    assert list(rows) == ["sequential", "threads", "gevent", "asyncio"]
    assert rows["sequential"]["total_s"] >= 6 * 0.05
    for model in ("threads", "gevent", "asyncio"):
        assert rows[model]["total_s"] >= 2 * 0.05, model  # ceil(6 / 3) rounds of waiting
        assert rows[model]["total_s"] < rows["sequential"]["total_s"], model
    assert rows["asyncio"]["lanes"] >= 7, "the loop thread and a lane per task"
    tl = load(trace)
    prefixes = {lane.name.split(" · ")[0] for lane in tl.lanes}
    assert prefixes == {"sequential", "threads", "gevent", "asyncio"}
    assert rows["gevent"]["lanes"] >= 5, "the program patched itself: greenlets and the hub are still traced"
    firsts = {}
    for lane in tl.lanes:
        firsts.setdefault(lane.name.split(" · ")[0], lane.id)
    starts = [int(tl.lane_intervals(i)[0][0]) for i in firsts.values()]
    assert max(starts) - min(starts) < 50_000_000, "every model starts near t = 0: one shared time axis"


def test_compare_rejects_unknown_models():
    out = subprocess.run([sys.executable, "-m", "concurview", "compare", "--models", "threads,fibers"],
                         capture_output=True, text=True)
    assert out.returncode == 2 and "unknown model fibers" in out.stderr and out.stderr.count("\n") == 1


def test_the_table_says_what_its_counts_mean():
    """IO-bound jobs: threads run one at a time but three are in flight; the table says which is which."""
    out = subprocess.run(
        [sys.executable, "-m", "concurview", "compare", "--models", "threads", "--jobs", "3",
         "--job-sleep", "0.05", "--workers", "3"],
        capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    (row,) = [line.split() for line in out.stdout.splitlines() if line.strip().startswith("threads")]
    assert row[-1] == "3", "three sleeping jobs in flight at once"
    assert "most at once: workers running at the same moment" in out.stdout
    assert "in flight: workers in the middle of a job" in out.stdout
