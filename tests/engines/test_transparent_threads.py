"""A traced program cannot tell it is traced by the threads of ours (issue 19): the recorder's flusher and the GIL
sampler are not in sys._current_frames() / sys._current_exceptions() / threading, nor behind os.fork()'s
DeprecationWarning on 3.12+, in the parent and in a forked child."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import textwrap

import pytest

PURE = os.environ.get("CONCURVIEW_PURE", "") not in ("", "0")


def run(tmp_path, source: str, traced: bool, **env: str) -> subprocess.CompletedProcess:
    """The program under python or under `concurview run --record`; its report file is argv[1]."""
    prog = tmp_path / "prog.py"
    prog.write_text(textwrap.dedent(source))
    if traced:
        cmd = [sys.executable, "-m", "concurview", "run", "--record", str(tmp_path / "t.jsonl"), "prog.py",
               str(tmp_path / "traced.json")]
    else:
        cmd = [sys.executable, "prog.py", str(tmp_path / "plain.json")]
    done = subprocess.run(cmd, cwd=tmp_path, capture_output=True, text=True, timeout=120, env={**os.environ, **env})
    done.stderr = re.sub(r"(?m)^prog\.py: \d+ events, .*\n", "", done.stderr)  # the CLI's own line
    return done


def both(tmp_path, source: str) -> tuple[dict, dict]:
    """(plain report, traced report): the program writes JSON to the file named by argv[1]."""
    out = []
    for traced in (False, True):
        done = run(tmp_path, source, traced)
        report = tmp_path / ("traced.json" if traced else "plain.json")
        assert report.exists(), f"traced={traced}: no report\n{done.stdout}\n{done.stderr}"
        out.append(json.loads(report.read_text()))
    return out[0], out[1]


# What a program sees of the threads of its process, in the parent and in a forked child (the child sends its
# view through a pipe). Pause so the flusher and the sampler have surely started and ticked.
THREADS_SEEN = """
    import faulthandler, json, os, sys, tempfile, threading, time

    def seen():
        frames, excs = sys._current_frames(), sys._current_exceptions()
        return {
            "frames": sorted(frames) == [threading.get_ident()],
            "n_frames": len(frames), "n_exceptions": len(excs),
            "exceptions": sorted(excs) == [threading.get_ident()],
            "enumerate": [t.name for t in threading.enumerate()],
            "active_count": threading.active_count(),
            "_active": len(threading._active),
            "switchinterval": sys.getswitchinterval(),
        }

    time.sleep(0.1)
    report = {"parent": seen()}
    sys.setswitchinterval(0.001)
    report["after_set"] = sys.getswitchinterval()
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:
        time.sleep(0.1)
        os.write(w, json.dumps(seen()).encode())
        os._exit(0)
    os.close(w)
    data = b""
    while chunk := os.read(r, 65536):
        data += chunk
    os.waitpid(pid, 0)
    report["child"] = json.loads(data)
    report["parent_after_fork"] = seen()
    with open(sys.argv[1], "w") as f:
        json.dump(report, f)
"""


def test_our_threads_are_in_no_list_of_threads_in_the_parent_or_a_forked_child(tmp_path):
    plain, traced = both(tmp_path, THREADS_SEEN)
    assert plain["parent"]["n_frames"] == 1 and plain["parent"]["frames"]
    assert traced == plain


ATTRS = """
    import inspect, json, sys

    report = {}
    for name in ("_current_frames", "_current_exceptions"):
        f = getattr(sys, name)
        try:
            signature = str(inspect.signature(f))
        except (TypeError, ValueError) as e:
            signature = type(e).__name__
        report[name] = {
            "name": f.__name__, "qualname": f.__qualname__, "module": f.__module__, "doc": f.__doc__,
            "signature": signature, "is_routine": inspect.isroutine(f),
            "builtin": [inspect.isbuiltin(f), inspect.isfunction(f), type(f).__name__, repr(f),
                        getattr(f, "__self__", None) is sys, getattr(f, "__text_signature__", None)],
        }
        try:
            f(1)
        except TypeError as e:
            report[name]["called_with_one"] = "TypeError"
    with open(sys.argv[1], "w") as f:
        json.dump(report, f)
"""


def test_current_frames_and_exceptions_look_like_pythons_built_ins(tmp_path):
    """Name, qualname, module, doc and signature as python's; on the C path a built-in of `sys` too (type, repr,
    __self__, text signature). The pure path's are Python functions (inspect.isbuiltin tells)."""
    plain, traced = both(tmp_path, ATTRS)
    assert plain["_current_frames"]["builtin"][0] is True
    if PURE:
        for report in (plain, traced):
            for name in report:
                del report[name]["builtin"]
    assert traced == plain


