"""The command line as a user meets it: real subprocesses, exit codes, one-line errors, recorded facts."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from concurview.trace.tracefile import TraceReader

EXE = [sys.executable, "-m", "concurview"]


def cv(*args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*EXE, *args], capture_output=True, text=True, timeout=timeout)


def loaded_after(commands: list[list[str]], *modules: str) -> list[str]:
    """Which of `modules` are imported after running `commands` in a fresh interpreter."""
    script = "import json, sys\nfrom concurview.cli import main\n" + "".join(
        f"try:\n    main({c!r})\nexcept SystemExit:\n    pass\n" for c in commands
    ) + f"print(json.dumps(sorted(m for m in {list(modules)!r} if m in sys.modules)))"
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def test_help_lists_the_commands_without_importing_textual():
    out = cv("--help")
    assert out.returncode == 0
    for command in ("list", "record", "summary", "open"):
        assert command in out.stdout
    assert loaded_after([["--help"]], "textual", "numpy", "msgspec", "concurview.scenarios") == [], \
        "--help loads no UI, no arrays, no codec and no catalogue"
    assert loaded_after([["--help"], ["list"]], "textual", "numpy") == [], "list stays light too"


def test_list_shows_scenarios_with_descriptions():
    out = cv("list")
    assert out.returncode == 0
    line = next(l for l in out.stdout.splitlines() if "asyncio-tasks" in l)
    assert "Two coroutines take turns on one thread" in line
    as_json = json.loads(cv("list", "--json").stdout)
    assert {"name": "asyncio-tasks", "topic": "asyncio"}.items() <= next(
        s for s in as_json if s["name"] == "asyncio-tasks").items()


def test_record_then_summary_shows_the_lessons_facts(tmp_path):
    trace = tmp_path / "t.jsonl"
    out = cv("record", "asyncio-tasks", "-o", str(trace), "--set", "task_sleep=0.3", "--set", "task2_sleep=0.2")
    assert out.returncode == 0, out.stderr
    assert "asyncio-tasks:" in out.stderr and str(trace) in out.stderr
    s = json.loads(cv("summary", str(trace), "--json").stdout)
    assert s["complete"] and s["exit_code"] == 0 and s["lanes"] == 3
    kinds = sorted(lane["kind"] for lane in s["lane_totals"])
    assert kinds == ["main", "task", "task"]
    tasks = {lane["name"]: lane for lane in s["lane_totals"] if lane["kind"] == "task"}
    assert set(tasks) == {"task", "task2"}
    # Total ~ max(0.3, 0.2), not the sum: the tasks waited side by side.
    main = next(lane for lane in s["lane_totals"] if lane["kind"] == "main")
    span = main["done_t_s"] - main["first_t_s"]
    assert 0.3 <= span < 0.5 + 0.5, span
    assert tasks["task"]["waiting_s"] >= 0.29 and tasks["task2"]["waiting_s"] >= 0.19
    assert s["max_running"]["task"] == 1, "one thread: never two tasks running at once"
    human = cv("summary", str(trace))
    assert human.returncode == 0 and "task2" in human.stdout and "3 lanes" in human.stdout


def test_record_gz(tmp_path):
    trace = tmp_path / "t.jsonl.gz"
    assert cv("record", "asyncio-tasks", "-o", str(trace), "--set", "task_sleep=0.01",
              "--set", "task2_sleep=0.01").returncode == 0
    assert trace.read_bytes()[:2] == b"\x1f\x8b"
    assert json.loads(cv("summary", str(trace), "--json").stdout)["lanes"] == 3


def test_timeout_keeps_the_partial_trace_and_leaves_no_process(tmp_path):
    trace = tmp_path / "t.jsonl"
    out = cv("record", "asyncio-tasks", "-o", str(trace), "--set", "task_sleep=30", "--timeout", "1.5")
    assert out.returncode == 124
    assert "incomplete: timeout after 1.5 s" in out.stderr
    reader = TraceReader(trace)
    lanes = [lane for batch_lanes, _ in reader.batches() for lane in batch_lanes]
    assert reader.footer is not None and not reader.footer.complete
    assert reader.footer.reason == "timeout after 1.5 s"
    assert len(lanes) == 3, "what arrived before the kill is kept"
    assert not Path(f"/proc/{lanes[0].pid}").exists(), "the child's process group is gone"
    s = cv("summary", str(trace))
    assert "INCOMPLETE: timeout after 1.5 s" in s.stdout


BAD = [
    (["record", "nope", "-o", "x.jsonl"], "unknown scenario 'nope'"),
    (["record", "asyncio-tasks", "-o", "x.jsonl", "--set", "bogus=1"], "has no parameter 'bogus'"),
    (["record", "asyncio-tasks", "-o", "x.jsonl", "--set", "task_sleep=abc"], "wants float, got 'abc'"),
    (["record", "asyncio-tasks", "-o", "x.jsonl", "--set", "task_sleep"], "--set wants KEY=VALUE"),
    (["record", "asyncio-tasks", "-o", "x.jsonl", "--timeout", "-1"], "must be a positive number"),
    (["record", "asyncio-tasks", "-o", "no/such/dir/x.jsonl"], "no such directory"),
    (["record", "asyncio-tasks"], "required: -o/--output"),
    (["record", "asyncio-tasks", "-o", "x.jsonl", "--max-events", "0"], "--max-events: must be at least 1"),
    (["record", "threadpool-shutdown", "-o", "x.jsonl", "--set", "workers=0"], "'workers' must be at least 1"),
    (["record", "socket-echo", "-o", "x.jsonl", "--set", "style=nope"], "'style' must be one of selectors"),
    (["summary", "missing.jsonl"], "missing.jsonl: no such file"),
    (["summary", "garbage.jsonl"], "not a concurview trace"),
    (["summary", "empty.jsonl"], "empty file"),
    (["summary", "bad-line.jsonl"], "line 3"),
    (["open", "garbage.jsonl"], "not a concurview trace"),
    (["nope-scenario"], "unknown scenario 'nope-scenario'"),
    (["asyncio-tasks", "--set", "x=1"], "has no parameter 'x'"),
    (["--frobnicate"], "unrecognized arguments"),
]


@pytest.mark.parametrize("args, message", BAD, ids=[" ".join(a) for a, _ in BAD])
def test_bad_input_is_one_line_and_exit_2(tmp_path, args, message):
    # Fixed bytes: random ones starting with "[" would read as a (broken) Chrome trace instead.
    (tmp_path / "garbage.jsonl").write_bytes(bytes(range(7, 71)) + b"\xff\xfe")
    (tmp_path / "empty.jsonl").write_text("")
    (tmp_path / "bad-line.jsonl").write_text(
        '{"format":"concurview-trace","version":1}\n{"type":"lane","id":0,"kind":"main","name":"m"}\n{"seq":1\n'
        '{"seq":2,"t":1,"lane":0,"kind":"run"}\n')
    out = subprocess.run([*EXE, *args], capture_output=True, text=True, cwd=tmp_path, timeout=30)
    assert out.returncode == 2, out
    assert "Traceback" not in out.stderr
    lines = out.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("concurview: error: ") and message in lines[0], lines


def test_truncated_trace_summarises_its_prefix(tmp_path):
    trace = tmp_path / "t.jsonl"
    cv("record", "asyncio-tasks", "-o", str(trace), "--set", "task_sleep=0.01", "--set", "task2_sleep=0.01")
    data = trace.read_bytes()
    trace.write_bytes(data[: len(data) * 2 // 3])
    out = cv("summary", str(trace), "--json")
    assert out.returncode == 0
    s = json.loads(out.stdout)
    assert not s["complete"] and s["incomplete_reason"] == "file is truncated" and s["events"] > 5


def test_summary_piped_into_head_exits_quietly(tmp_path):
    trace = tmp_path / "t.jsonl"
    cv("record", "asyncio-tasks", "-o", str(trace), "--set", "task_sleep=0.01", "--set", "task2_sleep=0.01")
    out = subprocess.run(f"{sys.executable} -m concurview summary {trace} --json | head -1",
                         shell=True, capture_output=True, text=True)
    assert out.stdout == "{\n" and "Traceback" not in out.stderr


def test_a_scenario_that_fails_to_start_reports_through_the_trace(tmp_path):
    """A program that raises is recorded: error event, exit code 1, the trace complete."""
    prog = tmp_path / "boom.py"
    prog.write_text("print('before')\nraise ValueError('boom')\n")
    from concurview.engines.runner import Run, Target
    from concurview.trace.store import Timeline

    run = Run(Target(str(prog)))
    tl = Timeline(run.header)
    for b in run:
        tl.add(b.lanes, b.events)
    tl.finish(run.footer())
    errors = [tl.event(int(i)) for i in tl.events_of_kind("error")]
    assert run.exit_code == 1 and tl.complete
    assert errors and errors[0].reason == "ValueError" and errors[0].where == "boom.py:2"
    assert "ValueError: boom" in (errors[0].text or "")
    assert "engines/child.py" not in (errors[0].text or ""), "the traceback shows the program, not concurview"
    assert [e.text for e in tl.logs() if e.kind == "log"] == ["before"]


def test_ctrl_c_interrupts_the_program_and_keeps_what_arrived(tmp_path):
    """Ctrl+C reaches the scenario as a KeyboardInterrupt (asyncio.run cancels its tasks); it ends by
    SIGINT as python would, and so does concurview, once the trace is written whole."""
    import signal
    import time

    trace = tmp_path / "t.jsonl"
    proc = subprocess.Popen([*EXE, "record", "asyncio-tasks", "-o", str(trace), "--set", "task_sleep=30"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    partial = tmp_path / "t.jsonl.partial"
    deadline = time.monotonic() + 20
    while not (partial.exists() and partial.read_text().count('"type":"lane"') == 3):
        assert time.monotonic() < deadline and proc.poll() is None
        time.sleep(0.05)
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=20)
    assert proc.returncode == -signal.SIGINT, err
    assert "(ended: uncaught KeyboardInterrupt)" in err and "Traceback" not in err
    reader = TraceReader(trace)
    lanes = [lane for ls, _ in reader.batches() for lane in ls]
    footer = reader.footer
    assert len(lanes) == 3 and footer is not None and footer.complete and footer.exit_code == -signal.SIGINT
    assert footer.reason == "uncaught KeyboardInterrupt"
    assert not Path(f"/proc/{lanes[0].pid}").exists()


def test_nohup_keeps_recording_when_the_terminal_hangs_up(tmp_path):
    """`nohup concurview record ...`: SIGHUP was ignored when concurview started, so it stays ignored
    (129 'hung up' is only for a SIGHUP that was not); the run ends by itself, complete."""
    import signal
    import time

    trace = tmp_path / "t.jsonl"
    proc = subprocess.Popen(["nohup", *EXE, "record", "asyncio-tasks", "-o", str(trace),
                             "--set", "task_sleep=1.5", "--set", "task2_sleep=0.1"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=tmp_path)
    partial = tmp_path / "t.jsonl.partial"
    deadline = time.monotonic() + 20
    while not (partial.exists() and partial.read_text().count('"type":"lane"') == 3):
        assert time.monotonic() < deadline and proc.poll() is None
        time.sleep(0.05)
    proc.send_signal(signal.SIGHUP)
    _, err = proc.communicate(timeout=30)
    assert proc.returncode == 0, err
    reader = TraceReader(trace)
    list(reader.batches())
    assert reader.footer is not None and reader.footer.complete


@pytest.mark.parametrize("flag", ["-V", "--version"])
def test_version_says_which_path_runs(flag):
    import os

    from concurview.engines.speedups import implementation

    out = cv(flag)
    assert out.returncode == 0 and out.stdout.startswith("concurview ")
    assert implementation() in out.stdout, "C speedups or the pure path, as this interpreter has them"
    pure = subprocess.run([*EXE, flag], capture_output=True, text=True, env=dict(os.environ, CONCURVIEW_PURE="1"))
    assert "pure Python" in pure.stdout and "C speedups" not in pure.stdout


def test_list_json_keeps_whole_summaries():
    text = {line.split()[0]: line for line in cv("list").stdout.splitlines() if line.startswith("  ")}
    as_json = {s["name"]: s for s in json.loads(cv("list", "--json").stdout)}
    s = as_json["threadpool-shutdown"]["summary"]
    assert s == ("Twenty tasks on a pool of three threads: shutdown(wait=True) waits for all of them, "
                 "and the closed pool refuses new work."), "the whole first paragraph, not cut at 100"
    assert text["threadpool-shutdown"].endswith("...") and s not in text["threadpool-shutdown"]
    assert all(not e["summary"].endswith(("...", "…")) for e in as_json.values())


def test_a_foreign_trace_has_exit_code_unknown(tmp_path):
    chrome = tmp_path / "other.json"
    chrome.write_text(json.dumps([{"ph": "X", "name": "work", "pid": 1, "tid": 1, "ts": 0, "dur": 10},
                                  {"ph": "X", "name": "more", "pid": 1, "tid": 2, "ts": 5, "dur": 10}]))
    out = cv("summary", str(chrome))
    assert out.returncode == 0 and out.stdout.splitlines()[0].endswith("(complete, exit code unknown)"), out.stdout
    assert json.loads(cv("summary", str(chrome), "--json").stdout)["exit_code"] is None
    piped = subprocess.run([*EXE, "summary", "-"], input=chrome.read_text(), capture_output=True, text=True)
    assert piped.stdout.splitlines()[0] == "stdin (Chrome trace)  (complete, exit code unknown)", piped.stdout


def test_help_documents_dash_and_completion():
    out = cv("--help").stdout
    assert "'-' as a file means stdin" in out and "completion SHELL" in out
    assert "'-' for stdin" in cv("summary", "--help").stdout
    assert "'-' for stdout" in cv("record", "--help").stdout
