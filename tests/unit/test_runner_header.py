"""The trace header's interpreter and platform, made without the platform module's start-up cost."""

from __future__ import annotations

import platform

from concurview.engines.runner import Target, _platform_name


def test_the_platform_reads_as_platform_platform_says():
    assert _platform_name() == platform.platform()


def test_the_header_names_this_python_as_platform_does(tmp_path):
    prog = tmp_path / "p.py"
    prog.write_text("pass\n")
    header = Target(str(prog)).header()
    assert header.python == platform.python_version() and header.platform == platform.platform()
