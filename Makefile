# ictq — the two commands a new user needs:
#   make demo   install, then run the main job on the embedded default (SQLite)
#   make test   install everything (services and packages included), then run the whole test suite

PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
# Debian packages the tests drive (installed by scripts/test-services when missing).
# PHP and Laravel 8.83 from Debian (the real Laravel app of tests/laravel_app), Redis (Laravel's
# redis cache store), PgBouncer (ictq through its session and transaction pooling), chromium and its
# chromedriver (the dashboard's browser tests).
TEST_PACKAGES := sqlite3 shellcheck debootstrap openssh-client logrotate redis-server redis-tools pgbouncer chromium chromium-driver \
	php-cli php-laravel-framework php-sqlite3 php-pgsql php-mysql php-mbstring php-xml php-redis

.PHONY: install demo test lint unit integration clean bench

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[test]'
	touch $(STAMP)

install: $(STAMP)

demo: $(STAMP)
	@bash examples/demo/run.sh

test: lint
	@bash scripts/test-services $(TEST_PACKAGES)
	$(BIN)/pytest

unit: $(STAMP)
	$(BIN)/pytest tests/unit

# ruff, mypy strict, the import contracts (pyproject.toml) and ansible-lint's production profile.
lint: $(STAMP)
	$(BIN)/ruff check ictq tests fabfile bench
	$(BIN)/mypy
	$(BIN)/lint-imports
	$(BIN)/ansible-lint --profile production

# The benchmark (bench/README.md): ictq and its peers side by side, ictq through PgBouncer, then the
# scale scenario; BENCH_ARGS="--quick" for a smoke run.
bench: $(STAMP)
	@bash scripts/test-services pgbouncer
	$(BIN)/pip install --quiet -e '.[bench]'
	BENCH_VIA_MAKE=1 $(BIN)/python -m bench $(BENCH_ARGS)

clean:
	rm -rf $(VENV) demo .pytest_cache .mypy_cache .ruff_cache .ansible
