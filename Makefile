# The two commands a newcomer needs: `make run` and `make test`. Everything else sets them up.
PYTHON ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
# uv resolves the lock (`make lock`); pinned so that two people refreshing it get the same tool.
UV_VERSION := 0.13.9
# Extra arguments for `make lock`: e.g. --upgrade, or --upgrade-package NAME.
LOCK_ARGS ?=

.PHONY: run test check bench lock clean browser screenshot

# Every package comes from requirements.lock, pinned and hash-checked; then the project itself,
# editable, with no dependencies of its own resolved. `pip check` catches a pyproject.toml that
# asks for something the lock does not give (run `make lock`).
$(STAMP): requirements.lock pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --require-hashes --no-deps -r requirements.lock
	$(BIN)/python -m pip install --quiet --no-deps -e .
	$(BIN)/python -m pip check || { echo "requirements.lock does not match pyproject.toml: run make lock"; exit 1; }
	touch $(STAMP)

# The demo: a street with two weeks of history on its own SQLite file (data/demo.sqlite3, made
# afresh), served with the browser simulator on 127.0.0.1:8000. Production is `steward serve`.
run: $(STAMP)
	$(BIN)/steward demo

# The browser tests drive Debian's chromium, and Chinese needs a CJK font to render: install
# both with apt when missing, where we can (root, apt-get); otherwise say why, and those tests
# skip with the reason. Never `playwright install` (it downloads a browser of its own).
BROWSER_PACKAGES := chromium fonts-wqy-zenhei
browser:
	@if command -v chromium >/dev/null 2>&1 && fc-list 2>/dev/null | grep -qi "WenQuanYi Zen Hei"; then \
		exit 0; \
	elif [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
		echo "installing $(BROWSER_PACKAGES) with apt-get for the browser tests"; \
		{ apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq \
			$(BROWSER_PACKAGES) >/dev/null; } \
		|| echo "could not install $(BROWSER_PACKAGES): the browser tests will be skipped"; \
	else \
		echo "chromium is missing and apt-get cannot run here: the browser tests will be skipped"; \
	fi

# docs/simulator.png for the README, from a demo of its own (or SIM_URL=http://127.0.0.1:8000/sim,
# the one `make run` serves).
screenshot: $(STAMP) browser
	$(BIN)/python -m tests.test_browser --out docs/simulator.png $(if $(SIM_URL),--url $(SIM_URL))

# The suite runs on SQLite, then its database tests again on PostgreSQL (skipped with the reason
# when no server answers, unless REQUIRE_POSTGRES=1). Both passes always run, so one red pass
# never hides the other's news; the command fails if either did. (Exit 5 is "no test selected":
# PYTEST_ARGS naming only database-free tests leaves the PostgreSQL pass nothing to run.)
test: $(STAMP) browser
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

# Re-resolve requirements.lock from pyproject.toml (every extra, Python 3.11), keeping the pins
# that still fit; `make lock LOCK_ARGS=--upgrade` takes the newest allowed versions instead.
lock:
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet 'uv==$(UV_VERSION)'
	UV_CUSTOM_COMPILE_COMMAND="make lock" $(BIN)/uv pip compile --quiet pyproject.toml \
		--extra test --extra dev --generate-hashes --python-version 3.11 $(LOCK_ARGS) \
		-o requirements.lock
	@echo "requirements.lock: $$(grep -c '^[a-z]' requirements.lock) packages pinned with hashes"

clean:
	rm -rf $(VENV) data .pytest_cache .mypy_cache
