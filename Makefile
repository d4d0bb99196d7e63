# MHHS Event Store. `make demo` and `make test` set everything up on first use.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-$(shell cat pyproject.toml constraints.txt 2>/dev/null | cksum | cut -d' ' -f1)

.PHONY: help install demo test lint interop kafka-up kafka-down lab bench clean

help:
	@echo "make demo        run the whole product end to end on a local broker"
	@echo "make test        lint, type-check, architecture contracts and the test suite"
	@echo "make interop     Apache Spark (Iceberg's Spark runtime) reads the tables; also part of make test"
	@echo "make kafka-up    start the local Apache Kafka broker (make kafka-down stops it)"
	@echo "make lab         JupyterLab on 127.0.0.1 over notebooks/ (installs the notebooks extra)"
	@echo "make bench       run the benchmarks under bench/"

$(STAMP):
	@$(PYTHON) -c 'import sys; assert sys.version_info >= (3, 11), "Python 3.11+ is required"'
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -c constraints.txt -e '.[dev]'
	rm -f $(VENV)/.installed-*
	touch $@

install: $(STAMP)

demo: $(STAMP)
	$(BIN)/mhhs demo

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/mypy
	$(BIN)/lint-imports

test: lint
	$(BIN)/python -m pytest -q

interop: $(STAMP)
	$(BIN)/python -m pytest -q -m interop

kafka-up: $(STAMP)
	$(BIN)/mhhs broker up

kafka-down: $(STAMP)
	$(BIN)/mhhs broker down

# Kernels start in notebooks/: relative var/ paths are made absolute unless already set.
lab: export MHHS_WAREHOUSE ?= $(CURDIR)/var/warehouse
lab: export MHHS_KAFKA_DATA_DIR ?= $(CURDIR)/var/kafka
lab: export MHHS_QUALITY_DOCS_DIR ?= $(CURDIR)/var/quality/data_docs
lab: export MHHS_DELIVERIES_JWKS_FILE ?= $(CURDIR)/var/deliveries/jwks.json
lab: $(STAMP)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -c constraints.txt -e '.[dev,notebooks]'
	mkdir -p $(VENV)/share/jupyter/lab/settings
	cp notebooks/lab-overrides.json $(VENV)/share/jupyter/lab/settings/overrides.json
	$(BIN)/jupyter lab --ip 127.0.0.1 --no-browser --notebook-dir notebooks $(if $(filter 0,$(shell id -u)),--allow-root)

bench: $(STAMP)
	$(BIN)/python bench/simulate.py

clean:
	-$(BIN)/mhhs broker down
	rm -rf var .pytest_cache .mypy_cache .ruff_cache
