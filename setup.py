"""The C extensions, both optional (everything else is in pyproject.toml).

`concurview.engines._speedups` (the hot paths) and `concurview.engines._gilview` (the GIL view's
sampler) are built when a C compiler and the Python headers are there. Where one fails to build, the
install goes on and says so in one line: concurview then runs its pure-Python paths
(engines/_pybuffer.py and the engines' Python references; `concurview --version` says which).

Builds happen in a temporary folder, never in ./build: nothing is left in the tree, and a later
install never reuses objects compiled for another Python or another set of sources.
"""

from __future__ import annotations

import atexit
import os
import shutil
import sys
import tempfile
import warnings

from setuptools import Extension, setup
from setuptools.command.build_ext import build_ext
from setuptools.command.build_py import build_py

# setuptools' banner for an editable install ("Please be careful with folders in your working
# directory..."): information only, on every `make venv`.
warnings.filterwarnings("ignore", message="Editable installation")

OPTIONAL_NOTE = ("concurview: note: the C speedups ({name}) did not build ({why}); concurview works without "
                 "them, slower (pure Python). For them install a C compiler and the Python headers "
                 "(apt install gcc python3-dev, or xcode-select --install) and reinstall.")


def _why(exc: BaseException) -> str:
    text = " ".join(str(exc).split()) or type(exc).__name__
    return text if len(text) <= 160 else text[:157] + "..."


class OptionalBuildExt(build_ext):
    """build_ext where a failure to compile an extension is a note, not a failed install."""

    def run(self) -> None:
        try:
            super().run()
        except Exception as exc:  # noqa: BLE001 - no compiler at all: CCompilerError, PlatformError, OSError
            self._note("all", exc)

    def build_extension(self, ext: Extension) -> None:
        try:
            super().build_extension(ext)
        except Exception as exc:  # noqa: BLE001 - CompileError, LinkError, a missing Python.h
            self._note(ext.name, exc)

    def _note(self, name: str, exc: BaseException) -> None:
        line = OPTIONAL_NOTE.format(name=name, why=_why(exc))
        # pip shows a build's output only when asked (-v): stderr's warnings reach the user, as this does.
        warnings.warn(line, stacklevel=1)
        print(line, file=sys.stderr, flush=True)


class BuildPy(build_py):
    """The top-level folder is the package `concurview` (pyproject.toml's package-dir): this file is
    in it, and is the build's, not the package's."""

    def find_package_modules(self, package: str, package_dir: str):
        modules = super().find_package_modules(package, package_dir)
        return [m for m in modules if not (package == "concurview" and m[1] == "setup")]


def _temporary_build_base() -> str:
    base = tempfile.mkdtemp(prefix="concurview-build-")
    atexit.register(shutil.rmtree, base, ignore_errors=True)
    return base


# Stripped binaries (no symbol table: a fifth of the size) unless CONCURVIEW_STRIP=0 (`make venv`: a
# debugger, callgrind and perf want the names).
if os.environ.get("CONCURVIEW_STRIP", "1") == "0" or sys.platform == "win32":
    _link_args: list[str] = []
elif sys.platform == "darwin":
    _link_args = ["-Wl,-S,-x"]
else:
    _link_args = ["-s"]

setup(
    ext_modules=[
        # Hot paths in C: the child's event buffer (and its engines' fast paths), the trace file's event parser.
        Extension(
            "concurview.engines._speedups",
            sources=["engines/_speedups.c", "engines/_speedups_json.c", "engines/_speedups_greenlet.c",
                     "engines/_speedups_asyncio.c", "engines/_speedups_threads.c"],
            depends=["engines/_speedups.h"],
            extra_link_args=_link_args,
        ),
        # The GIL view's sampler: built against the interpreter's internal headers (its own layout by
        # construction). Where it does not build, the trace says "GIL view: not available".
        Extension("concurview.engines._gilview", sources=["engines/_gilview.c"], extra_link_args=_link_args),
    ],
    cmdclass={"build_ext": OptionalBuildExt, "build_py": BuildPy},
    options={"build": {"build_base": _temporary_build_base()}},
)
