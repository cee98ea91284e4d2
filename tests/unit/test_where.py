"""Where: the program's own code (its folder wins over the library folders), and code that has no file."""

from __future__ import annotations

import json

from concurview.engines.where import Where


def test_the_program_s_folder_is_the_user_s_code_and_a_string_is_nobody_s(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    where = Where(str(tmp_path))
    own = compile("x = 1\n", str(tmp_path / "prog.py"), "exec")
    # A relative `<string>` resolves under the working directory, which is the program's folder here
    # (spawn's `python -c` bootstrap): still not a file of the program's.
    for name in ("<string>", "<stdin>", "<frozen runpy>"):
        assert not where.is_user(compile("x = 1\n", name, "exec")), name
    assert where.is_user(own)
    assert where.at(own, 1) == "prog.py:1"
    assert not where.is_user(json.dumps.__code__)  # the standard library
    assert not where.is_user(Where.__init__.__code__)  # concurview itself
