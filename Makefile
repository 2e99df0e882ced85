# Set-up and everyday commands. `make install` is idempotent: it reinstalls only when the
# dependency files change. `make demo` and `make test` install first when needed.
PYTHON ?= python3
VENV := .venv
STAMP := $(VENV)/.installed
NODE_STAMP := node_modules/.installed

.PHONY: install demo test test-fast lint clean

install: $(STAMP) $(NODE_STAMP)

$(STAMP): setup.cfg constraints.txt pyproject.toml
	test -x $(VENV)/bin/python || $(PYTHON) -m venv $(VENV)
	$(VENV)/bin/pip install --quiet -c constraints.txt -e ".[worker,dev]"
	touch $@

$(NODE_STAMP): package.json package-lock.json
	npm ci --no-audit --no-fund --loglevel=error
	touch $@

demo: install
	$(VENV)/bin/autotraining local --generate

test: install
	$(VENV)/bin/python -m pytest

test-fast: install
	$(VENV)/bin/python -m pytest -m "not e2e and not browser and not slow"

lint: install
	$(VENV)/bin/ruff check autotraining handlers worker scripts tests

clean:
	rm -rf $(VENV) node_modules .pytest_cache
