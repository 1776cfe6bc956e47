# Two commands on a fresh machine: `make run` serves the demo, `make test` runs the whole suite.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
HOST ?= 127.0.0.1
PORT ?= 8000
# Pings every 20 s and a 40 s read timeout (the python -m defaults): a client that stops reading is dropped.
# The listen backlog at the kernel's limit (TICKER_BACKLOG's default) queues a whole reconnect storm.
BACKLOG ?= $(shell cat /proc/sys/net/core/somaxconn 2>/dev/null || echo 4096)
SERVE := $(BIN)/hypercorn trio_ticker.app:app --worker-class trio --bind $(HOST):$(PORT) \
	--backlog $(BACKLOG) --websocket-ping-interval 20 --read-timeout 40

.PHONY: run serve test lint typecheck check clean vendor bench system-packages

# Debian packages the suite drives for real: the browser tests' chromium, the Redis tests' redis-server.
SYSTEM_PACKAGES_MISSING = $(strip $(if $(wildcard /usr/bin/chromium),,chromium) $(if $(shell command -v redis-server),,redis-server))

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

$(VENV)/.installed: pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e .
	touch $@

$(VENV)/.installed-test: pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e '.[test]'
	touch $(VENV)/.installed $@

run: $(VENV)/.installed
	@echo "Serving the demo on http://$(HOST):$(PORT)/  (Ctrl-C to stop)"
	@echo "  $(SERVE)"
	$(SERVE)

# The same app with our own shutdown: clients get close 1001 on SIGTERM/SIGINT.
# WORKERS=N: N supervised worker processes on the one port (N > 1 needs TICKER_REDIS_URL).
serve: $(VENV)/.installed
	TICKER_HOST=$(HOST) TICKER_PORT=$(PORT) $(BIN)/python -m trio_ticker $(if $(WORKERS),--workers $(WORKERS))

# As root, installs what is missing; otherwise names the one command to run (the tests then fail under CI and skip
# with that command outside it).
system-packages:
	@missing="$(SYSTEM_PACKAGES_MISSING)"; \
	if [ -z "$$missing" ]; then exit 0; fi; \
	if [ "$$(id -u)" = 0 ]; then \
		echo "Installing Debian packages for the tests: $$missing"; \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing; \
	else \
		echo "The tests need Debian packages that are missing; install them with:"; \
		echo "  sudo apt-get install -y $$missing"; \
	fi

# The web client's helpers run under Node's test runner: required under CI, skipped (with a note) without node.
test: $(VENV)/.installed-test system-packages
	@if command -v node >/dev/null; then node --test web/tests/; \
	elif [ "$$CI" = "true" ]; then echo "node is required under CI (web/tests)"; exit 1; \
	else echo "SKIPPED web/tests: node not found (install Node.js 20+ to run them)"; fi
	$(BIN)/python -m pytest

lint: $(VENV)/.installed-test
	$(BIN)/ruff check trio_ticker tests bench
	$(BIN)/ruff format --check trio_ticker tests bench

typecheck: $(VENV)/.installed-test
	$(BIN)/mypy

check: lint typecheck test

# The standard benchmark cases (docs/benchmarks.md); BENCH_ARGS="--quick" or "--cases naive" to narrow.
bench: $(VENV)/.installed bench/node_modules/.package-lock.json
	$(BIN)/python bench/run.py $(BENCH_ARGS)

bench/node_modules/.package-lock.json: bench/package.json bench/package-lock.json
	cd bench && npm ci --no-audit --no-fund

# Refresh the committed chart library from npm (version pinned in package.json); `make run` never needs npm.
vendor:
	npm install --no-audit --no-fund
	cp node_modules/lightweight-charts/dist/lightweight-charts.standalone.production.mjs web/vendor/
	cp node_modules/lightweight-charts/LICENSE web/vendor/lightweight-charts.LICENSE

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
