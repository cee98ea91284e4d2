"""House style rule 1: imports go one way; engines, scenarios and the store never import Textual."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
NO_TEXTUAL = ["engines", "scenarios", "tui/store.py", "tui/cli.py", "__init__.py", "__main__.py"]


def imported_modules(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            found.add(node.module)
    return found


def files(spec: str) -> list[Path]:
    p = ROOT / spec
    return sorted(p.rglob("*.py")) if p.is_dir() else [p]


def test_no_textual_below_the_ui():
    offenders = [
        f"{f.relative_to(ROOT)} imports {m}"
        for spec in NO_TEXTUAL for f in files(spec)
        for m in imported_modules(f) if m == "textual" or m.startswith(("textual.", "rich"))
    ]
    assert not offenders, offenders


def test_engines_and_scenarios_never_import_the_ui():
    offenders = [
        f"{f.relative_to(ROOT)} imports {m}"
        for spec in ("engines", "scenarios") for f in files(spec)
        for m in imported_modules(f) if m.startswith("concurview.tui")
    ]
    assert not offenders, offenders


def test_scenarios_run_without_concurview():
    """A scenario is a plain program: it imports nothing of concurview."""
    for f in files("scenarios"):
        if f.name != "__init__.py":
            assert not any(m.startswith("concurview") for m in imported_modules(f)), f.name


def test_store_loads_without_textual_at_runtime():
    code = ("import sys, concurview.tui.store, concurview.engines.runner, concurview.scenarios\n"
            "print(sorted(m for m in sys.modules if m.split('.')[0] in ('textual', 'rich')))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
