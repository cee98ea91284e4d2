"""Which hot paths this process uses: the C extension (engines/_speedups*.c) or pure Python.

The extension is optional: an install without a C compiler (or the Python headers) has none, and
CONCURVIEW_PURE=1 asks for the pure-Python paths even where it is built (the tests run both). Every
module that has a C fast path chooses here:

    native          the _speedups module, or None on the pure path
    EventBuffer     the recorder's event buffer (C, or engines/_pybuffer.py)
    EventParser     the trace file's line parser (C, or one that leaves every line to msgspec)
    gilview         the GIL view's sampler (engines/_gilview.c), or None: it has no Python twin

The greenlet tracer, the asyncio step and the thread hooks take their Python references (in their
engines) when `native` is None.
"""

from __future__ import annotations

import os

ENV_PURE = "CONCURVIEW_PURE"


def pure_forced() -> bool:
    """CONCURVIEW_PURE is set to anything but "" or "0"."""
    return os.environ.get(ENV_PURE, "") not in ("", "0")


native = None
gilview = None
if not pure_forced():
    try:
        from . import _speedups as native
    except ImportError:  # not built here: the pure-Python paths
        native = None
    try:
        from . import _gilview as gilview
    except ImportError:  # the optional sampler did not build here: no GIL view
        gilview = None

if native is not None:
    EventBuffer = native.EventBuffer
    EventParser = native.EventParser
    monotonic_ns = native.monotonic_ns
else:
    from ._pybuffer import EventBuffer, EventParser, monotonic_ns  # noqa: F401


def implementation() -> str:
    """What `concurview --version` says: "C speedups", or "pure Python" and why."""
    if native is not None:
        return "C speedups"
    return f"pure Python, {ENV_PURE}=1" if pure_forced() else "pure Python, the C extension is not built"
