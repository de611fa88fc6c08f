# Customer Marts: `make` lists the targets.
SHELL := /bin/bash
.DEFAULT_GOAL := help

PYTHON      ?= python3.11
UV_VERSION  := 0.13.8
VENV        := .venv
BIN         := $(VENV)/bin
STAMP       := $(VENV)/.installed
export AIRFLOW_HOME ?= $(CURDIR)/airflow_home

.PHONY: help run demo recover airflow test test-fast lint format docs docs-site bench up down clean lock

help: ## List the targets
	@awk 'BEGIN {FS = ":.*## "} /^[a-zA-Z_-]+:.*## / {printf "  \033[36m%-10s\033[0m %s\n", $$1, $$2}' $(MAKEFILE_LIST)

$(STAMP): requirements.lock requirements-dev.lock pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	@$(BIN)/python -m pip install --quiet --disable-pip-version-check uv==$(UV_VERSION)
	@# Byte-compiled at install: with PYTHONDONTWRITEBYTECODE set (as on our CI machines)
	@# every airflow, dbt and GE process would otherwise recompile its imports (~15 s each).
	$(BIN)/uv pip sync --quiet --compile-bytecode --python $(BIN)/python requirements.lock requirements-dev.lock
	$(BIN)/uv pip install --quiet --python $(BIN)/python --no-deps -e .
	@touch $@

venv: $(STAMP) ## Create .venv with the pinned runtime and development dependencies (both locks)

run: $(STAMP) ## Run the nightly DAG once on LANDING_DIR (demo data by default) and publish, step by step
	$(BIN)/customer-marts run $(RUN_ARGS)

demo: $(STAMP) ## Write the demo data into LANDING_DIR (empty or missing) and run on it
	$(BIN)/customer-marts run --demo $(RUN_ARGS)

recover: $(STAMP) ## Rebuild a damaged build.duckdb from the archive of ingested files
	$(BIN)/customer-marts recover $(RECOVER_ARGS)

# Test files run side by side on every core (pytest-xdist; a file's tests stay together,
# so its fixtures are built once), in the order tests/conftest.py gives them (the longest
# first): TEST_WORKERS=0 runs them one after another.
TEST_WORKERS ?= auto
PARALLEL    := -n $(TEST_WORKERS) --dist loadfile --no-loadscope-reorder

test: $(STAMP) ## The whole test suite: unit, dbt, DAG, Airflow, browser and end to end (what .ci/run runs)
	$(BIN)/python -m pytest $(PARALLEL)

test-fast: $(STAMP) ## The fast tier (no Airflow run, no dbt build, no browser): pytest -m "not slow and not dbt_build"
	$(BIN)/python -m pytest $(PARALLEL) -m "not slow and not dbt_build"

lint: $(STAMP) ## Ruff lint and format check
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

format: $(STAMP) ## Apply ruff fixes and formatting
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

docs: $(STAMP) ## Build and serve the dbt docs site on http://127.0.0.1:8080
	$(BIN)/customer-marts docs

docs-site: $(STAMP) ## Build the manual (MkDocs, docs/) into site/: open site/index.html
	NO_MKDOCS_2_WARNING=1 $(BIN)/mkdocs build --strict --site-dir site

bench: $(STAMP) ## Benchmarks at 1M and 10M orders (writes bench/results.json, BENCHMARKS.md)
	$(BIN)/python -m bench $(BENCH_ARGS)

BI_VENV     := .venv-bi
BI_STAMP    := $(BI_VENV)/.installed
.PHONY: bi bi-venv bi-lock  # bi/ is also a folder

$(BI_STAMP): bi/requirements.lock | $(STAMP)
	@test -x $(BI_VENV)/bin/python || $(PYTHON) -m venv $(BI_VENV)
	$(BIN)/uv pip sync --quiet --compile-bytecode --python $(BI_VENV)/bin/python bi/requirements.lock
	@touch $@

bi-venv: $(BI_STAMP) ## Create .venv-bi with Superset's pinned dependencies (bi/requirements.lock)

bi: $(BI_STAMP) ## Superset with the Customer Marts dashboard on http://127.0.0.1:8088 (SUPERSET_PORT)
	$(BIN)/python bi/superset_setup.py

bi-lock: ## Re-resolve bi/requirements.lock from bi/requirements.in (needs uv)
	$(BIN)/uv pip compile bi/requirements.in -p 3.11 --generate-hashes -o bi/requirements.lock

# The dbt project on Apache Spark (docs/engines.md): dbt-spark and pyspark in their own
# environment, out of the pipeline's locks and the Docker image. Java 17 is Debian's
# openjdk-17-jre-headless.
SPARK_VENV  := .venv-spark
SPARK_STAMP := $(SPARK_VENV)/.installed
.PHONY: spark-venv spark-lock

$(SPARK_STAMP): spark/requirements.lock | $(STAMP)
	@test -x $(SPARK_VENV)/bin/python || $(PYTHON) -m venv $(SPARK_VENV)
	$(BIN)/uv pip sync --quiet --compile-bytecode --python $(SPARK_VENV)/bin/python spark/requirements.lock
	@touch $@

spark-venv: $(SPARK_STAMP) ## Create .venv-spark with dbt-spark and pyspark (spark/requirements.lock)

spark-lock: ## Re-resolve spark/requirements.lock from spark/requirements.in (needs uv)
	$(BIN)/uv pip compile spark/requirements.in -p 3.11 --generate-hashes -c requirements.lock --custom-compile-command "make spark-lock" -o spark/requirements.lock

airflow: $(STAMP) ## The Airflow UI without Docker on http://127.0.0.1:8080 (AIRFLOW_PORT); Ctrl-C stops
	$(BIN)/python -m tools.airflow_ui

up: ## Build the image and start the docker-compose deployment (needs Docker and .env)
	@test -f .env || { echo "No .env: cp .env.example .env, then set its secrets (docs/deployment.md)"; exit 1; }
	docker compose up -d --build

down: ## Stop the docker-compose deployment (data/ and the metadata volume stay)
	docker compose down

lock: ## Re-resolve requirements.lock (runtime: the image) and requirements-dev.lock (+ test, lint, docs tools, same pins) from pyproject.toml
	$(BIN)/uv pip compile pyproject.toml -p 3.11 --generate-hashes --custom-compile-command "make lock" -o requirements.lock
	$(BIN)/uv pip compile pyproject.toml --extra dev -p 3.11 --generate-hashes -c requirements.lock --custom-compile-command "make lock" -o requirements-dev.lock

clean: ## Remove generated data, Airflow home and dbt artefacts (keeps .venv)
	rm -rf data/warehouse airflow_home dbt_project/target dbt_project/logs .pytest_cache
