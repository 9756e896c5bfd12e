# lakeml developer commands. Needs only python3 (>= 3.10), pip and make.
#   make demo   create .venv, install lakeml with scikit-learn, run `lakeml demo`
#   make test   create .venv, install lakeml with the test extras, run the whole suite
#   make docs   copy docs_src/*.py into the README's and docs' code blocks that name them
# Installs are skipped while .venv is newer than pyproject.toml (stamp files in .venv/).

PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
PYTEST_ARGS ?= -n 2
STAMP_DEMO := $(VENV)/.lakeml-installed-sklearn
STAMP_TEST := $(VENV)/.lakeml-installed-test
PIP := $(BIN)/python -m pip --disable-pip-version-check -q

.PHONY: help demo test install install-test doctor docs clean
.DEFAULT_GOAL := help

help:
	@echo "make demo    train a few scikit-learn models into ./lakeml-warehouse and print a leaderboard"
	@echo "make test    run the whole test suite (pytest -n 2)"
	@echo "make doctor  check the configuration, catalog, storage and DuckDB"
	@echo "make docs    copy docs_src/*.py into the code blocks of README.md and docs/ (tests check they match)"
	@echo "make clean   remove ./lakeml-warehouse and caches (keeps .venv)"

# The virtualenv. Some Debian/Ubuntu Pythons lack ensurepip (the python3-venv package): then the
# venv is made without pip and pip is installed into it by the outer pip.
$(BIN)/python:
	$(PYTHON) -m venv $(VENV) || { rm -rf $(VENV) && $(PYTHON) -m venv --without-pip $(VENV) \
	  && $(PYTHON) -m pip --python $(BIN)/python install -q pip; }

$(STAMP_TEST): pyproject.toml | $(BIN)/python
	$(PIP) install -e ".[test]"
	@touch $@

# The test extras include scikit-learn, so a fresh test install serves the demo too.
$(STAMP_DEMO): pyproject.toml | $(BIN)/python
	@if [ -f $(STAMP_TEST) ] && [ $(STAMP_TEST) -nt pyproject.toml ]; then :; \
	 else $(PIP) install -e ".[sklearn]"; fi
	@touch $@

install: $(STAMP_DEMO)
install-test: $(STAMP_TEST)

demo: $(STAMP_DEMO)
	$(BIN)/lakeml demo

doctor: $(STAMP_DEMO)
	$(BIN)/lakeml doctor

# pytest exits 5 when it collected no tests: that is a failure too, with a message saying so.
test: $(STAMP_TEST)
	@$(BIN)/python -m pytest $(PYTEST_ARGS); rc=$$?; \
	 if [ $$rc -eq 5 ]; then echo "make test: pytest collected no tests (exit 5); check PYTEST_ARGS" >&2; fi; \
	 exit $$rc

docs: | $(BIN)/python
	$(BIN)/python -m tests.docs_blocks

clean:
	rm -rf lakeml-warehouse .pytest_cache .hypothesis
	find . -name __pycache__ -not -path "./$(VENV)/*" -prune -exec rm -rf {} +
