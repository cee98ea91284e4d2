"""`run/record --python PATH`, a child that cannot be shadowed by a `concurview/` folder, and a child that fails
before the program starts."""

import glob
import json
import os
import subprocess
import sys
import venv

import pytest

EXE = [sys.executable, "-m", "concurview"]
CLI = os.path.join(os.path.dirname(sys.executable), "concurview")


def _other_python() -> str | None:
    """A python3.12 or python3.13 that is not this one (pyenv's or on PATH)."""
    root = subprocess.run(["pyenv", "root"], capture_output=True, text=True).stdout.strip() if \
        subprocess.run(["sh", "-c", "command -v pyenv"], capture_output=True).returncode == 0 else ""
    mine = f"{sys.version_info[0]}.{sys.version_info[1]}"
    for v in ("3.12", "3.13"):
        if v == mine:
            continue
        for c in sorted(glob.glob(f"{root}/versions/{v}*/bin/python{v}")) if root else []:
            return c
        import shutil

        found = shutil.which(f"python{v}")
        if found:
            return found
    return None


def _lanes(trace) -> list[dict]:
    rows = [json.loads(line) for line in trace.read_text().splitlines() if line.strip()]
    return [r for r in rows if r.get("type") == "lane"]


PROG = """\
import sys, threading, onlyhere
def work(n):
    print(f"worker {n}: {onlyhere.WORD}", flush=True)
threads = [threading.Thread(target=work, args=(i,), name=f"w{i}") for i in range(2)]
for t in threads:
    t.start()
    t.join()  # one at a time: their lines do not interleave
print("python %d.%d" % sys.version_info[:2], "msgspec" in sys.modules, "textual" in sys.modules)
"""


@pytest.mark.slow
@pytest.mark.parametrize("pure", ["0", "1"])
def test_a_program_runs_with_another_pythons_venv(tmp_path, pure):
    other = _other_python()
    if other is None:
        pytest.skip("no python3.12 or python3.13 on this machine")
    env_dir = tmp_path / "venv"
    subprocess.run([other, "-m", "venv", "--without-pip", str(env_dir)], check=True, timeout=120)
    site = glob.glob(str(env_dir / "lib" / "python3.*" / "site-packages"))[0]
    os.makedirs(os.path.join(site, "onlyhere"))
    with open(os.path.join(site, "onlyhere", "__init__.py"), "w") as f:
        f.write('WORD = "only here"\n')
    prog = tmp_path / "prog.py"
    prog.write_text(PROG)
    trace = tmp_path / "t.jsonl"
    out = subprocess.run([*EXE, "run", "--record", str(trace), "--python", str(env_dir / "bin" / "python"), str(prog)],
                         capture_output=True, text=True, timeout=120, env=dict(os.environ, CONCURVIEW_PURE=pure))
    assert out.returncode == 0, out.stderr
    version = os.path.basename(other).removeprefix("python")
    assert sorted(out.stdout.splitlines()) == sorted(["worker 0: only here", "worker 1: only here",
                                                      f"python {version} False False"]), out.stderr
    names = {lane["name"] for lane in _lanes(trace)}
    assert {"w0", "w1"} <= names
    text = trace.read_text()
    assert "worker 0: only here" in text and f'"python":"{version}.' in text.replace(" ", "")


@pytest.mark.parametrize("python, message", [("/no/such/python", "no such file"),
                                             (sys.executable + "-not-there", "no such file"),
                                             ("/bin/sh", "not a Python 3.11 or newer"),
                                             ("/etc/hostname", "--python /etc/hostname: ")])
def test_a_python_that_is_not_one_is_a_one_line_error(tmp_path, python, message):
    prog = tmp_path / "prog.py"
    prog.write_text("print('ran')\n")
    for cmd in (["run", "--record", str(tmp_path / "t.jsonl"), "--python", python, str(prog)],
                ["record", "timer", "-o", str(tmp_path / "t.jsonl"), "--python", python]):
        out = subprocess.run([*EXE, *cmd], capture_output=True, text=True, timeout=60)
        assert out.returncode == 2, out.stderr
        lines = out.stderr.strip().splitlines()
        assert len(lines) == 1 and message in lines[0] and "ran" not in out.stdout


