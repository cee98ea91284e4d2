"""Ends badly on purpose: `ends.py raise | exit7 | segv`."""

import ctypes
import os
import sys

print("started", flush=True)
how = sys.argv[1]
if how == "raise":
    raise RuntimeError("deliberate failure")
elif how == "exit7":
    os._exit(7)
elif how == "segv":
    ctypes.string_at(0)
