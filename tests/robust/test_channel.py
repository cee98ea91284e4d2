"""The recorder's channel cannot harm the program, and the program cannot crash the tool through it (issue 17)."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from robust_kit import EXE, cv, footer

# Finds the program's own channel as a program could: the one socket among its fds.
FIND_CHANNEL = """
import os, stat, sys
def channel():
    sys.stdout.flush()  # what the recorder has pending goes out first: our bytes start a frame
    for name in os.listdir("/proc/self/fd"):
        try:
            if stat.S_ISSOCK(os.fstat(int(name)).st_mode):
                return int(name)
        except OSError:
            pass
    raise SystemExit("no channel")
"""


def record(tmp_path: Path, source: str, *args: str, timeout: float = 60) -> tuple[subprocess.CompletedProcess, Path]:
    prog = tmp_path / "prog.py"
    prog.write_text(FIND_CHANNEL + textwrap.dedent(source))
    trace = tmp_path / "t.jsonl"
    out = cv("run", "--record", str(trace), "--timeout", "30", str(prog), *args, timeout=timeout, errors="replace")
    return out, trace


def events(trace: Path) -> list[dict]:
    return [json.loads(line) for line in trace.read_text().splitlines()[1:] if '"type"' not in line]


# What a program might write into its channel, and what the run then says.
DAMAGE = {
    "garbage": ("os.write(channel(), b'\\x10\\x00\\x00\\x00' + b'\\xc1' * 16)", "MessagePack data is malformed"),
    "absurd length": ("os.write(channel(), b'\\xff\\xff\\xff\\x7f' + b'x' * 100)", "a frame of 2147483647 bytes"),
    "wrong types": ("import msgspec; b = msgspec.msgpack.encode([os.getpid(), 'lanes?', 0]);"
                    "os.write(channel(), len(b).to_bytes(4, 'little') + b)", "Expected `array`, got `str`"),
    "lane of another pid": ("import msgspec; b = msgspec.msgpack.encode([os.getpid(), [[(1 << 24) | 5, 'thread', 'x']]]);"
                            "os.write(channel(), len(b).to_bytes(4, 'little') + b)", "is not one of pid"),
    "string id past the table": (
        "import msgspec; b = msgspec.msgpack.encode([os.getpid(), [], 0, 1, [0, b''], [os.getpid() << 24, b''],"
        " [1, b''], [0, b''], [1000, b'\\x00']]);"
        "os.write(channel(), len(b).to_bytes(4, 'little') + b)", "a reason string id outside the process's table"),
}


@pytest.mark.parametrize("what", list(DAMAGE))
def test_bytes_the_program_writes_into_its_channel_end_the_run_incomplete_never_a_traceback(tmp_path, what):
    code, said = DAMAGE[what]
    out, trace = record(tmp_path, f"""
        import time
        print("before")
        time.sleep(0.3)  # sent by the flusher (within ~24 ms) before our bytes
        {code}
        time.sleep(30)  # the run is ended by concurview, not by the timeout
        """)
    assert "Traceback" not in out.stderr, out.stderr
    assert out.returncode == 128 + 9, out.stderr  # the program is killed: its run ended there
    reader, _ = footer(trace)
    f = reader.footer
    assert not f.complete and f.reason.startswith("damaged frame from pid "), f
    assert said in f.reason, f.reason
    assert "timeout" not in f.reason
    assert any(e.get("text") == "before" for e in events(trace)), "what came before the damage is kept"


DAEMONIZE = """
    import os, sys
    log = sys.argv[1]
    print("before")
    {close}
    with open(log, "a") as f:
        f.write("mine\\n")
        f.flush()
        for i in range(1000):
            print("line", i)
        f.write("end\\n")
    print("after")
    """


@pytest.mark.parametrize("close", [
    # the classic: close every fd above 2, /dev/null and a log file take the lowest numbers
    "os.closerange(3, 65536); os.open(os.devnull, os.O_RDWR)",
    # the worst case: the log file takes the channel's own number
    "fd = channel(); os.close(fd); os.dup2(os.open(log, os.O_WRONLY | os.O_CREAT | os.O_APPEND), fd)",
])
def test_a_program_that_closes_the_channel_keeps_its_files_clean_and_the_trace_whole(tmp_path, close):
    log = tmp_path / "program.log"
    out, trace = record(tmp_path, DAEMONIZE.format(close=close), str(log))
    assert out.returncode == 0, out.stderr
    assert log.read_text() == "mine\nend\n", "only what the program wrote"
    reader, _ = footer(trace)
    assert reader.footer.complete and reader.footer.exit_code == 0, reader.footer
    texts = [e.get("text") for e in events(trace) if e["kind"] == "log"]
    assert texts == ["before", *[f"line {i}" for i in range(1000)], "after"]


def test_a_forked_child_never_closes_or_writes_into_the_number_the_program_reused(tmp_path):
    log = tmp_path / "program.log"
    out, trace = record(tmp_path, """
        log = sys.argv[1]
        fd = channel()
        os.close(fd)
        os.dup2(os.open(log, os.O_WRONLY | os.O_CREAT | os.O_APPEND), fd)
        pid = os.fork()
        if pid == 0:
            print("child")
            os.write(fd, b"from the child\\n")  # its file: still open in the child
            os._exit(0)
        os.waitpid(pid, 0)
        os.write(fd, b"from the parent\\n")
        print("parent")
        """, str(log))
    assert out.returncode == 0, out.stderr
    assert log.read_text() == "from the child\nfrom the parent\n"
    reader, lanes = footer(trace)
    assert reader.footer.complete, reader.footer
    texts = {e.get("text") for e in events(trace) if e["kind"] == "log"}
    assert {"child", "parent"} <= texts
    assert len([lane for lane in lanes if lane.kind == "process"]) == 1


def test_lone_surrogates_in_printed_text_are_sent_not_fatal(tmp_path):
    out, trace = record(tmp_path, """
        print("ok")
        print("bad \\udcff here")
        print("after")
        """)
    assert out.returncode == 0, out.stderr
    assert "Traceback" not in out.stderr
    texts = [e.get("text") for e in events(trace) if e["kind"] == "log"]
    assert texts == ["ok", "bad ? here", "after"]


@pytest.mark.parametrize("source, said", [
    (b"x = 1\nif x:\nprint(x)\n", "IndentationError"),
    (b"print(1)\nx = (\n", "'(' was never closed"),
    (b"print(1)\n\x00\n", "null bytes"),
    (b"# -*- coding: no-such-codec -*-\nprint(1)\n", "no-such-codec"),
])
def test_a_program_that_does_not_compile_gets_pythons_report_and_an_error_event(tmp_path, source, said):
    prog = tmp_path / "broken.py"
    prog.write_bytes(source)
    plain = subprocess.run([sys.executable, str(prog)], capture_output=True, text=True)
    trace = tmp_path / "t.jsonl"
    out = cv("run", "--record", str(trace), str(prog))
    assert out.returncode == plain.returncode == 1
    report = out.stderr.splitlines()[:-1]  # the last line is concurview's summary
    assert said in "\n".join(report) and "broken.py" in "\n".join(report), out.stderr
    assert "concurview" not in "\n".join(report) and "Traceback" not in out.stderr, out.stderr
    assert report[-1].split(":")[0] == plain.stderr.splitlines()[-1].split(":")[0], "python's exception type"
    reader, lanes = footer(trace)
    f = reader.footer
    kind = report[-1].split(":")[0]
    assert f.exit_code == 1 and f.reason == f"uncaught {kind}" and f.events >= 2, f
    (error,) = [e for e in events(trace) if e["kind"] == "error"]
    assert error["reason"] == kind and said in error["text"] and error["lane"] == lanes[0].id


FLOOD = """
import os, sys
big = "x" * (1 << 20)
for i in range(100):
    print(f"{i} {big}")  # through the recorder: cut child-side
