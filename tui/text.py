"""Text fitted to terminal cells, for the widgets and the exports alike (rich only, no textual)."""

from __future__ import annotations

from rich.cells import cell_len


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
