"""`concurview run --record` is transparent to a program's stdio: the same stream objects, output and exit status as python."""

from __future__ import annotations

import json
import os
import pty
import select
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from concurview.trace.tracefile import TraceReader

EXE = [sys.executable, "-m", "concurview"]
# As a user's shell has it: no PYTHONUNBUFFERED (the test runner's may set it), which changes stdio objects.
ENV = {k: v for k, v in os.environ.items() if k != "PYTHONUNBUFFERED"}

STDIO_PROBE = textwrap.dedent("""
    import faulthandler, io, json, subprocess, sys
    faulthandler.enable()  # takes sys.stderr.fileno()
    sys.stdout.reconfigure(errors="backslashreplace")
    facts = {}
    for name in ("stdout", "stderr"):
        s = getattr(sys, name)
        facts[name] = {
            "textio": isinstance(s, io.TextIOWrapper) and isinstance(s, io.TextIOBase),
            "dunder": getattr(sys, "__" + name + "__") is s,
            "fileno": s.fileno(), "isatty": s.isatty(), "line_buffering": s.line_buffering,
            "write_through": s.write_through, "errors": s.errors, "encoding": s.encoding,
            "mode": s.mode, "name": s.name, "buffer": type(s.buffer).__name__,
            "raw": type(getattr(s.buffer, "raw", s.buffer)).__name__, "writable": s.writable(),
        }
    sys.stdout.buffer.write(b"bytes through .buffer\\n")
    sys.stdout.flush()
    subprocess.run([sys.executable, "-c", "print('from a subprocess')"], stdout=sys.stdout, check=True)
    with open(sys.argv[1], "w") as f:
        json.dump(facts, f)
    print(json.dumps(facts, sort_keys=True))
""")


def plain_and_traced(tmp_path: Path, program: str, *args: str, stdin: str = "", record: bool = True):
    """(python's CompletedProcess, concurview's) for the same program, input and environment."""
    path = tmp_path / "prog.py"
    path.write_text(program)
    plain = subprocess.run([sys.executable, str(path), *args], input=stdin, capture_output=True, text=True,
                           env=ENV, cwd=tmp_path, timeout=60)
    traced = subprocess.run([*EXE, "run", "--record", str(tmp_path / "t.jsonl"), str(path), *args], input=stdin,
                            capture_output=True, text=True, env=ENV, cwd=tmp_path, timeout=60)
    return plain, traced


def logs(trace: Path) -> list[tuple[str, str]]:
    reader = TraceReader(trace)
    names = {}
    out = []
    for lanes, events in reader.batches():
        names.update({lane.id: lane.name for lane in lanes})
        out += [(names[e.lane], e.text) for e in events if e.kind == "log"]
    return out


def test_stdio_objects_output_and_status_are_pythons_in_a_pipe(tmp_path):
    """sys.stdout/sys.stderr: real TextIOWrappers over fds 1 and 2, reconfigure, .buffer, fileno,
    faulthandler, a subprocess writing to sys.stdout; the same facts and bytes as under python."""
    plain, traced = plain_and_traced(tmp_path, STDIO_PROBE, "facts.json")
    assert plain.returncode == 0, plain.stderr
    assert traced.returncode == 0, traced.stderr
    plain_facts = json.loads(plain.stdout.splitlines()[-1])
    assert json.loads(traced.stdout.splitlines()[-1]) == plain_facts
    assert plain_facts["stdout"]["line_buffering"] is False and plain_facts["stdout"]["buffer"] == "BufferedWriter"
    assert traced.stdout == plain.stdout
    assert plain.stdout.startswith("bytes through .buffer\nfrom a subprocess\n{")
    assert ("MainThread", plain.stdout.splitlines()[-1]) in logs(tmp_path / "t.jsonl")


