"""Events in columns: one numpy array per field, strings by index into a shared table (parent side only).

The runner decodes the children's frames into `Columns`, the trace loader reads
files into them, and the timeline store ingests them without making a Python
object per event. The child never imports this module (numpy stays out of the
traced program).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from concurview.engines.events import EVENT_KINDS, Event

UNKNOWN_KIND = len(EVENT_KINDS)  # a kind from a newer writer: kept, drawn as nothing
KIND_NAMES = (*EVENT_KINDS, "unknown")  # by code


class StringTable:
    """Every distinct string of a run or a file, once: index 0 is None, the rest only ever grows.

    One table is shared by all the batches of one source, so an index means the
    same string in every batch (the store maps a source's indexes to its own once).
    """

    __slots__ = ("strings", "_ids")

    def __init__(self) -> None:
        self.strings: list[str | None] = [None]
        self._ids: dict[str | None, int] = {None: 0}

    def __len__(self) -> int:
        return len(self.strings)

    def __getitem__(self, i: int) -> str | None:
        return self.strings[i]

    def intern(self, s: str | None) -> int:
        i = self._ids.get(s)
        if i is None:
            i = self._ids[s] = len(self.strings)  # type: ignore[index]
            self.strings.append(s)
        return i

    def intern_many(self, values: list[str | None]) -> np.ndarray:
        """Indexes of many strings at once: one C-level pass of lookups, Python only for new strings."""
        out = list(map(self._ids.get, values))
        if None in out:
            intern = self.intern
            out = [intern(s) if i is None else i for s, i in zip(values, out)]
        return np.asarray(out, dtype=np.int32)


@dataclass(slots=True)
class Columns:
    """A run of consecutive events of one trace, field by field (seq is implicit: their order).

    - t: int64 ns since trace start
    - lane: int32 dense lane id (declared in this batch or an earlier one)
    - kind: uint8 code into EVENT_KINDS; UNKNOWN_KIND for a kind this reader does not know
    - reason, where, text: int32 indexes into `strings` (0 = None)
    - cause: int32 dense lane id, -1 = None
    """

    t: np.ndarray
    lane: np.ndarray
    kind: np.ndarray
    reason: np.ndarray
    where: np.ndarray
    text: np.ndarray
    cause: np.ndarray
    strings: StringTable

    def __len__(self) -> int:
        return len(self.t)

    @classmethod
    def empty(cls, strings: StringTable) -> Columns:
        i32 = np.empty(0, dtype=np.int32)
        return cls(np.empty(0, dtype=np.int64), i32, np.empty(0, dtype=np.uint8), i32, i32, i32, i32, strings)

    def take(self, keep: slice | np.ndarray) -> Columns:
        """The events selected by a slice or a boolean/index array."""
        return Columns(self.t[keep], self.lane[keep], self.kind[keep], self.reason[keep], self.where[keep],
                       self.text[keep], self.cause[keep], self.strings)

    def events(self, seq0: int = 0) -> list[Event]:
        """The same events as Event records (for writers and tests: one object per event is slow)."""
        s = self.strings.strings
        names = KIND_NAMES
        return [
            Event(seq0 + i, t, lane, names[kind], s[reason], s[where], None if cause < 0 else cause, s[text])
            for i, (t, lane, kind, reason, where, text, cause) in enumerate(zip(
                self.t.tolist(), self.lane.tolist(), self.kind.tolist(), self.reason.tolist(),
                self.where.tolist(), self.text.tolist(), self.cause.tolist()))
        ]

    @classmethod
    def from_events(cls, events: list[Event], strings: StringTable) -> Columns:
        """Event records into columns (small batches: the runner's output lines, tests)."""
        if not events:
            return cls.empty(strings)
        code = {k: i for i, k in enumerate(EVENT_KINDS)}
        return cls(
            np.fromiter((e.t for e in events), np.int64, len(events)),
            np.fromiter((e.lane for e in events), np.int32, len(events)),
            np.fromiter((code.get(e.kind, UNKNOWN_KIND) for e in events), np.uint8, len(events)),
            strings.intern_many([e.reason for e in events]),
            strings.intern_many([e.where for e in events]),
            strings.intern_many([e.text for e in events]),
            np.fromiter((-1 if e.cause is None else e.cause for e in events), np.int32, len(events)),
            strings,
        )

    @staticmethod
    def concat(parts: list[Columns]) -> Columns:
        """Consecutive batches of one source as one."""
        if len(parts) == 1:
            return parts[0]
        return Columns(*(np.concatenate([getattr(p, f) for p in parts])
                         for f in ("t", "lane", "kind", "reason", "where", "text", "cause")),
                       parts[0].strings)
