"""io-async on a real loopback peer: the kernel fills the user buffer before the program hears of it (io_uring and the POSIX AIO fallback)."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.skipif(sys.platform != "linux", reason="io_uring, POSIX AIO via glibc and SO_TIMESTAMPNS are Linux")

DELAY = 0.15
WORK = 0.05
READ_CALL = re.compile(r"\b(recv\w*|read)\(")  # recv(), recvmsg(), recv_into(), read(), ...

from iophases import RUNNING, lane_events, lane_id, phases, states  # noqa: E402


def _io_uring_usable() -> bool:
    try:
        return Path("/proc/sys/kernel/io_uring_disabled").read_text().strip() != "2"
    except OSError:
        return True


def _facts(tl, size):
    """The facts every backend shares; returns the main lane's events and the read's phases."""
    assert tl.complete and tl.footer.exit_code == 0
    main = lane_events(tl, "MainThread")
    p = phases(tl, "kernel buffer")
    done = next(e for e in main if e.kind == "mark" and e.reason.startswith("completion:"))
    assert done.reason == f"completion: {size} B already in the user buffer"
    filled = next(e for e in main if e.kind == "mark" and e.reason.startswith("the buffer"))
    assert filled.reason == f"the buffer holds all {size} B; recv() was never called", "the data is in the buffer"
    (sent,) = [e for e in lane_events(tl, "peer") if e.kind == "run"]
    # Submitted long before the data existed; the completion comes only after it arrived and was copied.
    assert p.phase1.t < sent.t <= p.arrived.t <= p.phase2.t <= p.done.t <= done.t <= filled.t
    assert 0.7 * DELAY * 1e9 <= done.t - p.phase1.t < 10 * DELAY * 1e9
    assert p.kernel_copies and not p.program_copies, "phase 2 is not the program's"
    assert not [e for e in main if READ_CALL.search(f"{e.reason or ''}") and "never called" not in e.reason], "the program never calls a read"
    # It worked while the kernel waited: the submit returned at once and the lane ran on.
    returned = next(e for e in main if e.kind == "mark" and e.reason.startswith("submit returned in"))
    assert returned.t - p.phase1.t < DELAY * 1e9 / 2
    waits = [e for e in main if e.kind == "wait" and e.t > p.phase1.t]
    assert waits and waits[0].reason == "epoll: waiting on the eventfd for the completion"
    assert waits[0].t - p.phase1.t >= 0.8 * WORK * 1e9, "the other work ran before any wait"
    return main, p


@pytest.mark.skipif(not _io_uring_usable(), reason="io_uring disabled on this machine")
def test_io_uring_fills_the_buffer_before_the_completion_and_the_program_never_reads(record):
    tl = record("io-async", delay=DELAY, work=WORK, backend="io_uring")
    main, p = _facts(tl, 64)
    assert p.arrived.text == "stamped by the kernel (SO_TIMESTAMPNS)", "RECVMSG hands back the kernel's stamp"
    assert "io_uring:" in p.phase1.text and p.phase2.text.startswith("done by the kernel (asynchronous)")
    assert not [lane for lane in tl.lanes if lane.name == "aio helper thread"], "no thread waits for the data"
    log = [e.text for e in tl.logs() if e.kind == "log"]
    assert any(line.startswith("io_uring: submit took") for line in log)


@pytest.mark.skipif(not _io_uring_usable(), reason="io_uring disabled on this machine")
def test_with_work_to_do_the_program_runs_through_both_phases(record):
    tl = record("io-async", delay=0.1, work=0.3, backend="io_uring")
    p = phases(tl, "kernel buffer")
    main = lane_id(tl, "MainThread")
    assert states(tl, main, p.phase1.t, p.arrived.t) == {RUNNING}, "phase 1 costs the program nothing"
    assert states(tl, main, p.phase2.t - 1, p.done.t) == {RUNNING}, "phase 2 neither: the kernel copies"


@pytest.mark.skipif(not _io_uring_usable(), reason="io_uring disabled on this machine")
def test_io_uring_large_message_arrives_whole(record):
    size = 1 << 20
    tl = record("io-async", delay=0.05, work=0.01, size=size, backend="io_uring")
    main = lane_events(tl, "MainThread")
    done = [e for e in main if e.kind == "mark" and e.reason.startswith("completion:")]
    total = sum(int(e.reason.split(" ")[1]) for e in done)
    assert total == size
    assert any(e.kind == "mark" and e.reason == f"the buffer holds all {size} B; recv() was never called"
               for e in main)


def test_posix_aio_fallback_is_labelled_as_a_helper_thread(record):
    tl = record("io-async", delay=DELAY, work=WORK, backend="posix_aio")
    main, p = _facts(tl, 64)
    assert "emulated by a helper thread" in p.phase1.text
    assert p.phase2.text.startswith("done by glibc's helper thread (asynchronous, emulated)")
    fallback = next(e for e in main if e.kind == "mark" and e.reason.startswith("io_uring not used"))
    assert fallback.reason == "io_uring not used, POSIX AIO instead: posix_aio requested"
    helper = lane_events(tl, "aio helper thread")
    wait = next(e for e in helper if e.kind == "wait")
    assert wait.reason.startswith("read(): blocked") and "emulated by a helper thread" in wait.text
    assert wait.t <= p.arrived.t, "the helper thread blocks in read() through phase 1, not the program"


def test_bad_backend_is_a_one_line_error_with_status_2(tmp_path):
    """The plain program (no concurview), with a backend nobody has."""
    src = Path(__file__).parents[2] / "scenarios" / "io_async.py"
    program = tmp_path / "io_async.py"
    program.write_text(src.read_text().replace('"backend": "auto"', '"backend": "kqueue"'))
    out = subprocess.run([sys.executable, str(program)], capture_output=True, text=True, timeout=30,
                         env={"PYTHONPATH": str(src.parent), "PATH": "/usr/bin:/bin"})
    assert out.returncode == 2
    assert out.stderr.strip() == "io-async: backend must be auto, io_uring or posix_aio, not 'kqueue'"


SECCOMP = '''
import ctypes, os, runpy, struct, sys
libc = ctypes.CDLL(None, use_errno=True)
PR_SET_NO_NEW_PRIVS, PR_SET_SECCOMP, SECCOMP_MODE_FILTER = 38, 22, 2
insns = [(0x20, 0, 0, 0),               # load the syscall number
         (0x15, 0, 1, 425),             # io_uring_setup?
         (0x06, 0, 0, 0x00050000 | 1),  # refuse it: EPERM
         (0x06, 0, 0, 0x7FFF0000)]      # allow everything else
code = ctypes.create_string_buffer(b"".join(struct.pack("HBBI", *i) for i in insns))
class Prog(ctypes.Structure):
    _fields_ = [("len", ctypes.c_ushort), ("filter", ctypes.c_void_p)]
prog = Prog(len(insns), ctypes.addressof(code))
if libc.prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) or libc.prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, ctypes.byref(prog), 0, 0):
    sys.exit(77)
sys.path.insert(0, os.environ["SCENARIOS"])
runpy.run_path(sys.argv[1], run_name="__main__")
'''


@pytest.mark.skipif(os.uname().machine != "x86_64", reason="the seccomp filter matches x86_64 syscall numbers")
def test_io_uring_refused_by_the_kernel_says_eperm_and_falls_back(tmp_path):
    """A real refusal: a seccomp filter makes the kernel answer io_uring_setup with EPERM."""
    src = Path(__file__).parents[2] / "scenarios"
    program = tmp_path / "io_async.py"
    text = (src / "io_async.py").read_text()
    program.write_text(text.replace('"delay": 1.0', f'"delay": {DELAY}').replace('"work": 0.5', f'"work": {WORK}'))
    assert program.read_text() != text
    wrapper = tmp_path / "refuse_io_uring.py"
    wrapper.write_text(SECCOMP)
    out = subprocess.run([sys.executable, str(wrapper), str(program)], capture_output=True, text=True, timeout=30,
                         env={"SCENARIOS": str(src), "PATH": "/usr/bin:/bin"})
    if out.returncode == 77:
        pytest.skip("seccomp filters are not allowed here")
    assert out.returncode == 0, out.stderr
    first, last = out.stdout.strip().splitlines()
    assert first == ("io_uring not used (io_uring_setup failed: EPERM (Operation not permitted)); "
                     "POSIX AIO instead, emulated by a helper thread")
    assert last.startswith("posix_aio: submit took") and "with all 64 B in the buffer" in last
