"""Where in the user's program something happened: `file:line`, skipping concurview's and libraries' frames."""

from __future__ import annotations

import os
import sys
import sysconfig
from types import CodeType, FrameType, TracebackType

_CONCURVIEW_DIR = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _library_dirs() -> tuple[str, ...]:
    paths = sysconfig.get_paths()
    dirs = {paths.get(k) for k in ("stdlib", "platstdlib", "purelib", "platlib")}
    dirs.update(p for p in sys.path if p.endswith("site-packages"))
    return tuple(sorted(os.path.abspath(d) + os.sep for d in dirs if d))


class Where:
    """Formats `where` strings relative to the program's folder and tells user code from library code."""

    def __init__(self, program_dir: str) -> None:
        self.root = os.path.abspath(program_dir) + os.sep
        # The traced child's boot script, beside the `concurview` link it runs from (engines/runner.py), is ours too.
        self._libs = _library_dirs() + (_CONCURVIEW_DIR + os.sep,
                                        os.path.join(os.path.dirname(_CONCURVIEW_DIR), "concurview_boot.py"))
        # By id(code), the code kept in the entry (so its id is not reused while cached): code objects
        # compare equal across files (two empty __init__.py), and hashing one hashes its bytecode.
        self._user: dict[int, tuple[bool, CodeType]] = {}
        self._files: dict[str, str] = {}
        self._lines: dict[tuple[int, int], tuple[str | None, CodeType]] = {}

    def is_user(self, code: CodeType) -> bool:
        try:
            return self._user[id(code)][0]
        except KeyError:
            fn = code.co_filename
            path = os.path.abspath(fn)
            # The program itself may live under site-packages or concurview (scenarios): the root wins.
            # Code compiled from a string (`<string>`: spawn's `python -c` bootstrap) is nobody's file.
            user = not fn.startswith("<") and (not path.startswith(self._libs) or path.startswith(self.root))
            self._user[id(code)] = (user, code)
            return user

    def file(self, filename: str) -> str:
        try:
            return self._files[filename]
        except KeyError:
            path = os.path.abspath(filename)
            short = path[len(self.root):] if path.startswith(self.root) else path
            self._files[filename] = short
            return short

    def at(self, code: CodeType, line: int | None) -> str | None:
        """`file:line` in the program, or None for code that is not the program's (concurview, the
        standard library, site-packages): a `where` never points into a library's frames."""
        key = (id(code), line or 0)
        try:
            return self._lines[key][0]
        except KeyError:
            s = f"{self.file(code.co_filename)}:{line or code.co_firstlineno}" if self.is_user(code) else None
            self._lines[key] = (s, code)
            return s

    def of_code(self, code: CodeType) -> str | None:
        return self.at(code, code.co_firstlineno)

    def of_frame(self, frame: FrameType) -> str | None:
        return self.at(frame.f_code, frame.f_lineno)

    def user_frame(self, frame: FrameType | None) -> FrameType | None:
        """The nearest frame at or above `frame` that is the user's code."""
        while frame is not None and not self.is_user(frame.f_code):
            frame = frame.f_back
        return frame

    def caller(self, depth: int = 1) -> str | None:
        frame = self.user_frame(sys._getframe(depth))
        return None if frame is None else self.of_frame(frame)

    def of_traceback(self, tb: TracebackType | None) -> str | None:
        found = None
        while tb is not None:
            if self.is_user(tb.tb_frame.f_code):
                found = tb
            tb = tb.tb_next
        return None if found is None else self.at(found.tb_frame.f_code, found.tb_lineno)
