"""Event floods: the parent keeps at most the retention cap, counts what it drops, and its memory stays bounded."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
from robust_kit import EXE, PROGRAMS, cv, footer, leftovers, summary

# Generous: the parent is a Python process with numpy and msgspec loaded (~30 MB) plus the kept events.
RSS_BOUND_MB = 400


@pytest.mark.slow
def test_a_greenlet_flood_into_the_store_is_capped_and_counted():
    """The app's path (Run -> Timeline) under ~a million switches: only the first `cap` events are kept."""
    cap = 50_000  # well below what even a slow, loaded machine produces in 4 s (~600k here)
    out = subprocess.run([sys.executable, str(PROGRAMS / "flood_driver.py"), "greenlet", "4", str(cap)],
                         capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    r = json.loads(out.stdout)
    print(f"\ngreenlet flood: {r['events_per_s']:,.0f} events/s reached the parent, kept {r['kept']:,}, "
          f"dropped {r['dropped']:,}, parent RSS {r['rss_start_mb']} -> {r['rss_peak_mb']} MB")
    assert r["complete"] and r["exit_code"] == 0
    assert r["kept"] == r["arrived"] == cap and r["max_events"] == cap
    assert r["capped"] > 0 and r["dropped"] >= r["capped"]
    assert "done" not in " ".join(r["logs"]), "the newest events (the program's last line) are the ones dropped"
    assert r["rss_peak_mb"] < RSS_BOUND_MB


def _peak_rss_mb(proc: subprocess.Popen) -> float:
    """Poll the process's RSS until it exits; the largest value seen."""
    peak = 0.0
    while proc.poll() is None:
        try:
            for line in Path(f"/proc/{proc.pid}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    peak = max(peak, int(line.split()[1]) / 1024)
        except OSError:
            pass
        time.sleep(0.05)
    return peak


@pytest.mark.slow
def test_recording_a_lock_flood_keeps_the_cli_small_and_reports_the_drops(tmp_path):
    trace = tmp_path / "t.jsonl"
    proc = subprocess.Popen([*EXE, "run", "--record", str(trace), "--max-events", "5000",
                             str(PROGRAMS / "flood.py"), "lock", "3"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    peak = _peak_rss_mb(proc)
    _, err = proc.communicate(timeout=60)
    print(f"\nlock flood, CLI record: peak RSS {peak:.0f} MB; {err.strip()}")
    assert proc.returncode == 0, err
    reader, lanes = footer(trace)
    f = reader.footer
    assert f is not None and f.complete and f.events == reader.n_read == 5_000 and f.max_events == 5_000
    assert f.dropped > 0 and f"{f.dropped} events dropped (kept the first 5000" in err
    assert summary(trace)["dropped"] == f.dropped
    assert peak < RSS_BOUND_MB
    assert not leftovers(lanes[0].pid)


@pytest.mark.parametrize("args, env, message", [
    (["--max-events", "0"], {}, "must be at least 1"),
    (["--max-events", "many"], {}, "not a whole number"),
    ([], {"CONCURVIEW_MAX_EVENTS": "lots"}, "CONCURVIEW_MAX_EVENTS wants a whole number"),
])
def test_a_bad_cap_is_a_one_line_error(tmp_path, args, env, message):
    out = cv("run", "--record", str(tmp_path / "t.jsonl"), *args, str(PROGRAMS / "ends.py"), "exit7",
             env={**os.environ, **env})
    check_one_line_error(out, message)
    assert not (tmp_path / "t.jsonl").exists()
    out = cv("record", "asyncio-tasks", "-o", str(tmp_path / "t.jsonl"), *args, env={**os.environ, **env})
    check_one_line_error(out, message)
    assert not (tmp_path / "t.jsonl").exists()


def check_one_line_error(out: subprocess.CompletedProcess[str], message: str) -> None:
    assert out.returncode == 2 and "Traceback" not in out.stderr
    lines = out.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("concurview: error: ") and message in lines[0], lines


def test_a_bad_cap_in_the_environment_stops_the_app_before_it_starts():
    out = cv("asyncio-tasks", env={**os.environ, "CONCURVIEW_MAX_EVENTS": "-1"}, timeout=30, stdin=subprocess.DEVNULL)
    check_one_line_error(out, "CONCURVIEW_MAX_EVENTS must be at least 1")
