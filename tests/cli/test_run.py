"""`concurview run`: the user's own program, traced, behaving as under plain python."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

PROGRAMS = Path(__file__).resolve().parents[1] / "programs"
EXE = [sys.executable, "-m", "concurview"]


def run(*args: str, stdin: str = "", cwd: Path = PROGRAMS) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*EXE, *args], input=stdin, capture_output=True, text=True, cwd=cwd, timeout=60)


def summary(trace: Path) -> dict:
    return json.loads(subprocess.run([*EXE, "summary", str(trace), "--json"], capture_output=True, text=True,
                                     check=True).stdout)


def test_argv_stdin_cwd_name_and_exit_code_as_under_python(tmp_path):
    trace = tmp_path / "t.jsonl"
    out = run("run", "--record", str(trace), "echo_stdin.py", "--flag", "-v", "--help", stdin="bob\n")
    plain = subprocess.run([sys.executable, "echo_stdin.py", "--flag", "-v", "--help"], input="bob\n",
                           capture_output=True, text=True, cwd=PROGRAMS)
    assert out.returncode == plain.returncode == 3
    assert out.stdout == plain.stdout == "hello bob ['--flag', '-v', '--help'] __main__ programs\n"
    s = summary(trace)
    assert s["exit_code"] == 3 and s["complete"] and s["program"].endswith("echo_stdin.py")


def test_a_program_without_concurrency_is_one_lane(tmp_path):
    trace = tmp_path / "t.jsonl"
    out = run("run", "--record", str(trace), "plain.py")
    assert out.returncode == 0 and out.stdout == "total 499500\n"
    s = summary(trace)
    assert s["lanes"] == 1 and s["lane_totals"][0]["kind"] == "main" and s["logs"] == 1


def test_uncaught_exception_prints_like_python_and_points_into_the_program(tmp_path):
    trace = tmp_path / "t.jsonl"
    out = run("run", "--record", str(trace), "raises.py")
    assert out.returncode == 1
    assert out.stdout == "about to fail\n"
    assert out.stderr.startswith("Traceback (most recent call last):\n")
    assert 'raises.py", line 9, in <module>' in out.stderr and "ValueError: invalid literal" in out.stderr
    assert "concurview" not in out.stderr.split("raises.py: ")[0], "no concurview frames in the user's traceback"
    from concurview.trace.store import load

    tl = load(trace)
    (err,) = [tl.event(int(i)) for i in tl.events_of_kind("error")]
    assert err.where == "raises.py:5" and err.reason == "ValueError"


def test_dash_m_runs_a_package_and_passes_its_arguments(tmp_path):
    trace = tmp_path / "t.jsonl"
    out = run("run", "--record", str(trace), "-m", "mypkg", "--help", "x")
    assert out.returncode == 0 and out.stdout == "[1, 2] ['--help', 'x']\n", out.stderr
    s = summary(trace)
    names = {lane["name"] for lane in s["lane_totals"] if lane["kind"] == "task"}
    assert {"main", "job"} <= names
    from concurview.trace.store import load

    tl = load(trace)
    waits = [tl.event(int(i)) for i in tl.events_of_kind("wait")]
    assert any(w.where and w.where.startswith("__main__.py:") for w in waits), "where points into the package"


def test_bad_program_arguments(tmp_path):
    for args, message in [(["run", "--record", "t.jsonl", "missing.py"], "missing.py: no such file"),
                          (["run"], "run wants a SCRIPT or -m MODULE"),
                          (["run", "--bogus", "x.py"], "unrecognized arguments: --bogus"),
                          (["run", "--record", "no/dir/t.jsonl", "plain.py"], "no such directory")]:
        out = run(*args, cwd=tmp_path if "missing.py" in args else PROGRAMS)
        assert out.returncode == 2 and out.stderr.count("\n") == 1 and message in out.stderr, (args, out.stderr)
    # A module python cannot find is bad input too (the app is not opened, no trace is written);
    # a package's submodule is looked up in the child (finding it here would import the package).
    out = run("run", "--record", str(tmp_path / "t.jsonl"), "-m", "no_such_module_here")
    assert out.returncode == 2 and out.stderr.count("\n") == 1, out.stderr
    assert "No module named no_such_module_here" in out.stderr and not (tmp_path / "t.jsonl").exists()
    out = run("run", "--record", str(tmp_path / "t.jsonl"), "-m", "json.no_such_submodule")
    assert out.returncode == 1 and "No module named json.no_such_submodule" in out.stderr