for i in range(100):
    os.write(1, f"{i} raw ".encode() + big.encode() + b"\\n")  # straight to fd 1: cut by the runner
os.write(1, b"y" * (3 << 20))  # and a last one with no newline at all
"""

# The tool's side of a run, in a process of its own: its peak RSS is what the run costs concurview.
MEASURE = """
import json, resource, sys
from concurview.engines.runner import Run, Target
run = Run(Target(sys.argv[1]))
cut = n = 0
for batch in run:
    for e in batch.events:
        n += 1
        if e.text and "… [truncated " in e.text:
            cut += 1
            assert len(e.text) < 70_000, len(e.text)
f = run.footer()
print(json.dumps({"rss_kb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss, "cut": cut, "events": n,
                  "complete": f.complete}))
"""


def test_a_flood_of_huge_lines_keeps_the_tools_memory_bounded_in_bytes(tmp_path):
    prog = tmp_path / "flood.py"
    prog.write_text(FLOOD)
    baseline = tmp_path / "quiet.py"
    baseline.write_text("print('hi')\n")
    results = {}
    for name, path in (("flood", prog), ("quiet", baseline)):
        out = subprocess.run([sys.executable, "-c", MEASURE, str(path)], capture_output=True, text=True, timeout=120)
        assert out.returncode == 0, out.stderr
        results[name] = json.loads(out.stdout)
    flood, quiet = results["flood"], results["quiet"]
    assert flood["complete"] and flood["cut"] == 201, flood
    # 200 MB printed: before, ~240 MB more than a quiet run; now only a few 64 KiB heads are kept.
    assert flood["rss_kb"] - quiet["rss_kb"] < 60_000, results


def test_the_cli_records_a_cut_line_with_its_marker(tmp_path):
    out, trace = record(tmp_path, """
        print("a" * 100_000)
        """)
    assert out.returncode == 0, out.stderr
    (line,) = [e["text"] for e in events(trace) if e["kind"] == "log"]
    assert line == "a" * 65536 + f"… [truncated {(100_000 - 65536) / 1024:.0f} KiB]"


def test_memory_measure_is_a_real_process(tmp_path):
    """The flood test's wrapper runs the real runner (no stand-in): it fails when the program fails."""
    prog = tmp_path / "bad.py"
    prog.write_text("raise SystemExit(3)\n")
    out = subprocess.run([*EXE[:1], "-c", MEASURE, str(prog)], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0 and json.loads(out.stdout)["complete"]
