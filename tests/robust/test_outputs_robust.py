"""Output files under stress: two records to one file, a full disk, a non-root user, the target swapped mid-run."""

from __future__ import annotations

import os
import shutil
import stat
import subprocess
import tempfile
import time
from pathlib import Path

import pytest
from robust_kit import EXE, PROGRAMS, cv, footer

TRACES = Path(__file__).resolve().parents[1] / "traces"


def one_line_error(out: subprocess.CompletedProcess[str], *words: str) -> str:
    assert out.returncode == 2, (out.returncode, out.stderr)
    assert "Traceback" not in out.stderr, out.stderr
    line = out.stderr.strip().splitlines()[-1]
    assert line.startswith("concurview: error: "), out.stderr
    for w in words:
        assert w in line, line
    return line


def test_two_records_to_one_file_give_one_readable_run(tmp_path):
    """Each run writes its own temp file; the last to finish is the file, whole; neither fails."""
    trace = tmp_path / "t.jsonl"
    procs = [subprocess.Popen([*EXE, "record", "asyncio-tasks", "-o", str(trace), "--set", f"task_sleep={s}",
                               "--set", "task2_sleep=0.2"], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                              text=True)
             for s in (0.5, 0.6)]
    errs = [p.communicate(timeout=60)[1] for p in procs]
    for p, err in zip(procs, errs):
        assert p.returncode == 0 and "Traceback" not in err, err
    reader, lanes = footer(trace)
    assert reader.footer is not None and reader.complete and not reader.truncated
    assert len(lanes) == 3, "one run's lanes, not both runs' interleaved"
    assert reader.header.params["task_sleep"] in (0.5, 0.6)
    assert reader.n_read == reader.footer.events
    assert not list(tmp_path.glob("*.partial")), "no temp file left behind"


@pytest.fixture
def small_disk(tmp_path):
    """A 256 KiB tmpfs (root only; skipped where mounting is not allowed)."""
    mnt = tmp_path / "disk"
    mnt.mkdir()
    if os.geteuid() != 0 or not shutil.which("mount"):
        pytest.skip("mounting a small tmpfs needs root")
    res = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=256k", "tmpfs", str(mnt)], capture_output=True)
    if res.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {res.stderr.decode().strip()}")
    try:
        yield mnt
    finally:
        subprocess.run(["umount", "-l", str(mnt)], capture_output=True)


def test_a_full_disk_stops_the_run_and_keeps_what_was_written(small_disk):
    trace = small_disk / "t.jsonl"
    t0 = time.monotonic()
    out = cv("run", "--record", str(trace), str(PROGRAMS / "flood.py"), "greenlet", "30", timeout=60)
    elapsed = time.monotonic() - t0
    line = one_line_error(out, "No space left on device", "kept in")
    partials = list(small_disk.glob("*.partial"))
    assert len(partials) == 1 and str(partials[0]) in line
    assert elapsed < 20, f"the run was stopped when the disk filled, not run for its 30 s ({elapsed:.1f} s)"
    reader, lanes = footer(partials[0])
    assert lanes and reader.n_read > 0 and reader.footer is None, "the intact prefix reads back"
    assert not trace.exists()


def test_the_target_turned_into_a_fifo_mid_run_is_not_replaced(tmp_path):
    """The final rename re-checks the target: a FIFO made during the run stays; the trace is kept, named."""
    trace = tmp_path / "t.jsonl"
    partial = Path(str(trace) + ".partial")
    proc = subprocess.Popen([*EXE, "record", "asyncio-tasks", "-o", str(trace), "--set", "task_sleep=1",
                             "--set", "task2_sleep=0.1"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 30
    while not (partial.exists() and partial.read_text().count('"type":"lane"') == 3):
        assert time.monotonic() < deadline and proc.poll() is None
        time.sleep(0.02)
    os.mkfifo(trace)
    _, err = proc.communicate(timeout=60)
    out = subprocess.CompletedProcess(proc.args, proc.returncode, "", err)
    one_line_error(out, "no longer a regular file", str(partial))
    assert stat.S_ISFIFO(os.lstat(trace).st_mode)
    reader, lanes = footer(partial)
    assert reader.complete and len(lanes) == 3


# -- as a non-root user ----------------------------------------------------------------------------------

def as_nobody() -> list[str]:
    """The prefix that runs a command as an unprivileged user ([] when we are one)."""
    if os.geteuid() != 0:
        return []
    if not shutil.which("setpriv"):
        pytest.skip("no setpriv to drop root")
    prefix = ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups"]
    if subprocess.run([*prefix, *EXE, "--version"], capture_output=True).returncode != 0:
        pytest.skip("concurview cannot run as nobody here")
    return prefix


@pytest.fixture
def shared_dir():
    """A folder an unprivileged user can use (pytest's tmp_path is private to root)."""
    d = Path(tempfile.mkdtemp(prefix="concurview-outputs-"))
    d.chmod(0o777)
    try:
        yield d
    finally:
        shutil.rmtree(d, ignore_errors=True)


def test_unwritable_folders_and_read_only_files_are_one_line_errors(shared_dir):
    prefix = as_nobody()
    src = shared_dir / "t.jsonl"
    shutil.copy(TRACES / "asyncio-tasks.jsonl", src)
    src.chmod(0o644)
    locked = shared_dir / "locked"
    locked.mkdir(mode=0o755)
    if not prefix:
        locked.chmod(0o555)
    readonly = shared_dir / "ro.txt"
    readonly.write_text("keep me\n")
    readonly.chmod(0o444)

    def run(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([*prefix, *EXE, *args], capture_output=True, text=True, timeout=60,
                              stdin=subprocess.DEVNULL)

    one_line_error(run("export", str(src), "--to", "txt", "-o", str(locked / "x.txt")), "permission denied")
    one_line_error(run("export", str(src), "--to", "txt", "-o", str(readonly)), "read-only")
    one_line_error(run("record", "asyncio-tasks", "-o", str(locked / "t.jsonl")), "permission denied")
    one_line_error(run("record", "asyncio-tasks", "-o", str(readonly)), "read-only")
    assert readonly.read_text() == "keep me\n" and not list(locked.iterdir())
    # /dev/null, as this user: streamed to (the old way made a temp file in /dev: EACCES).
    ok = run("export", str(src), "--to", "chrome", "-o", "/dev/null")
    assert ok.returncode == 0 and "Traceback" not in ok.stderr, ok.stderr
    assert stat.S_ISCHR(os.lstat("/dev/null").st_mode)
