"""The runtime's own functions even where gevent's monkey.patch_all() replaced them (engines take theirs from here)."""

from __future__ import annotations

import sys


def original(module: str, name: str):
    """The unpatched function even when gevent's monkey.patch_all() already ran."""
    monkey = sys.modules.get("gevent.monkey")
    if monkey is not None and monkey.is_module_patched(module):
        return monkey.get_original(module, name)
    return getattr(sys.modules[module], name)