FAULTHANDLER = """
    import faulthandler, sys, tempfile, threading, time

    def nap():
        time.sleep(0.5)

    t = threading.Thread(target=nap, name="program-thread")
    t.start()
    time.sleep(0.1)
    with tempfile.TemporaryFile() as f:
        faulthandler.dump_traceback(f, all_threads=True)
        f.seek(0)
        text = f.read().decode()
    t.join()
    with open(sys.argv[1], "w") as out:
        import json
        json.dump(text, out)
"""


def test_faulthandler_dump_lists_every_thread_of_the_program(tmp_path):
    """faulthandler walks the interpreter's thread states in C, to the fd: the program's threads are all there,
    in python's order and words. Known limit (issue 19): the flusher, a Python thread, is listed too, as a thread
    whose frames are concurview's recorder.py -- and nothing else of ours is."""
    plain, traced = both(tmp_path, FAULTHANDLER)

    def sections(text):
        """[(header, frames)] without concurview's own frames (the child's main, the thread engine's wrappers:
        another part of issue 19), and sections that had only ours (their header says so)."""
        out = []
        for block in (b for b in text.strip().split("\n\n") if b.strip()):
            head, *frames = [line.strip() for line in block.splitlines()]
            kept = [f for f in frames if not re.search(r"concurview_boot\.py|/concurview/engines/", f)]
            out.append((head.split(" 0x")[0] if kept else "ours: " + " / ".join(frames), kept))
        return out

    program = [s for s in sections(traced) if not s[0].startswith("ours")]
    ours = [s[0] for s in sections(traced) if s[0].startswith("ours")]
    assert program == sections(plain)
    assert len(ours) <= 1 and all(re.fullmatch(r"ours: File .*recorder\.py\S*, line \d+ in loop", s) for s in ours)


# -- os.fork's DeprecationWarning (3.12+) -------------------------------------------------------------------

needs_fork_warning = pytest.mark.skipif(sys.version_info < (3, 12), reason="python warns at fork since 3.12")

FORKS = """
    import json, os, sys, warnings

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        for _ in range(2):
            pid = os.fork()
            if pid == 0:
                os._exit(0)
            os.waitpid(pid, 0)
    filters = len(warnings.filters)
    with open(sys.argv[1], "w") as f:
        json.dump({"caught": [str(w.message) for w in caught], "filters": filters}, f)
"""


@needs_fork_warning
def test_a_single_threaded_program_forks_without_a_warning_as_under_python(tmp_path):
    plain, traced = both(tmp_path, FORKS)
    assert plain == {"caught": [], "filters": plain["filters"]}
    assert traced == plain


@needs_fork_warning
def test_a_program_with_warnings_as_errors_forks_and_exits_0_without_a_word(tmp_path):
    source = FORKS.replace('warnings.simplefilter("always")', "pass")
    for traced in (False, True):
        done = run(tmp_path, source, traced, PYTHONWARNINGS="error::DeprecationWarning")
        assert (done.returncode, done.stderr) == (0, ""), f"traced={traced}"


THREADED_FORK = """
    import json, os, sys, threading, warnings

    go = threading.Event()
    t = threading.Thread(target=go.wait)
    t.start()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        pid = os.fork()
        if pid == 0:
            os._exit(0)
        os.waitpid(pid, 0)
    go.set()
    t.join()
    with open(sys.argv[1], "w") as f:
        json.dump([(w.category.__name__, re.sub(r"pid=\\d+", "pid=N", str(w.message)), os.path.basename(w.filename),
                    w.lineno) for w in caught], f)
""".replace("import json,", "import re, json,")


@needs_fork_warning
def test_a_program_with_a_thread_of_its_own_gets_pythons_fork_warning(tmp_path):
    plain, traced = both(tmp_path, THREADED_FORK)
    assert len(plain) == 1 and plain[0][0] == "DeprecationWarning" and "multi-threaded" in plain[0][1]
    assert traced == plain


@needs_fork_warning
def test_the_fork_warning_printed_by_default_is_pythons(tmp_path):
    """Shown by python's default filters (DeprecationWarning in __main__): once, at the program's line."""
    source = THREADED_FORK.replace('warnings.simplefilter("always")', "pass").replace(
        "with warnings.catch_warnings(record=True) as caught:", "if True:").replace(
        "for w in caught]", "for w in []]")
    printed = []
    for traced in (False, True):
        done = run(tmp_path, source, traced)
        printed.append(re.sub(r"pid=\d+", "pid=N", done.stderr))
    assert "prog.py:9: DeprecationWarning: This process (pid=N) is multi-threaded" in printed[0]
    assert printed[1] == printed[0]
