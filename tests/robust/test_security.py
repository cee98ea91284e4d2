"""Loading a trace never runs code, hostile strings never reach the terminal raw, the child gets only our environment."""

from __future__ import annotations

import ast
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from robust_kit import EXE, PROGRAMS, cv

ROOT = Path(__file__).resolve().parents[2]
LOADERS = ["trace/tracefile.py", "trace/store.py", "trace/foreign.py"]
UNSAFE_MODULES = {"pickle", "_pickle", "cPickle", "marshal", "shelve", "dill", "cloudpickle", "jsonpickle",
                  "yaml", "runpy", "code", "codeop", "importlib"}
UNSAFE_CALLS = {"eval", "exec", "compile", "__import__", "execfile", "input"}
# Terminal control characters but tab and newline: C0, DEL, C1 (0x9b is a one-byte CSI).
CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]")


def unsafe_uses(source: str) -> list[str]:
    """What in `source` could run code from a file: imports of deserialisers/importers, eval-like calls."""
    found = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            found += [a.name for a in node.names if a.name.split(".")[0] in UNSAFE_MODULES]
        elif isinstance(node, ast.ImportFrom) and (node.module or "").split(".")[0] in UNSAFE_MODULES:
            found.append(node.module or "")
        elif isinstance(node, ast.Name) and node.id in UNSAFE_CALLS:
            found.append(node.id)
        elif isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name) and node.value.id in UNSAFE_MODULES:
            found.append(f"{node.value.id}.{node.attr}")  # pickle.loads, even if imported under a local name
    return sorted(found)


def test_the_scanner_finds_what_it_looks_for():
    assert unsafe_uses("import pickle\nx = pickle.loads(b'')") == ["pickle", "pickle.loads"]
    assert unsafe_uses("from marshal import loads") == ["marshal"]
    assert unsafe_uses("import importlib.util") == ["importlib.util"]
    assert unsafe_uses("eval(s); exec(s); __import__('os')") == ["__import__", "eval", "exec"]
    assert unsafe_uses("'this text may say exec or eval or pickle'; executing = 1; code = 2") == []


@pytest.mark.parametrize("path", LOADERS)
def test_trace_loaders_use_nothing_that_runs_code(path):
    assert unsafe_uses((ROOT / path).read_text()) == []


HOSTILE = "\x1b]0;owned\x07\x1b[2J\x1b[31mred\x9b1m\x00 __import__('os').system('touch PWNED') {0.__class__} %n"


def hostile_trace(path: Path) -> Path:
    lines = [
        {"format": "concurview-trace", "version": 1, "scenario": None, "program": "evil" + HOSTILE,
         "params": {"k" + HOSTILE: HOSTILE}, "source": "/nonexistent/" + HOSTILE},
        {"type": "lane", "id": 0, "kind": "main", "name": "main" + HOSTILE, "pid": 1},
        {"type": "lane", "id": 1, "kind": "thread", "name": HOSTILE, "parent": 0, "pid": 1},
        {"seq": 0, "t": 0, "lane": 0, "kind": "open"},
        {"seq": 1, "t": 10, "lane": 0, "kind": "run", "reason": HOSTILE, "where": "x.py:1" + HOSTILE},
        {"seq": 2, "t": 20, "lane": 1, "kind": "open", "cause": 0},
        {"seq": 3, "t": 30, "lane": 0, "kind": "wait", "reason": HOSTILE},
        {"seq": 4, "t": 40, "lane": 1, "kind": "run", "reason": HOSTILE, "cause": 0},
        {"seq": 5, "t": 50, "lane": 1, "kind": "log", "reason": "stdout", "text": HOSTILE},
        {"seq": 6, "t": 60, "lane": 1, "kind": "error", "reason": HOSTILE, "text": HOSTILE},
        {"seq": 7, "t": 70, "lane": 1, "kind": "close", "reason": HOSTILE},
        {"seq": 8, "t": 80, "lane": 0, "kind": "mark", "reason": HOSTILE, "text": HOSTILE},
        {"type": "footer", "complete": False, "reason": HOSTILE, "events": 9, "lanes": 2},
    ]
    path.write_text("".join(json.dumps(line, separators=(",", ":")) + "\n" for line in lines))
    return path


