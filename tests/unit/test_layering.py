"""House style rule 1: data flows one way, scenarios -> engines -> trace -> tui -> the CLI, and the
imports say so: each folder imports only the folders beneath it (README, Layout)."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PACKAGE_OF = {"engines": "concurview.engines", "scenarios": "concurview.scenarios", "trace": "concurview.trace",
              "tui": "concurview.tui"}
# What each folder may import of concurview (its own modules always).
ALLOWED = {
    "scenarios": set(),
    "trace": {"concurview.engines.speedups"},  # the compiled trace parser lives with the engines' C code
    "engines": {"concurview.trace", "concurview.scenarios"},
    "tui": {"concurview.trace", "concurview.scenarios", "concurview.engines.runner",  # the engines' front door:
            "concurview.engines.compare"},  # the runner, and compare's runs through it
}


def package_of(path: Path) -> str:
    rel = path.relative_to(ROOT)
    return PACKAGE_OF.get(rel.parts[0], "concurview") if len(rel.parts) > 1 else "concurview"


def imported_modules(path: Path) -> set[str]:
    """Every module a file imports, relative imports resolved against its package."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    pkg = package_of(path).split(".")
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = pkg[:len(pkg) - node.level + 1]
                mod = ".".join(base + ([node.module] if node.module else []))
            else:
                mod = node.module or ""
            found.add(mod)
            found.update(f"{mod}.{a.name}" for a in node.names)  # `from . import store`: the module store
    return found


def files(folder: str) -> list[Path]:
    return sorted((ROOT / folder).rglob("*.py"))


def test_each_folder_imports_only_the_folders_beneath_it():
    offenders = []
    for folder, allowed in ALLOWED.items():
        own = PACKAGE_OF[folder]
        for f in files(folder):
            if folder == "scenarios" and f.name == "__init__.py":
                continue  # the catalogue: reads the scenarios' files, imports none of concurview
            for m in imported_modules(f):
                if not m.startswith("concurview") or m == "concurview" or m.startswith(own):
                    continue
                if not any(m == a or m.startswith(a + ".") for a in allowed):
                    if "." in m and m.rsplit(".", 1)[0] in allowed | {own}:
                        continue  # `from ..trace import x` names x, a module of an allowed package
                    offenders.append(f"{f.relative_to(ROOT)} imports {m}")
    assert not offenders, offenders


def test_no_textual_below_the_ui():
    """Engines, scenarios, the trace package and the CLI's own module never import Textual (the CLI
    loads the app only for `open`/`run` without --record). Engines and scenarios use no rich either;
    the trace package may (cell widths, the SVG export's console)."""
    offenders = []
    for folder in ("engines", "scenarios", "trace"):
        for f in files(folder):
            for m in imported_modules(f):
                if m == "textual" or m.startswith("textual.") or (m.startswith("rich") and folder != "trace"):
                    offenders.append(f"{f.relative_to(ROOT)} imports {m}")
    for f in (ROOT / "cli.py", ROOT / "__init__.py", ROOT / "__main__.py"):
        tree = ast.parse(f.read_text(encoding="utf-8"))
        for node in tree.body:  # module level only: `open` imports the app inside its function
            if isinstance(node, ast.ImportFrom) and (node.module or "").startswith(("textual", "tui")):
                offenders.append(f"{f.name} imports {node.module} at module level")
    assert not offenders, offenders


def test_scenarios_run_without_concurview():
    """A scenario is a plain program: it imports nothing of concurview."""
    for f in files("scenarios"):
        if f.name != "__init__.py":
            assert not any(m.startswith("concurview") for m in imported_modules(f)), f.name


def test_the_trace_package_loads_without_textual_or_the_engines_hooks():
    code = ("import sys, concurview.trace.store, concurview.trace.narrative, concurview.trace.lints, "
            "concurview.trace.export, concurview.trace.foreign, concurview.trace.compare, concurview.tui.navigator\n"
            "print(sorted(m for m in sys.modules if m.split('.')[0] == 'textual'"
            " or m.startswith('concurview.engines.') and m != 'concurview.engines.speedups'"
            " and not m.startswith('concurview.engines._')))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
