"""The scenario catalogue: headers read without running code, parameters typed, line numbers kept."""

from __future__ import annotations

import ast
import re

import pytest

from concurview.scenarios import ScenarioError, catalogue, get, load, with_params


def test_catalogue_lists_asyncio_tasks_with_its_lesson_defaults():
    s = get("asyncio-tasks")
    assert s.topic == "asyncio"
    assert s.params == {"task_sleep": 3.0, "task2_sleep": 2.0}
    assert s.summary.startswith("Two coroutines take turns on one thread")
    assert "asyncio-tasks" in catalogue()


def test_every_scenario_has_the_header_a_picker_needs():
    import re

    from concurview.scenarios import TOPICS, load_all

    names = [s.name for p in {s.path for s in catalogue().values()} for s in load_all(p)]
    assert len(names) == len(set(names)) == len(catalogue()), "names are unique"
    for s in catalogue().values():
        assert s.title and s.description and s.topic in TOPICS, s.name
        assert re.fullmatch(r"[a-z0-9]+(-[a-z0-9]+)*", s.name), s.name


def test_unknown_scenario_names_the_choices():
    with pytest.raises(ScenarioError, match="unknown scenario 'nope' .*asyncio-tasks"):
        get("nope")


def test_coerce_types_from_defaults():
    s = get("asyncio-tasks")
    assert s.coerce({"task_sleep": "0.5"})["task_sleep"] == 0.5
    with pytest.raises(ScenarioError, match="has no parameter 'x'"):
        s.coerce({"x": "1"})
    with pytest.raises(ScenarioError, match="wants float, got 'fast'"):
        s.coerce({"task_sleep": "fast"})
    with pytest.raises(ScenarioError, match="wants float"):
        s.coerce({"task_sleep": "nan"})


@pytest.mark.parametrize("name, key, raw, message", [
    ("threadpool-shutdown", "workers", "0", "'workers' must be at least 1, got 0"),
    ("socket-echo", "style", "nope", "'style' must be one of selectors, gevent, asyncio, threads, all; got 'nope'"),
    ("asyncio-gather", "limit", "0", "'limit' must be at least 1, got 0"),
    ("timer", "interval", "-1", "'interval' must be at least 0, got -1.0"),
    ("io-models", "fds", "1,x", "'fds' must look like '1,100,1000,4000'"),
    ("io-blocking", "size", "1e12", "wants int"),
    ("io-blocking", "size", "999999999999", "'size' must be at most 67108864"),
])
def test_parameters_out_of_their_limits_are_one_line_errors(name, key, raw, message):
    """A value of the right type that the program cannot run with (no workers, an unknown style, a
    semaphore of 0 that hangs) is refused before the run, naming what is allowed."""
    with pytest.raises(ScenarioError, match=re.escape(message)):
        get(name).coerce({key: raw})


def test_parameters_within_their_limits_pass_and_every_limit_names_a_parameter():
    assert get("threadpool-shutdown").coerce({"workers": "1"})["workers"] == 1
    assert get("socket-echo").coerce({"style": "all"})["style"] == "all"
    for s in catalogue().values():
        assert set(s.limits) <= set(s.params), s.name
        s.coerce({})  # the defaults themselves are within the limits
        for key, default in s.params.items():
            s.coerce({key: str(default)})


def test_with_params_changes_only_the_constants(tmp_path):
    src = (
        '"""Doc."""\n'
        'SCENARIO = {\n'
        '    "name": "demo",\n'
        '    "params": {"n": 3, "fast": False, "label": "a"},\n'
        '}\n'
        'P = SCENARIO["params"]\n'
        'RESULT = (P["n"], P["fast"], P["label"])\n'
    )
    p = tmp_path / "demo.py"
    p.write_text(src)
    assert load(p).params == {"n": 3, "fast": False, "label": "a"}
    tree = with_params(p, {"n": 7, "fast": True})
    ns: dict = {}
    exec(compile(tree, str(p), "exec"), ns)
    assert ns["RESULT"] == (7, True, "a")
    assert ast.unparse(tree).count("\n") == ast.unparse(ast.parse(src)).count("\n")


def test_header_must_be_a_literal(tmp_path):
    p = tmp_path / "bad.py"
    p.write_text("SCENARIO = dict(name=input())\n")
    with pytest.raises(ScenarioError, match="literal"):
        load(p)


