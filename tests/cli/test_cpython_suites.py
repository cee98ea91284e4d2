"""CPython's own suites give the same results traced as under python (issue 19; all of them: `make test-cpython`)."""

from __future__ import annotations

import pytest

from cpython_suites import result, run_suite


def test_result_lines_are_read_from_both_runners_without_times():
    out = "x\nRan 24 tests in 1.234s\n\nOK (skipped=1)\n== Tests result: SUCCESS ==\nTotal tests: run=24\nResult: SUCCESS\n"
    assert result(out) == "Ran 24 tests | OK (skipped=1) | Total tests: run=24 | Result: SUCCESS"


@pytest.mark.slow
@pytest.mark.parametrize(("suite", "tests"), [
    ("test_thread", ()),
    ("test_asyncio.test_locks", ()),
    # The lock classes of test_threading (their argument checks) and its test of threading's names.
    ("test_threading", ("LockTests", "CRLockTests", "PyRLockTests", "ConditionAsRLockTests", "MiscTestCase")),
])
def test_a_cpython_suite_gives_the_same_result_traced(suite, tests):
    """The suite module run as the program (its files are the program's own, as under `-m test`, so its
    locks and threads are the traced ones): the same tests run and pass, at a bounded cost."""
    plain, t_plain, _ = run_suite(suite, traced=False, module=True, timeout=300, tests=tests)
    traced, t_traced, out = run_suite(suite, traced=True, module=True, timeout=300, tests=tests)
    assert plain.startswith("Ran ") and "| OK" in plain, plain
    assert traced == plain, out[-3000:]
    assert t_traced < 5 * t_plain + 5
