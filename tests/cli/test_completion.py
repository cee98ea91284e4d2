"""`concurview completion SHELL`: shtab's static scripts, sourced by a real bash and asked for completions."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys

import pytest

EXE = [sys.executable, "-m", "concurview"]
COMMAND = " ".join(EXE)

needs_bash = pytest.mark.skipif(shutil.which("bash") is None, reason="no bash here")


def cv(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*EXE, *args], capture_output=True, text=True, timeout=60, stdin=subprocess.DEVNULL)


def test_the_bash_script_defines_its_function_and_names_the_commands_and_scenarios():
    out = cv("completion", "bash")
    assert out.returncode == 0 and out.stderr == ""
    assert "_shtab_concurview()" in out.stdout and "complete -o bashdefault -F _shtab_concurview concurview" \
        in out.stdout
    commands = next(line for line in out.stdout.splitlines() if line.startswith("_shtab_concurview_subparsers="))
    for name in ("list", "record", "run", "compare", "summary", "open", "export", "completion",
                 "asyncio-tasks", "threadpool-shutdown"):
        assert f" {name} " in commands.replace("(", " ").replace(")", " "), name


@needs_bash
def test_bash_sources_it_and_registers_the_completion():
    out = subprocess.run(["bash", "-c", f"source <({COMMAND} completion bash) && complete -p concurview"],
                         capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "complete -o bashdefault -F _shtab_concurview concurview"


@needs_bash
@pytest.mark.parametrize("words, expected", [
    (["concurview", "rec"], ["record"]),
    (["concurview", "record", "asyncio-ta"], ["asyncio-tasks"]),  # scenario names after record
    (["concurview", "asyncio-ga"], ["asyncio-gather"]),  # and alone: `concurview NAME` runs one in the app
    (["concurview", "export", "t.jsonl", "--to", ""], ["chrome", "txt", "svg"]),
    (["concurview", "completion", ""], ["bash", "zsh", "tcsh"]),
    (["concurview", "summary", "tr"], ["trace.jsonl"]),  # trace arguments complete file names
])
def test_bash_completes_what_a_user_types(tmp_path, words, expected):
    (tmp_path / "trace.jsonl").write_text("")
    script = tmp_path / "c.bash"
    script.write_text(cv("completion", "bash").stdout)
    line = " ".join(words)
    probe = (f"source {script}\nCOMP_WORDS=({' '.join(repr(w) for w in words)}); COMP_CWORD={len(words) - 1}\n"
             f"COMP_LINE={line!r}; COMP_POINT={len(line)}\n"
             f"_shtab_concurview concurview {words[-1]!r} {words[-2]!r}\nprintf '%s\\n' \"${{COMPREPLY[@]}}\"\n")
    out = subprocess.run(["bash", "-c", probe], capture_output=True, text=True, timeout=60, cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    assert sorted(out.stdout.split()) == sorted(expected), out.stdout


def test_zsh_and_tcsh_scripts():
    zsh = cv("completion", "zsh")
    assert zsh.returncode == 0 and zsh.stdout.startswith("#compdef concurview") and "asyncio-tasks" in zsh.stdout
    tcsh = cv("completion", "tcsh")
    assert tcsh.returncode == 0 and "complete concurview" in tcsh.stdout
    if shutil.which("zsh"):
        check = subprocess.run(["zsh", "-n"], input=zsh.stdout, capture_output=True, text=True, timeout=60)
        assert check.returncode == 0, check.stderr


@pytest.mark.parametrize("shell, words", [
    ("fish", ["no script for 'fish'", "shtab", "bash, zsh, tcsh"]),
    ("powershell", ["no script for 'powershell'", "bash, zsh, tcsh"]),
])
def test_an_unknown_shell_is_one_line_and_exit_2(shell, words):
    out = cv("completion", shell)
    assert out.returncode == 2 and out.stdout == "" and out.stderr.count("\n") == 1, out.stderr
    assert out.stderr.startswith("concurview: error: completion: ") and "Traceback" not in out.stderr
    for w in words:
        assert w in out.stderr


def test_help_does_not_load_shtab():
    script = ("import json, sys\nfrom concurview.cli import main\ntry:\n    main(['--help'])\n"
              "except SystemExit:\n    pass\nprint(json.dumps('shtab' in sys.modules))")
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60)
    assert json.loads(out.stdout.strip().splitlines()[-1]) is False, "completion's library only for completion"
