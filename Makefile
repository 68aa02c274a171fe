# Two commands for people: `make run` and `make test`. Everything else is for CI and the team.
PYTHON ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: run test lint typecheck openapi bench clean

$(STAMP): pyproject.toml
	@command -v $(PYTHON) >/dev/null 2>&1 || { echo "$(PYTHON) not found: install Python 3.11"; exit 1; }
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	@touch $(STAMP)

# Development: keys are generated in instance/, links point to the served address, SMS go to a file.
run: export CONSENT_GATE_ENV = development
run: $(STAMP)
	$(BIN)/consent-gate db upgrade
	@echo ""
	@echo "Consent Gate on http://127.0.0.1:8000  (docs: http://127.0.0.1:8000/docs)"
	@echo "First API key, in another terminal:"
	@echo "  export CONSENT_GATE_ENV=development"
	@echo "  ORG=\$$($(BIN)/consent-gate orgs create 'My Organization' --contact 'privacy@example.org' --json | python3 -c 'import json,sys; print(json.load(sys.stdin)[\"id\"])')"
	@echo "  $(BIN)/consent-gate keys create \$$ORG --scopes admin,consents,verify --json"
	@echo ""
	$(BIN)/consent-gate serve --host 127.0.0.1 --port 8000

test: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/mypy
	$(BIN)/python -m pytest

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

typecheck: $(STAMP)
	$(BIN)/mypy

openapi: $(STAMP)
	CONSENT_GATE_ENV=development CONSENT_GATE_INSTANCE_PATH=$$(mktemp -d) $(BIN)/consent-gate openapi write --format=json openapi/openapi.json

bench: $(STAMP)
	$(BIN)/python -m bench

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
