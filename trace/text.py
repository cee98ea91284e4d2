"""Text fitted to terminal cells, for the widgets and the exports alike (rich only, no textual)."""

from __future__ import annotations

import re

from rich.cells import cell_len

# What a string from a trace, a program or a file must never send to the terminal as it is:
#   C0 controls (ESC starts every escape sequence: OSC 52 sets the clipboard, OSC 0 the title, CSI 2J
#   clears the screen), DEL, and C1 controls (0x9b is a one-byte CSI, 0x9d a one-byte OSC);
#   lone surrogates (a JSON "\ud800" decodes to one; the terminal's UTF-8 encoder would raise);
#   format characters (Unicode category Cf): bidi embeddings, overrides and isolates (U+202A-202E,
#   U+2066-2069) reorder what follows on the line, so text shows other than it is ("Trojan Source");
#   the rest are invisible (zero-width space, word joiner, BOM, tag characters) or zero-width to
#   rich but not to every terminal (soft hyphen): hidden text, or lanes drawn out of line;
#   U+2028/2029, line and paragraph separators: str.splitlines() breaks on them, a terminal does not.
# Zero-width (non-)joiners (U+200C, U+200D) stay: Persian, Indic scripts and emoji sequences need them.
# Tab and newline stay where text is split into lines and its tabs expanded (log, source, error
# details); one-line text (names, reasons, titles) escapes them too.
_FORMAT = (
    "\u00ad\u0600-\u0605\u061c\u06dd\u070f\u0890\u0891\u08e2\u180e\u200b\u200e\u200f\u2028-\u202e"
    "\u2060-\u2064\u2066-\u206f\ufeff\ufff9-\ufffb\U000110bd\U000110cd\U00013430-\U0001343f"
    "\U0001bca0-\U0001bca3\U0001d173-\U0001d17a\U000e0001\U000e0020-\U000e007f"
)
_UNSAFE = re.compile(f"[\x00-\x08\x0b-\x1f\x7f-\x9f\ud800-\udfff{_FORMAT}]")
_UNSAFE_LINE = re.compile(f"[\x00-\x1f\x7f-\x9f\ud800-\udfff{_FORMAT}]")


def _escaped(match: re.Match[str]) -> str:
    code = ord(match.group())
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}" if code < 0x10000 else f"\\U{code:08x}"


def clean(text: str, *, one_line: bool = False) -> str:
    """`text` safe to put on a terminal: its control, bidi and invisible format characters shown escaped.

    `\\x1b]52;c;...` then reads as those characters instead of setting the clipboard; C0, DEL and C1
    controls become `\\xNN`, the others `\\uNNNN` (`\\U000NNNNN` past U+FFFF). Tab and newline stay
    unless `one_line`. Text with nothing to escape is returned as it is: printable text (all but
    multi-line text) in ~0.2 µs, cheap enough for every string drawn; the rest in one regex pass.
    """
    if text.isprintable():  # nothing above is printable (Unicode's "Other" and "Separator" categories)
        return text
    return (_UNSAFE_LINE if one_line else _UNSAFE).sub(_escaped, text)


def shorten(text: str, width: int) -> str:
    """`text` in at most `width` cells; a long one loses its middle (lane names differ at the end)."""
    if cell_len(text) <= width:
        return text
    if width <= 1:
        return "…"[:width]
    # The end tells lanes apart (worker-0_1, Task-12): it keeps most of a narrow column.
    tail_cells = max((width - 1) // 2, min(width - 2, 6)) if width <= 17 else 8
    head, tail = [], []
    room = width - 1
    for ch in reversed(text):
        if cell_len("".join(tail)) + cell_len(ch) > tail_cells:
            break
        tail.insert(0, ch)
    room -= cell_len("".join(tail))
    for ch in text:
        if cell_len("".join(head)) + cell_len(ch) > room:
            break
        head.append(ch)
    return "".join(head) + "…" + "".join(tail)
