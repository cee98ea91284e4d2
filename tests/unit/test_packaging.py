"""Packaging: one import package `concurview` with the three code folders as subpackages, nothing else."""

from __future__ import annotations

import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> zipfile.ZipFile:
    out = tmp_path_factory.mktemp("wheel")
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q", "-w", str(out), str(ROOT)],
        check=True, capture_output=True,
    )
    (whl,) = out.glob("concurview-*.whl")
    return zipfile.ZipFile(whl)


def test_only_the_concurview_package_is_installed(wheel):
    names = wheel.namelist()
    tops = {n.split("/")[0] for n in names}
    assert tops == {"concurview", next(t for t in tops if t.endswith(".dist-info"))}
    folders = {n.split("/")[1] for n in names if n.startswith("concurview/") and n.count("/") >= 2}
    assert folders == {"engines", "scenarios", "trace", "tui"}
    loose = sorted(n for n in names if n.startswith("concurview/") and n.count("/") == 1)
    assert loose == ["concurview/__init__.py", "concurview/__main__.py", "concurview/cli.py"]
    assert not any("tests/" in n or "benchmarks/" in n or "conftest" in n for n in names)


def test_the_stylesheet_and_console_script_ship(wheel):
    names = wheel.namelist()
    assert "concurview/tui/concurview.tcss" in names
    entry = next(n for n in names if n.endswith("entry_points.txt"))
    assert "concurview = concurview.__main__:main" in wheel.read(entry).decode()


def test_python_dash_m_works():
    out = subprocess.run([sys.executable, "-m", "concurview", "--version"], capture_output=True, text=True)
    assert out.returncode == 0 and out.stdout.startswith("concurview ")