def test_a_hostile_trace_loads_as_data_and_runs_nothing(tmp_path, monkeypatch):
    from concurview.trace.store import load

    monkeypatch.chdir(tmp_path)
    tl = load(hostile_trace(tmp_path / "evil.jsonl"))
    assert tl.lanes[1].name == HOSTILE, "strings are kept as they were, only printing neutralises them"
    assert tl.n_events == 9 and not (tmp_path / "PWNED").exists()


@pytest.mark.parametrize("args", [["summary"], ["summary", "--json"], ["export", "--to", "txt", "-o", "-"],
                                  ["export", "--to", "txt"], ["export", "--to", "svg"]], ids=lambda a: " ".join(a))
def test_the_cli_never_sends_a_traces_control_characters_to_the_terminal(tmp_path, args):
    trace = hostile_trace(tmp_path / "evil.jsonl")
    out = cv(args[0], str(trace), *args[1:], cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    text = out.stdout + out.stderr
    if args == ["export", "--to", "txt"]:
        text += (tmp_path / "evil.txt").read_text()  # a file someone will `cat`
    if args == ["export", "--to", "svg"]:
        import xml.dom.minidom

        text += (tmp_path / "evil.svg").read_text()
        xml.dom.minidom.parse(str(tmp_path / "evil.svg"))  # still well-formed XML
    assert "owned" in text, "the strings are shown..."
    assert not CONTROL.findall(text), "...but not their control characters"
    escaped = "\\u001b]0;owned" if "--json" in args else "\\x1b]0;owned"
    assert escaped in text, "shown escaped, so you can tell what was there"
    if "--json" in args:
        assert json.loads(out.stdout)["lane_totals"][1]["name"] == HOSTILE, "JSON still carries the exact string"
    assert not (tmp_path / "PWNED").exists()


def test_control_characters_from_a_recorded_program_are_neutralised_in_summary(tmp_path):
    """The program's own output goes to the terminal as under python; the trace's summary shows it escaped."""
    trace = tmp_path / "t.jsonl"
    run = cv("run", "--record", str(trace), str(PROGRAMS / "evil.py"), cwd=tmp_path)
    assert run.returncode == 0, run.stderr
    for args in (["summary", str(trace)], ["export", str(trace), "--to", "txt", "-o", "-"]):
        out = cv(*args)
        assert out.returncode == 0 and "evil" in out.stdout, out.stderr
        assert not CONTROL.findall(out.stdout)
    assert not (tmp_path / "PWNED").exists()


def _plain_env(env: dict[str, str], tmp_path: Path) -> dict[str, str]:
    """What the program sees under plain python with `env` (python itself may add LC_CTYPE, PEP 538)."""
    dump = tmp_path / "plain.json"
    subprocess.run([sys.executable, str(PROGRAMS / "env_dump.py"), str(dump)], env=env, check=True, timeout=30)
    return json.loads(dump.read_text())


ADDED = {"CONCURVIEW_CHANNEL", "CONCURVIEW_T0"}  # README, "Reliability"


def test_the_child_gets_our_environment_plus_only_the_documented_keys(tmp_path):
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": str(tmp_path), "USER_SECRET": "from the shell",
           "LANG": "C.UTF-8"}
    dump = tmp_path / "env.json"
    out = subprocess.run([*EXE, "run", "--record", str(tmp_path / "t.jsonl"), str(PROGRAMS / "env_dump.py"),
                          str(dump)], env=env, capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    child = json.loads(dump.read_text())
    plain = _plain_env(env, tmp_path)
    assert set(child) - set(plain) == ADDED
    assert {k: v for k, v in child.items() if k not in ADDED} == plain
    assert "PYTHONUNBUFFERED" not in child  # it would change the program's stdio objects


def test_a_run_started_in_process_passes_the_environment_as_it_is(tmp_path, monkeypatch):
    """The app's path: Run in the UI process. Nothing of the UI's own (Textual's) state is added."""
    from concurview.engines.runner import Run, Target

    monkeypatch.setenv("SOME_USER_SETTING", "kept")
    dump = tmp_path / "env.json"
    run = Run(Target(str(PROGRAMS / "env_dump.py"), args=[str(dump)]), timeout=60)
    for _ in run:
        pass
    assert run.exit_code == 0
    child = json.loads(dump.read_text())
    assert set(child) - set(os.environ) <= ADDED
    assert {k: v for k, v in child.items() if k not in ADDED} == {k: v for k, v in os.environ.items()
                                                                  if k not in ADDED}
