"""Output files as a user meets them: devices, FIFOs, stdout, planted links, inputs, empty names (real CLI processes).

Device nodes are private copies made with mknod (root) so that a regression can never
replace the machine's /dev/null; without root, the real /dev/null and /dev/full are used
(a non-root regression cannot replace them).
"""

from __future__ import annotations

import json
import os
import shutil
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from concurview.trace.tracefile import TraceReader

EXE = [sys.executable, "-m", "concurview"]
QUICK = ["--set", "task_sleep=0.01", "--set", "task2_sleep=0.01"]
TRACES = Path(__file__).resolve().parents[1] / "traces"


def cv(*args: str, timeout: float = 60, **kwargs) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*EXE, *args], capture_output=True, text=True, timeout=timeout,
                          stdin=subprocess.DEVNULL, **kwargs)


def one_line_error(out: subprocess.CompletedProcess[str], *words: str) -> str:
    assert out.returncode == 2, (out.returncode, out.stderr)
    assert "Traceback" not in out.stderr, out.stderr
    line = out.stderr.strip()
    assert line.startswith("concurview: error: ") and "\n" not in line, out.stderr
    for w in words:
        assert w in line, line
    return line


def device(tmp_path: Path, name: str, minor: int) -> Path:
    """A character device like /dev/NAME (1, minor): a private node when root, the real one otherwise."""
    if os.geteuid() != 0:
        return Path("/dev") / name
    node = tmp_path / name
    try:
        os.mknod(node, 0o666 | stat.S_IFCHR, os.makedev(1, minor))
        os.close(os.open(node, os.O_WRONLY))
    except OSError as e:
        pytest.skip(f"cannot make a private /dev/{name} here: {e}")
    return node


def read_trace(path: Path):
    r = TraceReader(path)
    lanes = [lane for ls, _ in r.batches() for lane in ls]
    return r, lanes


# -- item 3: device nodes, FIFOs and stdout are written through, never replaced -------------------------

def test_record_to_dev_null_keeps_the_device(tmp_path):
    null = device(tmp_path, "null", 3)
    out = cv("record", "asyncio-tasks", "-o", str(null), *QUICK)
    assert out.returncode == 0 and "Traceback" not in out.stderr, out.stderr
    assert stat.S_ISCHR(os.lstat(null).st_mode), "the device node is still a device node"
    assert not list(null.parent.glob("null*.partial"))


def test_record_to_dev_full_is_one_line_no_space(tmp_path):
    full = device(tmp_path, "full", 7)
    out = cv("record", "asyncio-tasks", "-o", str(full), *QUICK)
    one_line_error(out, str(full), "No space left on device")
    assert stat.S_ISCHR(os.lstat(full).st_mode)


def test_export_to_dev_full_is_one_line_no_space(tmp_path):
    full = device(tmp_path, "full", 7)
    out = cv("export", str(TRACES / "asyncio-tasks.jsonl"), "--to", "txt", "-o", str(full))
    one_line_error(out, "No space left on device")


def test_record_to_our_stdout_by_its_fd_name_streams_the_trace(tmp_path):
    """/dev/fd/1 (like /dev/stdout) is the stdout we were given: the trace goes down the pipe."""
    out = subprocess.run([*EXE, "record", "asyncio-tasks", "-o", "/dev/fd/1", *QUICK],
                         capture_output=True, timeout=60)
    assert out.returncode == 0, out.stderr
    (tmp_path / "t.jsonl").write_bytes(out.stdout)
    r, lanes = read_trace(tmp_path / "t.jsonl")
    assert r.header.scenario == "asyncio-tasks" and len(lanes) == 3 and r.complete


def test_record_to_a_fifo_streams_to_its_reader(tmp_path):
    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)
    reader = os.open(fifo, os.O_RDONLY | os.O_NONBLOCK)  # a reader is there: the writer's open does not wait
    try:
        out = cv("record", "asyncio-tasks", "-o", str(fifo), *QUICK)
        data = os.read(reader, 1 << 16)
    finally:
        os.close(reader)
    assert out.returncode == 0, out.stderr
    assert stat.S_ISFIFO(os.lstat(fifo).st_mode), "the FIFO is still a FIFO"
    (tmp_path / "t.jsonl").write_bytes(data)
    r, lanes = read_trace(tmp_path / "t.jsonl")
    assert len(lanes) == 3 and r.complete


# -- item 5: a link planted at the temp name is never followed ------------------------------------------

@pytest.mark.parametrize("command", ["record", "export"])
def test_a_symlink_planted_at_the_partial_name_is_not_followed(tmp_path, command):
    victim = tmp_path / "victim.txt"
    victim.write_text("precious\n")
    trace = tmp_path / "t.out"
    Path(str(trace) + ".partial").symlink_to(victim)
    if command == "record":
        out = cv("record", "asyncio-tasks", "-o", str(trace), *QUICK)
    else:
        out = cv("export", str(TRACES / "asyncio-tasks.jsonl"), "--to", "txt", "-o", str(trace))
    assert out.returncode == 0, out.stderr
    assert victim.read_text() == "precious\n", "the link's target was written through"
    assert trace.is_file() and trace.stat().st_size > 100
    assert [p.name for p in tmp_path.glob("*.partial")] == ["t.out.partial"], "only the planted link is left"


