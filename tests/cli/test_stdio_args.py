"""`-` as a file argument, as a user meets it in a shell: stdin for traces read, stdout for traces and exports
written, gzip told by its magic bytes, the same bounds and one-line errors as files, and a closed pipe that
ends concurview quietly by SIGPIPE (real `python -m concurview` processes)."""

from __future__ import annotations

import gzip
import json
import os
import pty
import select
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from concurview.trace.tracefile import TraceReader

EXE = [sys.executable, "-m", "concurview"]
QUICK = ["--set", "task_sleep=0.05", "--set", "task2_sleep=0.02"]


def cv(*args: str, data: bytes | None = None, timeout: float = 60, **kwargs) -> subprocess.CompletedProcess[bytes]:
    """concurview with `data` on its stdin (else kwargs' stdin, else /dev/null)."""
    if data is None:
        kwargs.setdefault("stdin", subprocess.DEVNULL)
    return subprocess.run([*EXE, *args], input=data, capture_output=True, timeout=timeout, **kwargs)


def one_line_error(out: subprocess.CompletedProcess[bytes], *words: str) -> str:
    err = out.stderr.decode()
    assert out.returncode == 2, (out.returncode, err)
    assert "Traceback" not in err and err.count("\n") == 1 and err.startswith("concurview: error: "), err
    for w in words:
        assert w in err, err
    return err


def trace_lines(data: bytes, tmp_path: Path):
    """The trace in `data` read back by the real reader: (reader, lanes, events)."""
    r = TraceReader(tmp_path / "read-back.jsonl", data)
    lanes, events = [], []
    for ls, es in r.batches():
        lanes += ls
        events += es
    return r, lanes, events


