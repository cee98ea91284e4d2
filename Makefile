# Two commands do everything on a fresh machine: `make run` and `make test`.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: venv run test test-cpython bench snapshots clean

venv: $(STAMP)

# Reinstall whenever the dependencies or the C sources change (the install compiles them).
$(STAMP): pyproject.toml $(wildcard engines/*.c engines/*.h)
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[test]'
	@touch $@

run: venv
	$(BIN)/concurview

test: venv
	$(BIN)/python -m pytest

# CPython's own thread, queue and asyncio suites under python and traced: same results? (prints wall ratios)
test-cpython: venv
	$(BIN)/python tests/cpython_suites.py

bench: venv
	$(BIN)/python -m benchmarks

# Regenerate the recorded traces the snapshot tests draw, then the SVGs.
snapshots: venv
	$(BIN)/python tests/traces/regenerate.py
	$(BIN)/python -m pytest tests/snapshots --snapshot-update

clean:
	rm -rf $(VENV) build *.egg-info .pytest_cache