def test_a_symlink_at_the_output_is_replaced_and_its_target_kept(tmp_path):
    """The chosen rule: the link itself is replaced (as rename does); nothing is written through it."""
    victim = tmp_path / "victim.jsonl"
    victim.write_text("precious\n")
    link = tmp_path / "t.txt"
    link.symlink_to(victim)
    out = cv("export", str(TRACES / "asyncio-tasks.jsonl"), "--to", "txt", "-o", str(link))
    assert out.returncode == 0, out.stderr
    assert not link.is_symlink() and "asyncio-tasks" in link.read_text()
    assert victim.read_text() == "precious\n"


# -- item 6: an output is never one of the inputs --------------------------------------------------------

def test_export_over_its_own_input_is_refused_by_any_name(tmp_path):
    src = tmp_path / "t.jsonl"
    shutil.copy(TRACES / "asyncio-tasks.jsonl", src)
    before = src.read_bytes()
    (tmp_path / "soft.jsonl").symlink_to(src)
    os.link(src, tmp_path / "hard.jsonl")
    for out_name in ("t.jsonl", "soft.jsonl", "hard.jsonl"):
        out = cv("export", str(src), "--to", "txt", "-o", str(tmp_path / out_name))
        one_line_error(out, "is the input")
    out = cv("export", str(tmp_path / "soft.jsonl"), "--to", "chrome", "-o", str(src))
    one_line_error(out, "is the input")
    assert src.read_bytes() == before


def test_export_default_name_equal_to_the_input_is_refused(tmp_path):
    src = tmp_path / "x.chrome.json"
    assert cv("export", str(TRACES / "asyncio-tasks.jsonl"), "--to", "chrome", "-o", str(src)).returncode == 0
    before = src.read_bytes()
    out = cv("export", str(src), "--to", "chrome")
    one_line_error(out, "default output name", "-o FILE")
    assert src.read_bytes() == before
    assert cv("export", str(src), "--to", "txt").returncode == 0, "another format's default name is fine"
    assert (tmp_path / "x.txt").is_file()


def test_run_record_over_its_own_script_is_refused(tmp_path):
    script = tmp_path / "p.py"
    script.write_text("print('hello')\n")
    out = cv("run", "--record", str(script), str(script))
    one_line_error(out, "is the input")
    assert script.read_text() == "print('hello')\n"


# -- item 11: empty names --------------------------------------------------------------------------------

def test_run_record_with_an_empty_name_is_a_usage_error(tmp_path):
    script = tmp_path / "p.py"
    script.write_text("print('hello')\n")
    out = cv("run", "--record", "", str(script), timeout=30)
    one_line_error(out, "--record", "empty file name")


@pytest.mark.parametrize("argv", [
    ["record", "asyncio-tasks", "-o", ""],
    ["export", str(TRACES / "asyncio-tasks.jsonl"), "--to", "txt", "-o", ""],
    ["compare", "--models", "sequential", "--jobs", "1", "--job-sleep", "0.01", "-o", ""],
    ["record", "asyncio-tasks", "-o", "  "],
], ids=["record", "export", "compare", "blank"])
def test_an_empty_output_name_is_a_usage_error(tmp_path, argv):
    out = cv(*argv, cwd=tmp_path)
    one_line_error(out, "empty file name")
    assert not list(tmp_path.iterdir()), "nothing was written anywhere"


def test_compare_writes_its_stacked_trace_through_the_same_path(tmp_path):
    trace = tmp_path / "c.jsonl"
    out = cv("compare", "--models", "sequential,threads", "--jobs", "2", "--job-sleep", "0.01", "--json",
             "-o", str(trace))
    assert out.returncode == 0, out.stderr
    assert [r["model"] for r in json.loads(out.stdout)] == ["sequential", "threads"]
    r, lanes = read_trace(trace)
    assert r.complete and lanes and not list(tmp_path.glob("*.partial"))


def test_compare_to_a_full_device_still_prints_its_table(tmp_path):
    full = device(tmp_path, "full", 7)
    out = cv("compare", "--models", "sequential", "--jobs", "1", "--job-sleep", "0.01", "--json", "-o", str(full))
    assert out.returncode == 2 and "Traceback" not in out.stderr, out.stderr
    assert out.stderr.strip().splitlines()[-1].startswith("concurview: error: ")
    assert "No space left on device" in out.stderr
    assert json.loads(out.stdout)[0]["model"] == "sequential", "the runs' numbers are not lost with the file"


def test_record_to_dash_is_stdout_not_a_file_named_dash(tmp_path):
    out = cv("record", "asyncio-tasks", "-o", "-", *QUICK, cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    assert out.stdout.startswith('{"format":"concurview-trace"') and not (tmp_path / "-").exists()
    assert list(tmp_path.iterdir()) == []


def test_export_to_stdout_appending_to_its_input_is_refused(tmp_path):
    src = tmp_path / "t.jsonl"
    shutil.copy(TRACES / "asyncio-tasks.jsonl", src)
    before = src.read_bytes()
    for cmd in (f"{' '.join(EXE)} export {src} --to txt -o - >> {src}",
                f"{' '.join(EXE)} export - --to txt -o - < {src} >> {src}",  # stdin is the file: the same input
                f"{' '.join(EXE)} export - --to chrome < {src} >> {src}"):
        out = subprocess.run(cmd, shell=True, capture_output=True, text=True, timeout=60)
        assert out.returncode == 2 and out.stderr.startswith("concurview: error: stdout: is the input "), out.stderr
        assert out.stderr.count("\n") == 1 and src.read_bytes() == before