def _decoy(folder) -> None:
    """A `concurview/` source tree in the working directory whose engines say they were used."""
    eng = folder / "concurview" / "engines"
    eng.mkdir(parents=True)
    (folder / "concurview" / "__init__.py").write_text("")
    (eng / "__init__.py").write_text("")
    (eng / "child.py").write_text("raise SystemExit('SHADOWED: the decoy engines ran')\n")


def test_a_concurview_folder_in_the_working_directory_does_not_shadow_the_engines(tmp_path):
    _decoy(tmp_path)
    (tmp_path / "prog.py").write_text("import threading\nt = threading.Thread(target=print, args=('hi',))\n"
                                      "t.start(); t.join()\n")
    # The console script, and python -P -m (the CLI is the installed one: the child must not put the
    # working directory back in front of it).
    for cmd in ([CLI], [sys.executable, "-P", "-m", "concurview"]):
        out = subprocess.run([*cmd, "run", "--record", "t.jsonl", "prog.py"], cwd=tmp_path, capture_output=True,
                             text=True, timeout=60)
        assert out.returncode == 0 and "SHADOWED" not in out.stderr, (cmd, out.stderr)
        assert out.stdout == "hi\n"
        out = subprocess.run([*cmd, "record", "timer", "-o", "s.jsonl", "--set", "interval=0.05", "--timeout", "60"],
                             cwd=tmp_path, capture_output=True, text=True, timeout=60)
        assert out.returncode == 0 and "SHADOWED" not in out.stderr, (cmd, out.stderr)


def test_the_program_still_gets_its_own_sys_path(tmp_path):
    """python's sys.path[0]: the script's folder; the working directory for -m (the boot folder is gone)."""
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "prog.py").write_text("import sys\nprint(sys.path[0])\n")
    (tmp_path / "mod.py").write_text("import sys\nprint(sys.path[0])\n")
    for args, want in ((["sub/prog.py"], str(tmp_path / "sub")), (["-m", "mod"], str(tmp_path))):
        plain = subprocess.run([sys.executable, *args], cwd=tmp_path, capture_output=True, text=True)
        out = subprocess.run([CLI, "run", "--record", "t.jsonl", *args], cwd=tmp_path, capture_output=True, text=True,
                             timeout=60)
        assert out.returncode == 0, out.stderr
        assert out.stdout == plain.stdout == want + "\n"


def test_a_child_that_fails_before_the_program_starts_says_so(tmp_path):
    """The engines' import fails in the child (a PYTHONPATH entry shadows fcntl, which the recorder imports;
    the CLI ignores it with -E): the child's traceback, one line naming the failure, exit 2."""
    poison = tmp_path / "poison"
    poison.mkdir()
    (poison / "fcntl.py").write_text("raise ImportError('poisoned fcntl')\n")
    prog = tmp_path / "prog.py"
    prog.write_text("print('the program ran')\n")
    env = dict(os.environ, PYTHONPATH=str(poison))
    trace = tmp_path / "t.jsonl"
    out = subprocess.run([sys.executable, "-E", "-m", "concurview", "run", "--record", str(trace), str(prog)],
                         capture_output=True, text=True, timeout=60, env=env)
    assert out.returncode == 2
    assert "the program ran" not in out.stdout
    lines = out.stderr.strip().splitlines()
    assert lines[0] == "Traceback (most recent call last):" and "ImportError: poisoned fcntl" in out.stderr
    assert lines[-1] == ("concurview: the traced child failed before the program started: "
                         "ImportError: poisoned fcntl")
    assert not any(" events, " in line for line in lines), "no success-looking line"
    footer = json.loads(trace.read_text().splitlines()[-1])
    assert footer["complete"] is False and "failed before the program started" in footer["reason"]