def test_stdin_piped_to_base64_and_json_tool_modules(tmp_path):
    """`echo hi | concurview run --record t -m base64` and `-m json.tool`: bytes through .buffer, a stream as
    a context manager; the output is python's, and json.tool's lines are in the trace."""
    for module, data in (("base64", "hi\n"), ("json.tool", '{"a": [1, 2]}\n')):
        plain = subprocess.run([sys.executable, "-m", module], input=data, capture_output=True, text=True,
                               env=ENV, timeout=60)
        traced = subprocess.run([*EXE, "run", "--record", str(tmp_path / "t.jsonl"), "-m", module], input=data,
                                capture_output=True, text=True, env=ENV, timeout=60)
        assert (traced.returncode, traced.stdout) == (plain.returncode, plain.stdout) == (0, plain.stdout), \
            traced.stderr
    assert [text for _, text in logs(tmp_path / "t.jsonl")] == ["{", '    "a": [', "        1,", "        2",
                                                                  "    ]", "}"]


def test_lines_are_recorded_on_the_lane_that_printed_them_though_the_pipe_is_block_buffered(tmp_path):
    program = textwrap.dedent("""
        import sys, threading
        print("main 1")
        t = threading.Thread(target=lambda: print("from the worker", end="\\n"), name="worker")
        t.start(); t.join()
        sys.stderr.write("an error line\\n")
        print("main 2")
    """)
    plain, traced = plain_and_traced(tmp_path, program)
    assert (traced.stdout, traced.returncode) == (plain.stdout, 0)
    assert traced.stderr.startswith(plain.stderr)
    assert logs(tmp_path / "t.jsonl") == [("MainThread", "main 1"), ("worker", "from the worker"),
                                          ("MainThread", "an error line"), ("MainThread", "main 2")]


def test_a_custom_excepthook_reports_the_uncaught_exception(tmp_path):
    program = textwrap.dedent("""
        import sys
        def hook(kind, value, tb):
            print(f"HOOK saw {kind.__name__}: {value}", file=sys.stderr)
        sys.excepthook = hook
        raise ValueError("boom")
    """)
    plain, traced = plain_and_traced(tmp_path, program)
    assert plain.stderr == "HOOK saw ValueError: boom\n"
    assert traced.returncode == plain.returncode == 1
    assert traced.stderr.startswith(plain.stderr) and "Traceback" not in traced.stderr


def test_pytest_under_run_exits_as_pytest_does(tmp_path):
    """`concurview run -m pytest` on a passing folder exits 0, on a failing one 1, with pytest's report."""
    (tmp_path / "ok").mkdir()
    (tmp_path / "ok" / "test_ok.py").write_text("def test_ok():\n    print('hi')\n")
    (tmp_path / "bad").mkdir()
    (tmp_path / "bad" / "test_bad.py").write_text("def test_bad():\n    assert 1 == 2\n")
    for folder, status, said in (("ok", 0, "1 passed"), ("bad", 1, "1 failed")):
        cmd = ["-m", "pytest", "-q", "-p", "no:cacheprovider", folder]
        traced = subprocess.run([*EXE, "run", "--record", str(tmp_path / "t.jsonl"), *cmd], capture_output=True,
                                text=True, env=ENV, cwd=tmp_path, timeout=120)
        assert traced.returncode == status, traced.stdout + traced.stderr
        assert said in traced.stdout and "INTERNALERROR" not in traced.stdout + traced.stderr
    assert "assert 1 == 2" in traced.stdout


def _in_pty(cmd: list[str], cwd: Path) -> tuple[int, bytes]:
    """Run cmd with stdin, stdout and stderr a fresh pty, as in a terminal: (status, what it printed)."""
    master, slave = pty.openpty()
    proc = subprocess.Popen(cmd, stdin=slave, stdout=slave, stderr=slave, cwd=cwd, env=ENV, close_fds=True)
    os.close(slave)
    out = b""
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        ready, _, _ = select.select([master], [], [], 0.1)
        if ready:
            try:
                chunk = os.read(master, 1 << 16)
            except OSError:  # EIO: every writer closed the pty
                break
            if not chunk:
                break
            out += chunk
        elif proc.poll() is not None:
            break
    os.close(master)
    return proc.wait(timeout=10), out


