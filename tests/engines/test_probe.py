"""The probe engine arms only for programs that report probes: its audit hook would slow every other one."""

from __future__ import annotations

import os
import subprocess
import sys

from concurview.trace.store import load

REPORT = '''import sys
sys.audit({name}, "kernel buffer", "kernel", "mark", 0, "data arrived", "")
print("done")
'''


def record(tmp_path, files: dict[str, str], env: dict[str, str] | None = None):
    for name, text in files.items():
        (tmp_path / name).write_text(text)
    trace = tmp_path / "t.jsonl"
    out = subprocess.run([sys.executable, "-m", "concurview", "run", "--record", str(trace), "prog.py"],
                         capture_output=True, text=True, cwd=tmp_path, timeout=60,
                         env={**os.environ, **(env or {})})
    assert out.returncode == 0, out.stderr
    return load(trace)


def kernel_marks(tl):
    return [e for e in tl.logs() + [tl.event(int(i)) for i in tl.events_of_kind("mark")]
            if tl.lanes[e.lane].name == "kernel buffer"]


def test_a_program_naming_the_event_gets_its_probes_recorded(tmp_path):
    tl = record(tmp_path, {"prog.py": REPORT.format(name='"concurview.event"')})
    marks = kernel_marks(tl)
    assert [m.reason for m in marks] == ["data arrived"]
    assert marks[0].where == "prog.py:2"


def test_a_helper_module_beside_the_program_counts_too(tmp_path):
    helper = 'import sys\n\ndef probe(what):\n    sys.audit("concurview.event", "kernel buffer", "kernel", "mark", 0, what, "")\n'
    prog = "from helper import probe\nprobe('data arrived')\n"
    tl = record(tmp_path, {"helper.py": helper, "prog.py": prog})
    assert [m.where for m in kernel_marks(tl)] == ["prog.py:2"], "the caller of `probe` is the line recorded"


def test_other_programs_run_without_the_hook_unless_asked(tmp_path):
    hidden = REPORT.format(name='"concurview." + "event"')  # never spelled out: not detected
    assert kernel_marks(record(tmp_path, {"prog.py": hidden})) == []
    armed = record(tmp_path, {"prog.py": hidden}, env={"CONCURVIEW_PROBE": "1"})
    assert [m.reason for m in kernel_marks(armed)] == ["data arrived"]


def test_a_helper_module_marked_as_such_is_skipped_and_a_line_can_be_named(tmp_path):
    """A helper module that sets PROBE_HELPER = True stays out of `where` (its caller's line is
    recorded), and a seventh argument (file, line) names the line outright."""
    helper = (
        "import sys\n"
        "PROBE_HELPER = True\n"
        "\n"
        "def report(what):\n"
        "    note(what)\n"
        "\n"
        "def note(what):\n"
        "    sys.audit('concurview.event', 'kernel buffer', 'kernel', 'mark', 0, what, '')\n"
        "\n"
        "def named(what, line):\n"
        "    sys.audit('concurview.event', 'kernel buffer', 'kernel', 'mark', 0, what, '',\n"
        "              (sys._getframe(1).f_code.co_filename, line))\n"
    )
    prog = "from helper import named, report\nreport('data arrived')\nnamed('copied', 1)\n"
    tl = record(tmp_path, {"helper.py": helper, "prog.py": prog})
    assert [(m.reason, m.where) for m in kernel_marks(tl)] == [("data arrived", "prog.py:2"), ("copied", "prog.py:1")]
