# The two set-up commands: `make run` and `make test`. Everything else is a convenience.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
CONFIG ?= config.example.toml

.PHONY: run test lint types layers deps unit bench clean check-config

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	@touch $(STAMP)

## Start the fake providers and the gateway (embedded Redis) with config.example.toml.
run: $(STAMP)
	$(BIN)/python -m gateway dev --config $(CONFIG)

## Lint, type-check, check import layers and dependencies, and run the whole suite.
test: $(STAMP) lint types layers deps
	$(BIN)/pytest -q

lint: $(STAMP)
	$(BIN)/ruff check gateway fake_providers tests benchmarks
	$(BIN)/ruff format --check gateway fake_providers tests benchmarks

types: $(STAMP)
	$(BIN)/mypy --strict gateway fake_providers

## Imports only point down (.importlinter): an upward import fails here.
layers: $(STAMP)
	$(BIN)/lint-imports

## No unused, missing or merely transitive dependencies (pyproject.toml [tool.deptry]).
deps: $(STAMP)
	$(BIN)/deptry .

unit: $(STAMP)
	$(BIN)/pytest -q tests/unit

check-config: $(STAMP)
	$(BIN)/gateway check-config $(CONFIG)

## Gateway vs direct upstream, then each gateway configuration (default, limited key, policy
## and metrics off, traces on): req/s, latency, CPU per request, RSS. Options: BENCH_ARGS="...".
## Then embeddings passthrough beside chat (benchmarks/embeddings.py), Anthropic Messages
## passthrough beside Chat Completions (benchmarks/messages.py), the Responses API over HTTP and
## WebSocket beside Chat Completions (benchmarks/responses.py), and a worker's memory idle,
## under 200 concurrent streams for 60 s and after them (benchmarks/soak.py; SOAK_ARGS="...").
bench: $(VENV)/.otel
	$(BIN)/python -m benchmarks.run $(BENCH_ARGS)
	$(BIN)/python -m benchmarks.embeddings
	$(BIN)/python -m benchmarks.messages
	$(BIN)/python -m benchmarks.responses
	$(BIN)/python -m benchmarks.soak $(SOAK_ARGS)

# The traces variant of the benchmark needs the OTLP exporter (the `otel` extra).
$(VENV)/.otel: $(STAMP)
	$(BIN)/pip install --quiet -e '.[otel]'
	@touch $@

clean:
	rm -rf $(VENV) .mypy_cache .ruff_cache .pytest_cache .hypothesis .data
