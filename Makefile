# The two commands a newcomer needs: `make run` and `make test`. Everything else sets them up.
PYTHON ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: run test check bench clean

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[test,dev]'
	touch $(STAMP)

run: $(STAMP)
	$(BIN)/steward db upgrade
	$(BIN)/steward serve

# The suite runs on SQLite, then its database tests again on PostgreSQL (skipped with the reason
# when no server answers, unless REQUIRE_POSTGRES=1). Both passes always run, so one red pass
# never hides the other's news; the command fails if either did. (Exit 5 is "no test selected":
# PYTEST_ARGS naming only database-free tests leaves the PostgreSQL pass nothing to run.)
test: $(STAMP)
	@failed=""; \
	$(BIN)/python -m pytest $(PYTEST_ARGS) || failed="$$failed sqlite"; \
	$(BIN)/python -m pytest --db postgres $(PYTEST_ARGS) || [ $$? -eq 5 ] || failed="$$failed postgres"; \
	if [ -n "$$failed" ]; then echo "make test: failed on$$failed"; exit 1; fi; \
	echo "make test: both passes green (sqlite, postgres)"

check: $(STAMP)
	$(BIN)/ruff format --check steward tests benchmarks
	$(BIN)/ruff check steward tests benchmarks
	$(BIN)/mypy

bench: $(STAMP)
	$(BIN)/python -m benchmarks.run

clean:
	rm -rf $(VENV) data .pytest_cache .mypy_cache