def test_variants_share_a_program_with_other_defaults(tmp_path):
    p = tmp_path / "demo.py"
    p.write_text('SCENARIO = {"name": "demo", "title": "Demo", "params": {"api": "select", "n": 1},\n'
                 '            "variants": [{"name": "demo-poll", "params": {"api": "poll"}}]}\n')
    from concurview.scenarios import load_all

    base, variant = load_all(p)
    assert (variant.name, variant.params, variant.path, variant.title) == ("demo-poll", {"api": "poll", "n": 1},
                                                                           p, "demo-poll")
    assert base.params == {"api": "select", "n": 1}
    p.write_text('SCENARIO = {"name": "demo", "params": {"api": "select"},\n'
                 '            "variants": [{"name": "bad", "params": {"nope": 1}}]}\n')
    with pytest.raises(ScenarioError, match="unknown"):
        load_all(p)


def test_unavailable_names_the_missing_platform_fact(monkeypatch, tmp_path, capsys):
    import os
    import select
    import signal
    import sys

    from concurview.cli import main

    epoll, poll, sigio = get("io-epoll"), get("io-poll"), get("io-signal")
    assert (epoll.requires, poll.requires, sigio.requires) == (("epoll",), ("poll",), ("linux", "sigio"))
    if sys.platform == "linux":
        assert epoll.unavailable is None and sigio.unavailable is None and get("io-async").unavailable is None
    # The same scenarios on a platform without epoll, poll or SIGIO (say, Windows).
    monkeypatch.setattr(sys, "platform", "win32")
    monkeypatch.delattr(select, "epoll", raising=False)
    monkeypatch.delattr(select, "poll", raising=False)
    monkeypatch.delattr(signal, "SIGIO", raising=False)
    monkeypatch.delattr(os, "O_ASYNC", raising=False)
    assert epoll.unavailable == "epoll needs Linux (select.epoll missing)"
    assert poll.unavailable == "poll() is missing on win32 (select.poll)"
    assert sigio.unavailable == "needs Linux (this is win32)"
    assert get("io-async").unavailable == "needs Linux (this is win32)"
    assert get("io-select").unavailable is None, "select() is everywhere"
    assert get("asyncio-tasks").unavailable is None
    # `list` marks them; `record` refuses in one line with status 2 and writes nothing.
    assert main(["list"]) == 0
    listing = capsys.readouterr().out
    line = next(x for x in listing.splitlines() if x.split()[:1] == ["io-epoll"])
    assert "(unavailable: epoll needs Linux (select.epoll missing))" in line
    assert "unavailable" not in next(x for x in listing.splitlines() if x.split()[:1] == ["io-select"])
    out = tmp_path / "t.jsonl"
    assert main(["record", "io-epoll", "-o", str(out)]) == 2
    err = capsys.readouterr().err
    assert err == ("concurview: error: scenario 'io-epoll' is unavailable here: "
                   "epoll needs Linux (select.epoll missing)\n")
    assert not out.exists()


def test_requires_must_name_known_platform_facts(tmp_path):
    p = tmp_path / "demo.py"
    p.write_text('SCENARIO = {"name": "demo", "requires": ["linux", "kqueue"]}\n')
    with pytest.raises(ScenarioError, match="'requires' must be a list from linux, select"):
        load(p)
    p.write_text('SCENARIO = {"name": "demo", "requires": "linux"}\n')
    with pytest.raises(ScenarioError, match="'requires' must be a list"):
        load(p)
    p.write_text('SCENARIO = {"name": "demo", "requires": ["io_uring"],\n'
                 '            "variants": [{"name": "demo-any", "requires": []}]}\n')
    from concurview.scenarios import load_all

    base, variant = load_all(p)
    assert (base.requires, variant.requires) == (("io_uring",), ())


def test_every_listed_scenario_reads_differently():
    """`concurview list` shows one line per scenario: a variant sharing its file's description
    leads with its own title, so no two lines say the same thing."""
    from concurview.scenarios import catalogue

    summaries = [s.summary for s in catalogue().values()]
    assert len(set(summaries)) == len(summaries)
    assert catalogue()["threadpool-shutdown-nowait"].summary.startswith("ThreadPoolExecutor: shutdown(wait=False)")
