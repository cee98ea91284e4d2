"""Axis arithmetic for the lane diagram: visible windows, zoom around a point, ticks and their labels (pure)."""

from __future__ import annotations

import math
from dataclasses import dataclass

TIME, SWITCH = "time", "switch"


@dataclass(frozen=True)
class Window:
    """The visible part [start, end) of an axis: nanoseconds on the time axis, switch numbers on the switch axis."""

    start: float
    end: float

    @property
    def span(self) -> float:
        return self.end - self.start

    def column(self, x: float, width: int) -> int | None:
        """The column of `width` whose cell holds x, or None when x is outside the window."""
        if width <= 0 or self.span <= 0 or not self.start <= x <= self.end:
            return None
        return min(int((x - self.start) * width / self.span), width - 1)

    def switch_column(self, k: int, width: int) -> int | None:
        """The first column drawing switch k (each column draws the switch under its middle)."""
        if width <= 0 or self.span <= 0:
            return None
        scale = width / self.span
        col = math.ceil((k - self.start) * scale - 0.5)
        if (col + 0.5) / scale + self.start >= k + 1:  # more switches than columns: the cell holding k
            col = int((k + 0.5 - self.start) * scale)
        return col if 0 <= col < width else None

    def cell(self, col: int, width: int) -> tuple[float, float]:
        """The span [a, b) of the axis that column `col` covers."""
        step = self.span / max(width, 1)
        return self.start + col * step, self.start + (col + 1) * step

    def zoomed(self, factor: float, around: float, lo: float, hi: float, min_span: float) -> Window:
        """Scale the span by `factor`, keeping `around` at the same place on screen, inside [lo, hi]."""
        span = min(max(self.span * factor, min_span), hi - lo)
        frac = (around - self.start) / self.span if self.span > 0 else 0.5
        frac = min(max(frac, 0.0), 1.0)
        return Window(around - frac * span, around - frac * span + span).clamped(lo, hi)

    def clamped(self, lo: float, hi: float) -> Window:
        """The same span moved inside [lo, hi] (shrunk if it does not fit)."""
        span = min(self.span, hi - lo)
        start = min(max(self.start, lo), hi - span)
        return Window(start, start + span)

    def showing(self, x: float, lo: float, hi: float, margin: float = 0.1) -> Window:
        """The same span, moved as little as possible so x sits inside it (with a margin)."""
        pad = self.span * margin
        if self.start + pad <= x <= self.end - pad:
            return self
        start = x - pad if x < self.start + pad else x + pad - self.span
        return Window(start, start + self.span).clamped(lo, hi)


def nice_step(span: float, cells: int, min_gap: int) -> float:
    """A 1/2/5 x 10^k step so that ticks sit at least `min_gap` cells apart."""
    if span <= 0 or cells <= 0:
        return 1.0
    raw = span * min_gap / cells
    k = 10.0 ** math.floor(math.log10(raw))
    for m in (1, 2, 5, 10):
        if m * k >= raw:
            return m * k
    return 10 * k


_UNITS = ((1e9, "s"), (1e6, "ms"), (1e3, "µs"), (1.0, "ns"))
MAX_DIGITS = 4  # a ruler label has at most this many significant digits: `1.212s`, `+20µs`, never `1.21226s`


def time_label(t: float, step: float) -> str:
    """`t` ns in its own unit, with the decimals the tick step needs: `500ms`, `1s`, `1.5s`."""
    if t == 0:
        return "0"
    scale, unit = next(((s, u) for s, u in _UNITS if abs(t) >= s), _UNITS[-1])
    decimals = max(0, -math.floor(math.log10(step / scale) + 1e-9))
    text = f"{t / scale:.{decimals}f}"
    if "." in text:
        text = text.rstrip("0").rstrip(".")
    return text + unit


def _digits(label: str) -> int:
    """Significant digits of a label's number (`1.21226s`: 6)."""
    return len(label.lstrip("+-").lstrip("0.").replace(".", "").rstrip("sµmn"))


def time_ticks(window: Window, width: int) -> list[tuple[int, str]]:
    """(column, label) of each time tick that fits in `width` columns, at round values of a 1/2/5 step
    (never under 1 ns: the clock's unit). Zoomed in so far that a tick's own time would take more than
    MAX_DIGITS digits (`1.21226s`), only the roundest visible tick shows its time (`1.2123s`) and the others
    their distance from it (`+20µs`, `-10µs`), each a round multiple of the step."""
    if width <= 0 or window.span <= 0:
        return []
    step = max(nice_step(window.span, width, 10), 1.0)
    first = math.ceil(window.start / step) * step
    ticks = []
    t = first
    while t < window.end:
        col = window.column(t, width)
        if col is not None:
            ticks.append((col, t))
        t += step
    if not ticks:
        return []
    labels = [time_label(round(v), step) for _c, v in ticks]
    if all(_digits(x) <= MAX_DIGITS for x in labels):
        return [(c, x) for (c, _v), x in zip(ticks, labels)]
    # The roundest visible tick carries the time; the others say how far they are from it.
    anchor = min(range(len(ticks)), key=lambda i: (_digits(labels[i]), i))
    base = ticks[anchor][1]

    def offset(v: float) -> str:
        d = round(v - base)
        return ("+" if d > 0 else "-") + time_label(abs(d), step)

    return [(c, labels[i] if i == anchor else offset(v)) for i, (c, v) in enumerate(ticks)]


def switch_ticks(window: Window, width: int, count: int) -> list[tuple[int, str]]:
    """(column, `#n`) of each switch tick (numbered from 1, as the explanation line counts)."""
    if width <= 0 or window.span <= 0 or count <= 0:
        return []
    step = max(1, int(nice_step(window.span, width, 7)))
    out = []
    # Ticks at #1 and at the round numbers: #10, #20, ... (switch k is #k+1).
    first = max(step - 1, math.ceil((window.start + 1) / step) * step - 1)
    ks = ([0] if window.start < 1 else []) + list(range(int(first), min(count, math.ceil(window.end)), step))
    for k in sorted(set(ks)):
        col = window.switch_column(k, width)
        if col is not None:
            out.append((col, f"#{k + 1}"))
    return out