@pytest.fixture(scope="module")
def trace(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("stdio") / "t.jsonl"
    out = cv("record", "asyncio-tasks", "-o", str(path), *QUICK)
    assert out.returncode == 0, out.stderr
    return path


def test_summary_reads_a_trace_from_stdin_plain_or_gzipped(trace):
    by_name = cv("summary", str(trace))
    assert by_name.returncode == 0
    for data in (trace.read_bytes(), gzip.compress(trace.read_bytes())):  # gzip: told by its magic bytes
        piped = cv("summary", "-", data=data)
        assert piped.returncode == 0, piped.stderr
        assert piped.stdout == by_name.stdout and piped.stderr == b""
        assert piped.stdout.startswith(b"asyncio-tasks  (complete, exit code 0)")
    s = json.loads(cv("summary", "--json", "-", data=trace.read_bytes()).stdout)
    assert s["scenario"] == "asyncio-tasks" and s["lanes"] == 3


def test_export_reads_stdin_and_writes_stdout(trace, tmp_path):
    chrome = cv("export", "-", "--to", "chrome", "-o", "-", data=trace.read_bytes(), cwd=tmp_path)
    assert chrome.returncode == 0 and chrome.stderr == b""
    doc = json.loads(chrome.stdout)
    assert doc["otherData"]["scenario"] == "asyncio-tasks" and doc["traceEvents"]
    # No -o with a trace from stdin: stdout (there is no name to put the output beside).
    txt = cv("export", "-", "--to", "txt", data=gzip.compress(trace.read_bytes()), cwd=tmp_path)
    assert txt.returncode == 0 and txt.stdout.decode().startswith("asyncio-tasks · complete · ")
    assert list(tmp_path.iterdir()) == [], "nothing written beside the working directory"
    by_name = cv("export", str(trace), "--to", "txt", "-o", "-")
    assert by_name.returncode == 0 and by_name.stdout == txt.stdout and "█" in by_name.stdout.decode()


def test_record_to_stdout_sends_the_trace_and_nothing_else(tmp_path):
    out = cv("record", "asyncio-tasks", "-o", "-", *QUICK, cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    r, lanes, events = trace_lines(out.stdout, tmp_path)
    assert r.header.scenario == "asyncio-tasks" and r.complete and len(lanes) == 3
    # The scenario's prints are in the trace only; our own line is on stderr, naming stdout.
    assert "结束了" in [e.text for e in events if e.kind == "log"]
    assert out.stderr.decode().startswith("asyncio-tasks: ") and out.stderr.decode().rstrip().endswith("-> stdout")
    assert not (tmp_path / "-").exists() and list(tmp_path.iterdir()) == []
    # Straight into another concurview, as in a shell pipeline.
    piped = subprocess.run(f"{' '.join(EXE)} record asyncio-tasks -o - {' '.join(QUICK)} | "
                           f"{' '.join(EXE)} summary -", shell=True, capture_output=True, text=True, timeout=60)
    assert piped.returncode == 0 and piped.stdout.startswith("asyncio-tasks  (complete, exit code 0)")


def test_run_record_to_stdout_moves_the_programs_output_to_stderr(tmp_path):
    prog = tmp_path / "prog.py"
    prog.write_text("import sys\nprint('to stdout')\nprint('to stderr', file=sys.stderr)\nsys.exit(3)\n")
    out = cv("run", "--record", "-", str(prog))
    assert out.returncode == 3, "the program's exit status, as with a file"
    r, _lanes, events = trace_lines(out.stdout, tmp_path)
    assert r.footer.exit_code == 3
    assert {"to stdout", "to stderr"} <= {e.text for e in events if e.kind == "log"}, "kept in the trace"
    err = out.stderr.decode()
    assert "to stdout\n" in err and "to stderr\n" in err and err.rstrip().endswith("-> stdout")


def test_compare_to_stdout_puts_its_table_on_stderr(tmp_path):
    out = cv("compare", "--models", "sequential,asyncio", "--jobs", "2", "--job-sleep", "0.02", "-o", "-",
             timeout=120)
    assert out.returncode == 0, out.stderr
    r, lanes, _ = trace_lines(out.stdout, tmp_path)
    assert r.header.scenario == "compare-models" and lanes
    err = out.stderr.decode()
    assert "sequential" in err and "asyncio" in err and "most at once" in err
    one_line_error(cv("compare", "--json", "-o", "-"), "-o - and --json both want stdout")


def _closed_pipe() -> int:
    """The write end of a pipe whose reader is already gone (no race with a `head` that has yet to exit)."""
    r, w = os.pipe()
    os.close(r)
    return w


@pytest.mark.parametrize("args", [
    ["export", "{trace}", "--to", "txt", "-o", "-"],
    ["export", "{trace}", "--to", "chrome"],  # stdin is the trace: stdout by default
    ["summary", "--json", "{trace}"],
    ["summary", "-"],
    ["record", "asyncio-tasks", "-o", "-", *QUICK],
])
def test_a_closed_pipe_ends_concurview_by_sigpipe_quietly(trace, args):
    w = _closed_pipe()
    with open(trace, "rb") as stdin:
        out = subprocess.run([*EXE, *[a.replace("{trace}", "-" if "chrome" in args else str(trace)) for a in args]],
                             stdin=stdin, stdout=w, stderr=subprocess.PIPE, timeout=60)
    os.close(w)
    assert out.returncode == -signal.SIGPIPE, (out.returncode, out.stderr)
    assert out.stderr == b"", "nothing said: the reader left, as `cat | head` says nothing"


def test_a_pipe_into_head_shows_status_141_and_no_traceback(trace):
    big = Path(trace).with_name("big.jsonl")
    if not big.exists():  # an export longer than a pipe's buffer: the writer meets the closed pipe
        out = cv("record", "threadpool-shutdown", "-o", str(big), "--set", "sleep=0.001", "--set", "n_tasks=300")
        assert out.returncode == 0, out.stderr
    shell = subprocess.run(["bash", "-c", f"{' '.join(EXE)} export {big} --to chrome -o - | head -c 10; "
                                          "s=${PIPESTATUS[0]}; echo; echo status=$s"],
                           capture_output=True, text=True, timeout=60)
    assert shell.stdout.startswith('{"traceEv') and shell.stdout.rstrip().endswith("status=141"), shell.stdout
    assert shell.stderr == ""


def test_stdin_that_is_a_terminal_or_closed_is_one_line():
    master, slave = pty.openpty()
    try:
        one_line_error(cv("summary", "-", stdin=slave), "-: stdin is a terminal")
    finally:
        os.close(master)
        os.close(slave)
    closed = subprocess.run(["bash", "-c", f"{' '.join(EXE)} summary - 0<&-"], capture_output=True, timeout=60)
    one_line_error(closed, "-: stdin is closed")


def test_bad_or_oversized_stdin_is_one_line_naming_stdin(trace):
    one_line_error(cv("summary", "-", data=b"garbage\n"), "stdin: not a concurview trace")
    one_line_error(cv("export", "-", "--to", "txt", data=b""), "stdin: empty file")
    one_line_error(cv("summary", "-", "--max-bytes", "1k", data=trace.read_bytes()),
                   "stdin: more than 1 kB", "--max-bytes")
    head = b'{"format":"concurview-trace","version":1}\n{"type":"lane","id":0,"kind":"main","name":"m"}\n'
    body = b"".join(b'{"seq":%d,"t":%d,"lane":0,"kind":"log","text":"%s"}\n' % (i, i, b"x" * 100)
                    for i in range(40_000))
    bomb = gzip.compress(head + body)  # 5 MB of content in a few hundred kB of gzip
    assert len(bomb) < 1 << 20
    one_line_error(cv("summary", "-", "--max-bytes", "1M", data=bomb), "stdin: more than 1 MB", "decompressed")


def test_open_stdin_without_a_terminal_says_so_in_one_line(trace):
    # A new session has no controlling terminal: there is nothing to give the app once stdin is read.
    out = cv("open", "-", data=trace.read_bytes(), start_new_session=True)
    one_line_error(out, "open -: no terminal")
    one_line_error(cv("open", "-", data=b"{}\n", start_new_session=True), "stdin:")


def test_open_stdin_shows_the_trace_in_the_app_on_the_terminal(trace, tmp_path):
    """The trace comes down a pipe, the keys from the terminal: the app shows the trace, `q` quits it."""
    master, slave = pty.openpty()
    env = dict(os.environ, TERM="xterm-256color", TMPDIR=str(tmp_path))
    # bash -c: `< file` makes stdin the trace; the pty stays the controlling terminal (/dev/tty).
    proc = subprocess.Popen(["bash", "-c", f"exec {' '.join(EXE)} open - < {gzip_of(trace, tmp_path)}"],
                            stdin=slave, stdout=slave, stderr=slave, start_new_session=True, env=env,
                            preexec_fn=lambda: __import__("fcntl").ioctl(0, __import__("termios").TIOCSCTTY, 0))
    os.close(slave)
    out, quit_sent, deadline = b"", False, time.monotonic() + 60
    try:
        while time.monotonic() < deadline and proc.poll() is None:
            if select.select([master], [], [], 0.2)[0]:
                try:
                    out += os.read(master, 1 << 16)
                except OSError:
                    break
            if not quit_sent and b"task2" in out:
                time.sleep(0.3)
                os.write(master, b"q")
                quit_sent = True
        assert quit_sent, out[-2000:]
        assert proc.wait(timeout=20) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
        os.close(master)
    assert [p for p in tmp_path.iterdir() if p.name.startswith("concurview-stdin-")] == [], "its copy is removed"


def gzip_of(trace: Path, folder: Path) -> Path:
    out = folder / "t.jsonl.gz"
    out.write_bytes(gzip.compress(trace.read_bytes()))
    return out


def test_run_from_stdin_is_refused_in_one_line():
    one_line_error(cv("run", "-", data=b"print(1)\n"), "run -: a program from stdin is not supported")