def test_in_a_terminal_stdio_is_a_tty_as_under_python(tmp_path):
    """In a pty, sys.stdout.isatty() is True and stdout is line-buffered, as under python (the colour and
    progress-bar decisions programs make from it)."""
    path = tmp_path / "prog.py"
    path.write_text(STDIO_PROBE)
    facts = tmp_path / "facts.json"
    status, out = _in_pty([sys.executable, str(path), str(facts)], tmp_path)
    assert status == 0, out
    plain_facts = json.loads(facts.read_text())
    facts.unlink()
    assert plain_facts["stdout"]["isatty"] is True and plain_facts["stdout"]["line_buffering"] is True
    status, traced_out = _in_pty([*EXE, "run", "--record", str(tmp_path / "t.jsonl"), str(path), str(facts)],
                                 tmp_path)
    assert status == 0, traced_out
    assert json.loads(facts.read_text()) == plain_facts
    assert traced_out.startswith(out)  # then concurview's own line


def test_spawn_and_forkserver_children_write_to_the_console_like_fork_children(tmp_path):
    """A spawned worker's print and an initializer's traceback reach the console (and the trace), as a
    fork child's do."""
    program = textwrap.dedent("""
        import concurrent.futures as cf, multiprocessing as mp, sys

        def work(x):
            print(f"worker says {x}", flush=True)

        def init():
            raise ValueError("bad init")

        if __name__ == "__main__":
            ctx = mp.get_context(sys.argv[1])
            p = ctx.Process(target=work, args=(3,))
            p.start(); p.join()
            with cf.ProcessPoolExecutor(1, mp_context=ctx, initializer=init) as pool:
                try:
                    pool.submit(work, 4).result()
                except Exception as e:
                    print("pool:", type(e).__name__)
    """)
    for how in ("fork", "spawn", "forkserver"):
        plain, traced = plain_and_traced(tmp_path, program, how)
        assert plain.stdout == "worker says 3\npool: BrokenProcessPool\n"
        assert traced.returncode == 0 and traced.stdout == plain.stdout, (how, traced.stderr)
        assert "Exception in initializer" in traced.stderr and "ValueError: bad init" in traced.stderr, how
        assert ("worker says 3" in [text for _, text in logs(tmp_path / "t.jsonl")]), how


@pytest.mark.slow
def test_the_live_app_says_before_it_starts_that_stdin_is_not_connected(tmp_path):
    """`concurview run prog.py` (the app) takes the terminal: one line first says the program's input()
    gets EOF and that --record keeps the terminal; then the app starts."""
    from concurview.cli import STDIN_NOTICE

    path = tmp_path / "asks.py"
    path.write_text("name = input('name? ')\nprint('hello', name)\n")
    master, slave = pty.openpty()
    proc = subprocess.Popen([*EXE, "run", str(path)], stdin=slave, stdout=slave, stderr=slave, cwd=tmp_path,
                            env=dict(ENV, TERM="xterm-256color"), close_fds=True)
    os.close(slave)
    out = b""
    deadline = time.monotonic() + 60
    try:
        # Until the app is up (it switches to the alternate screen); what it does then is not this test's.
        while time.monotonic() < deadline and proc.poll() is None and b"\x1b[?1049h" not in out:
            ready, _, _ = select.select([master], [], [], 0.1)
            if ready:
                try:
                    out += os.read(master, 1 << 16)
                except OSError:
                    break
        assert b"\x1b[?1049h" in out, out[-2000:]
    finally:
        os.close(master)
        proc.kill()
    notice = out.split(b"\x1b[?1049h")[0].decode(errors="replace")
    assert STDIN_NOTICE.split(";")[0] in notice.replace("\r\n", " ").replace("\n", " ")
    assert "--record" in notice
