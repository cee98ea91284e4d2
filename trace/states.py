"""Lane-state codes and names as the store counts them, importable without numpy (the picker's first frame needs no store)."""

from __future__ import annotations

# The same values as concurview.trace.store's (tests/tui/test_robust_ui.py checks they agree).
NONE, RUNNING, READY_S, WAITING, DONE, BLOCKING = range(6)
STATE_NAMES = ("not started", "running", "ready", "waiting", "done", "blocking the thread")


class LazyNumpy:
    """Stands in for `numpy` in a module's globals until first used: then imports it and takes its place.

    numpy costs about 90 ms to import; the picker, the first thing `concurview` shows, needs none of it.
    """

    def __init__(self, namespace: dict) -> None:
        self._namespace = namespace

    def __getattr__(self, name: str):
        import numpy

        self._namespace["np"] = numpy
        return getattr(numpy, name)
