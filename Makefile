# FusionCommerce — `make dev` runs the platform, `make test` passes the tests.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
INSTALLED := $(VENV)/.installed

.PHONY: dev test test-fast lint typecheck unit bench profile render check-manifests smoke migrate n8n axe clean

$(INSTALLED): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e ".[dev]"
	touch $@

dev: $(INSTALLED)
	$(BIN)/fusion dev $(DEV_ARGS)

lint: $(INSTALLED)
	$(BIN)/ruff check .

typecheck: $(INSTALLED)
	$(BIN)/mypy

# The real n8n (from the npm registry) the workflow-import test loads the shipped workflows into.
n8n:
	bash .ci/install-n8n

# axe-core (from the npm registry), the accessibility engine the browser tests run on the pages.
axe:
	bash .ci/install-axe

test: lint typecheck n8n axe
	$(BIN)/python -m pytest --cov --cov-report=term --cov-fail-under=85

# Everything but the whole-platform tests.
test-fast: $(INSTALLED)
	$(BIN)/python -m pytest -m "not platform" -q

unit: $(INSTALLED)
	$(BIN)/python -m pytest tests/unit -q

bench: $(INSTALLED)
	$(BIN)/python -m benchmarks.run

# Where each process spends its CPU under a steady load (py-spy).
profile: $(INSTALLED)
	$(BIN)/python -m benchmarks.profile

render: $(INSTALLED)
	$(BIN)/fusion knative render

check-manifests: $(INSTALLED)
	$(BIN)/fusion knative check

smoke: $(INSTALLED)
	$(BIN)/fusion smoke

migrate: $(INSTALLED)
	$(BIN)/fusion migrate up

clean:
	rm -rf $(VENV) .fusion .n8n .axe .coverage .mypy_cache .pytest_cache .ruff_cache
