# The two commands: `make run` (set up everything, start the assistant) and
# `make test` (set up what is missing, then validate, unit/e2e tests, conversation tests).
SHELL := /bin/bash
.DEFAULT_GOAL := help
export RASA_TELEMETRY_ENABLED := false
export HF_HUB_OFFLINE := 1
export TF_CPP_MIN_LOG_LEVEL := 2
export SQLALCHEMY_SILENCE_UBER_WARNING := 1

RASA_VENV := .venv-rasa
APP_VENV := .venv
RASA := $(RASA_VENV)/bin/rasa
PY := $(APP_VENV)/bin/python

# pip keeps no cache: the two environments take several GB, and a cached copy of every
# wheel would double what the install needs on a small CI disk.
PIP := pip install --no-cache-dir --disable-pip-version-check
# Free space the two environments need (MB), checked before an install starts.
need_space = @avail=$$(df -Pm . | awk 'NR==2 {print $$4}'); \
	test "$$avail" -ge $(1) || { echo "error: $(1) MB free needed to install $(2), only $$avail MB free in $$(pwd)" >&2; exit 1; }

# Rasa 3.6 needs Python 3.8-3.10; the product runs on 3.11. Look in pyenv, then PATH.
find_python = $(firstword $(wildcard $(shell pyenv root 2>/dev/null)/versions/$(1).*/bin/python) $(shell command -v python$(1) 2>/dev/null))
PY310 := $(call find_python,3.10)
PY311 := $(call find_python,3.11)

.PHONY: help setup model index triage run run-scaled test browser proxy stop clean

help:
	@echo "make run    set everything up (both environments, Rasa model, FAQ index, database) and start the assistant"
	@echo "make run-scaled   the production topology on this machine: PostgreSQL, Redis lock store, 2 Rasa + 2 action servers"
	@echo "make test   set up what is missing, then: rasa data validate, pytest, rasa test on tests/test_stories.yml"
	@echo "make stop   stop the private PostgreSQL and Redis servers that make test and make run-scaled keep running"

$(RASA_VENV)/.installed: requirements/rasa.txt requirements/rasa-constraints.txt
	@test -n "$(PY310)" || { echo "error: Python 3.10 not found (looked for pyenv's 3.10.* and python3.10 on PATH); Rasa 3.6 needs it" >&2; exit 1; }
	@echo "creating $(RASA_VENV) with $(PY310)…"
	rm -rf $(RASA_VENV)
	$(PY310) -m venv $(RASA_VENV)
	$(call need_space,3000,$(RASA_VENV))
	$(RASA_VENV)/bin/$(PIP) --quiet --upgrade pip
	$(RASA_VENV)/bin/$(PIP) --progress-bar on -c requirements/rasa-constraints.txt -r requirements/rasa.txt
	touch $@

$(APP_VENV)/.installed: requirements/app.txt requirements/app-constraints.txt
	@test -n "$(PY311)" || { echo "error: Python 3.11 not found (looked for pyenv's 3.11.* and python3.11 on PATH)" >&2; exit 1; }
	@echo "creating $(APP_VENV) with $(PY311)…"
	rm -rf $(APP_VENV)
	$(PY311) -m venv $(APP_VENV)
	$(call need_space,2400,$(APP_VENV))
	$(APP_VENV)/bin/$(PIP) --quiet --upgrade pip
	$(APP_VENV)/bin/$(PIP) --progress-bar on -c requirements/app-constraints.txt -r requirements/app.txt
	touch $@

setup: $(RASA_VENV)/.installed $(APP_VENV)/.installed

model: setup
	$(PY) -m bot train

index: setup
	$(PY) -m kb_index build --kb data/faq --out kb_index/build

# The triage model (severity, category, problem or question): rebuilt only when the
# policy or data/triage/dev.jsonl changed; cached in models/triage.
triage: setup
	$(PY) -m bot.triage build

run: setup model index triage
	$(PY) -m bot run

# The scaled-out topology (README): tickets and Rasa's tracker store on a local PostgreSQL,
# Rasa's lock store on a local Redis (both from Debian's packages, installed if missing),
# SUPPORT_REPLICAS (default 2) Rasa servers, each with its own action server.
run-scaled: setup model index triage
	@db="$$(scripts/postgres.sh start makana)" && redis="$$(scripts/redis.sh)" && \
	SUPPORT_DATABASE_URL="$$db" SUPPORT_TRACKER_STORE_URL="$$db" SUPPORT_LOCK_STORE_URL="$$redis" \
	SUPPORT_REPLICAS="$${SUPPORT_REPLICAS:-2}" $(PY) -m bot run

# Headless Chromium for the widget's browser tests (Debian's package; Playwright drives it).
browser:
	@test -x /usr/bin/chromium || { echo "installing chromium…"; apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium; }

# nginx, to test the shipped reverse-proxy configuration (deploy/nginx.conf).
proxy:
	@command -v nginx >/dev/null || test -x /usr/sbin/nginx || { echo "installing nginx…"; apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq nginx-light; }

test: setup model index triage browser proxy
	$(APP_VENV)/bin/ruff check .
	$(RASA) data validate --fail-on-warnings
	SUPPORT_TEST_DATABASE_URL="$$(scripts/postgres.sh)" \
	SUPPORT_TEST_SCALED_DATABASE_URL="$$(scripts/postgres.sh start makana_scaled_test)" \
	SUPPORT_TEST_REDIS_URL="$$(scripts/redis.sh)" \
	SUPPORT_TEST_REQUIRE_ALL=1 $(PY) -m pytest -p no:cacheprovider
	$(RASA) test core --e2e --model models/support.tar.gz --stories tests/test_stories.yml \
		--fail-on-prediction-errors --out var/rasa-test-results
	@echo "note: the private PostgreSQL and Redis servers keep running for the next run; 'make stop' stops them"

stop:
	scripts/postgres.sh stop
	scripts/redis.sh stop

clean:
	rm -rf var models kb_index/build
