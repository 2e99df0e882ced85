# Set-up and everyday commands. `make install` is idempotent: it reinstalls only when the
# dependency files change. `make demo` and `make test` install first when needed.
PYTHON ?= python3
VENV := .venv
STAMP := $(VENV)/.installed
NODE_STAMP := node_modules/.installed
BROWSER_STAMP := $(VENV)/.browser
# checkov pins packages that conflict with ours: it lives in its own venv.
CHECKOV_VENV := .venv-checkov
CHECKOV := $(CHECKOV_VENV)/bin/checkov
SYSTEMD_ANALYZE := /usr/bin/systemd-analyze
TFJS_VENDORED := handlers/static/tf.min.js
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)

.PHONY: install demo test test-fast lint clean

install: $(STAMP) $(NODE_STAMP) $(TFJS_VENDORED) $(BROWSER_STAMP) $(CHECKOV) $(SYSTEMD_ANALYZE)

$(STAMP): setup.cfg constraints.txt pyproject.toml
	test -x $(VENV)/bin/python || $(PYTHON) -m venv $(VENV)
	$(VENV)/bin/pip install --quiet -c constraints.txt -e ".[worker,dev]"
	touch $@

$(NODE_STAMP): package.json package-lock.json
	npm ci --no-audit --no-fund --loglevel=error
	touch $@

# The dashboard's TensorFlow.js, vendored from npm (never from a CDN); the Lambda bundle ships
# handlers/static/, so build it after `make install`.
$(TFJS_VENDORED): $(NODE_STAMP)
	cp node_modules/@tensorflow/tfjs/dist/tf.min.js $@

# Debian's chromium for the browser test, driven by Playwright (pip) with executable_path:
# Playwright's own browser download is never used. apt runs only when chromium is missing.
$(BROWSER_STAMP):
	test -x /usr/bin/chromium || { $(SUDO) apt-get update -qq && DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq --no-install-recommends chromium fonts-liberation; }
	touch $@

$(CHECKOV):
	test -x $(CHECKOV_VENV)/bin/python || $(PYTHON) -m venv $(CHECKOV_VENV)
	$(CHECKOV_VENV)/bin/pip install --quiet checkov==3.3.30

# systemd-analyze checks the worker's unit (tests/deploy/test_boot_tools.py); Debian's systemd
# package provides it. apt runs only when it is missing.
$(SYSTEMD_ANALYZE):
	test -x $@ || { $(SUDO) apt-get update -qq && DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq --no-install-recommends systemd; }

demo: install
	$(VENV)/bin/autotraining local --generate

test: install lint
	$(VENV)/bin/cfn-lint deploy/cloudformation/template.yaml
	$(VENV)/bin/python -m pytest

test-fast: install
	$(VENV)/bin/python -m pytest -m "not e2e and not browser and not slow"

lint: install
	$(VENV)/bin/ruff check autotraining autotraining_tools handlers worker scripts tests
	$(VENV)/bin/mypy autotraining autotraining_tools handlers worker scripts
	$(VENV)/bin/bandit -q -c bandit.yaml -r autotraining autotraining_tools handlers worker scripts
	$(CHECKOV) --config-file deploy/checkov.yaml -f deploy/cloudformation/template.yaml

clean:
	rm -rf $(VENV) node_modules .pytest_cache
