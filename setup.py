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
import re
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

NOTE = ("note: building the C speedups failed ({why}); installing without them: concurview "
        "runs on its pure-Python paths (slower). For them install a C compiler and the Python headers "
        "(e.g. apt install gcc python3-dev) and reinstall.")


def _why(exc: BaseException) -> str:
    """An exception of the compiler in a few words (distutils quotes the whole command line)."""
    text = " ".join(str(exc).split()) or type(exc).__name__
    m = re.search(r"""Command '\[['"]([^'"]+)['"].*returned non-zero exit status (\d+)""", text)
    if m:
        return f"the C compiler {m.group(1)} exited with status {m.group(2)}"
    return text if len(text) <= 120 else text[:117] + "..."


def _cannot_build() -> str | None:
    """Why this machine cannot compile an extension (no compiler, no Python.h), or None: a C file
    that includes Python.h is compiled with the compiler and flags the build would use."""
    import sysconfig

    from setuptools._distutils.ccompiler import new_compiler
    from setuptools._distutils.sysconfig import customize_compiler

    include = sysconfig.get_paths()["include"]
    with tempfile.TemporaryDirectory(prefix="concurview-probe-") as tmp:
        src = os.path.join(tmp, "probe.c")
        with open(src, "w") as f:
            f.write("#include <Python.h>\nint concurview_probe(void) { return 0; }\n")
        try:
            cc = new_compiler()
            customize_compiler(cc)
            cc.compile([src], output_dir=tmp, include_dirs=[include])
        except Exception as exc:  # noqa: BLE001 - CompileError, no compiler at all, a broken toolchain
            if not os.path.exists(os.path.join(include, "Python.h")):
                return f"the Python headers are missing: no {os.path.join(include, 'Python.h')}"
            return _why(exc)
    return None


_probed: list = []


def cannot_build() -> str | None:
    if not _probed:
        _probed.append(_cannot_build())
    return _probed[0]


def note(why: str) -> None:
    """The one line an install without the extensions says. A warning, which pip (23.3 and later)
    shows even with -q (a build's printed output it shows only with -v); printed too, for other
    front ends. Its "file" is `concurview`: the line is the message, not a line of this file."""
    line = NOTE.format(why=why)
    warnings.warn_explicit(line, UserWarning, "concurview", 0)
    print(line, file=sys.stderr, flush=True)


class OptionalBuildExt(build_ext):
    """build_ext where a failure to compile an extension is a note, not a failed install."""

    def run(self) -> None:
        why = cannot_build()
        if why:
            note(why)
            return
        try:
            super().run()
        except Exception as exc:  # noqa: BLE001 - CCompilerError, PlatformError, OSError
            note(_why(exc))

    def build_extension(self, ext: Extension) -> None:
        try:
            super().build_extension(ext)
        except Exception as exc:  # noqa: BLE001 - CompileError, LinkError: one extension
            note(f"{ext.name}: {_why(exc)}")


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

_BUILD = _temporary_build_base()

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
    options={"build": {"build_base": _BUILD}, "egg_info": {"egg_base": _BUILD}},
)
