# django-broadcasting: the two commands of the README (`make demo`, `make test`) and their helpers.
# GNU make. Every target that needs Python calls `install` first, which is a no-op when nothing changed.

SHELL := /bin/bash
.DEFAULT_GOAL := help

PYTHON ?= $(shell command -v python3.11 >/dev/null 2>&1 && echo python3.11 || echo python3)
VENV ?= .venv
VPY := $(VENV)/bin/python
PORT ?= 8000
REDIS_HOST ?= 127.0.0.1
REDIS_PORT ?= 6379
PYTEST_ARGS ?=
# The version matrix's second line: the newest Django 6.x on Python 3.12+ in its own venv.
DJ6_VENV ?= .venv-dj6
DJ6_DJANGO ?= Django>=6,<7
DJ6_PY := $(DJ6_VENV)/bin/python
# Python suite on that line: everything but the browser tests (Chromium drives the same server code
# as the integration tests; the JS client runs once, in `jstest`), except the admin's pages, whose
# templates differ between Django lines.
DJ6_PYTEST_ARGS ?= -m "not e2e or django_matrix"
# The first Python 3.12+ that runs: python3.13 / python3.12 on PATH, then pyenv's versions.
find_py312 = for p in python3.13 python3.12 $$(ls -d $$HOME/.pyenv/versions/3.1[3-9]*/bin/python3 \
	$$HOME/.pyenv/versions/3.12*/bin/python3 2>/dev/null); do \
	if $$p -c 'import sys; sys.exit(0 if sys.version_info >= (3, 12) else 1)' >/dev/null 2>&1; then \
	command -v $$p 2>/dev/null || echo $$p; break; fi; done
# Root installs Debian packages directly; anyone else goes through sudo.
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)
STAMP := $(VENV)/.installed
# A machine's pip config may name index folders that do not exist: drop those warnings, keep the rest.
PIP_FILTER := { grep -v 'is ignored: it is neither a file nor a directory' || true; }

.PHONY: help install demo demo-users test pytest pytest-dj6 install-dj6 jstest services redis redis-sentinel nginx \
	node-deps chromium bench bench-smoke fuzz soak lint clean distclean test-cluster

help:
	@echo "make demo    serve example_project on http://127.0.0.1:$(PORT) (in-memory layer, no Redis)"
	@echo "make test    install, start Redis if needed, run the whole suite (Python + JS), on Django 5.2"
	@echo "             (Python 3.11) and on the newest Django 6 (Python 3.12+, $(DJ6_VENV))"
	@echo "make install create $(VENV) and install the package with its dev extras"
	@echo "make fuzz    fuzz live daphne and uvicorn servers with FUZZ_EXAMPLES generated inputs (100000)"
	@echo "make soak    DURATION=5 (minutes) SOAK_SOCKETS=2000 SOAK_BACKEND=memory|redis: churn against a server"
	@echo "make lint | bench | bench-smoke | clean | distclean"

# ---------------------------------------------------------------------------------------------
# Install: the stamp is newer than the files that decide what gets installed, so a second run is free.
install: $(STAMP)

$(STAMP): setup.cfg pyproject.toml requirements.txt
	@set -o pipefail; if [ ! -x "$(VPY)" ]; then \
		echo ">> creating $(VENV) with $(PYTHON)"; \
		$(PYTHON) -m venv $(VENV) || { rm -rf $(VENV); \
			echo ">> $(PYTHON) cannot create a venv: installing Debian's python3-venv"; \
			$(SUDO) apt-get update -qq && DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq python3-venv \
			&& $(PYTHON) -m venv $(VENV); } || exit 1; \
		$(VPY) -m pip install -q --upgrade pip setuptools wheel 2>&1 | $(PIP_FILTER) || exit 1; \
	fi
	@echo ">> pip install -r requirements.txt"
	@set -o pipefail; $(VPY) -m pip install -q -r requirements.txt 2>&1 | $(PIP_FILTER)
	@touch $@

# ---------------------------------------------------------------------------------------------
# Demo: the embedded default (in-memory channel layer, SQLite); no Redis or other service.
demo: install
	env -u BROADCAST_CHANNEL_LAYER $(VPY) manage.py migrate --noinput -v 0
	@$(MAKE) --no-print-directory demo-users
	@echo ""
	@echo "  django-broadcasting demo:  http://127.0.0.1:$(PORT)/"
	@echo "  log in as demo / demo  (staff superuser: admin / admin, admin at /admin/)"
	@echo "  send from another terminal:"
	@echo "    BROADCAST_WEBSOCKET_PORT=$(PORT) $(VPY) manage.py broadcast test --channel general"
	@echo ""
	env -u BROADCAST_CHANNEL_LAYER BROADCAST_WEBSOCKET_PORT=$(PORT) $(VPY) manage.py runserver 127.0.0.1:$(PORT)

# Idempotent: (re)sets the passwords so the printed logins always work.
define DEMO_USERS_PY
from django.contrib.auth import get_user_model
User = get_user_model()
for name, password, staff in (("demo", "demo", False), ("admin", "admin", True)):
    user, _ = User.objects.get_or_create(username=name, defaults={"email": name + "@example.com"})
    user.set_password(password)
    user.is_staff = user.is_superuser = staff
    user.save()
endef
export DEMO_USERS_PY

demo-users: install
	@env -u BROADCAST_CHANNEL_LAYER $(VPY) manage.py shell -v 0 -c "$$DEMO_USERS_PY"

# ---------------------------------------------------------------------------------------------
# Test: Python (unit, integration with real daphne/uvicorn + Redis, e2e with Chromium) and JS.
# The Redis Cluster tests alone: they start their own cluster (redis-server --cluster-enabled yes,
# redis-cli --cluster create) on free loopback ports. `make test` runs them with the rest of the suite.
test-cluster: install
	@$(VPY) -m pytest tests/integration/test_redis_cluster.py -q $(PYTEST_ARGS)

# Both runners always run; the target fails when either fails. pytest's "no tests" (5) is a failure.
test: install services
	@rc=0; \
	$(MAKE) --no-print-directory jstest || rc=1; \
	$(MAKE) --no-print-directory pytest || rc=1; \
	$(MAKE) --no-print-directory pytest-dj6 || rc=1; \
	exit $$rc

pytest: install node-deps
	@$(VPY) -m pytest $(PYTEST_ARGS); rc=$$?; \
	if [ $$rc -eq 5 ]; then echo "pytest collected no tests: failing" >&2; exit 1; fi; \
	exit $$rc

# The Django 6 line. No Python 3.12+ on the machine: skipped with a notice, or a failure under CI=true.
install-dj6:
	@set -o pipefail; py=$$($(find_py312)); \
	if [ -z "$$py" ]; then \
		if [ "$${CI:-}" = true ]; then echo "!! Python 3.12+ is required under CI=true (Django 6 line)" >&2; exit 1; fi; \
		echo "!! no Python 3.12+ found: the Django 6 line of the matrix is skipped" >&2; exit 0; \
	fi; \
	if [ ! -x "$(DJ6_PY)" ]; then echo ">> creating $(DJ6_VENV) with $$py"; $$py -m venv $(DJ6_VENV) || exit 1; \
		$(DJ6_PY) -m pip install -q --upgrade pip setuptools wheel 2>&1 | $(PIP_FILTER) || exit 1; fi; \
	if [ ! -f $(DJ6_VENV)/.installed ] || [ setup.cfg -nt $(DJ6_VENV)/.installed ] \
		|| [ requirements.txt -nt $(DJ6_VENV)/.installed ] || [ pyproject.toml -nt $(DJ6_VENV)/.installed ]; then \
		echo ">> $(DJ6_VENV): pip install -r requirements.txt '$(DJ6_DJANGO)'"; \
		$(DJ6_PY) -m pip install -q -r requirements.txt '$(DJ6_DJANGO)' 2>&1 | $(PIP_FILTER) || exit 1; \
		touch $(DJ6_VENV)/.installed; \
	fi

pytest-dj6: install-dj6 node-deps
	@if [ ! -x "$(DJ6_PY)" ]; then exit 0; fi; \
	echo ">> Django $$($(DJ6_PY) -c 'import django; print(django.get_version())') on Python $$($(DJ6_PY) -c 'import platform; print(platform.python_version())'): pytest $(DJ6_PYTEST_ARGS)"; \
	DJANGO_BROADCASTING_EXPECT_DJANGO=6 $(DJ6_PY) -m pytest $(DJ6_PYTEST_ARGS) $(PYTEST_ARGS); rc=$$?; \
	if [ $$rc -eq 5 ]; then echo "pytest collected no tests: failing" >&2; exit 1; fi; \
	exit $$rc

# JS tests find the project's Python (to start a server process) in $$VENV_PYTHON.
jstest: install node-deps
	VENV_PYTHON="$(abspath $(VPY))" node --test tests/js

services: redis redis-sentinel chromium nginx

# Debian's nginx for the deployment test (tests/integration/test_deployment.py runs it as its own
# process on free ports; the package's own service is not used). Under CI=true a missing nginx fails.
nginx:
	@if ! command -v nginx >/dev/null 2>&1 && [ ! -x /usr/sbin/nginx ]; then \
		echo ">> installing Debian's nginx"; \
		($(SUDO) apt-get update -qq && DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq nginx) >/dev/null \
			|| { [ "$${CI:-}" != true ] || { echo "!! nginx is required under CI=true" >&2; exit 1; }; }; \
	fi

# Redis on 127.0.0.1:6379: used if it answers, started (installing Debian's redis-server if needed) if not.
# Under CI=true a Redis that cannot be started fails the run; elsewhere the Redis tests skip.
redis_ping = $(PYTHON) -c "import socket,sys; s=socket.create_connection(('$(REDIS_HOST)', $(REDIS_PORT)), 2); s.sendall(b'PING\r\n'); sys.exit(0 if s.recv(16).startswith(b'+PONG') else 1)" 2>/dev/null

redis:
	@if $(redis_ping); then echo ">> Redis answers on $(REDIS_HOST):$(REDIS_PORT)"; exit 0; fi; \
	if ! command -v redis-server >/dev/null 2>&1; then \
		echo ">> installing Debian's redis-server"; \
		($(SUDO) apt-get update -qq && DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq redis-server) >/dev/null || true; \
	fi; \
	if command -v redis-server >/dev/null 2>&1 && ! $(redis_ping); then \
		echo ">> starting redis-server on $(REDIS_HOST):$(REDIS_PORT)"; \
		redis-server --bind $(REDIS_HOST) --port $(REDIS_PORT) --daemonize yes --save "" --appendonly no \
			--logfile "$${TMPDIR:-/tmp}/django-broadcasting-redis.log" >/dev/null || true; \
	fi; \
	for i in $$(seq 1 50); do if $(redis_ping); then echo ">> Redis answers on $(REDIS_HOST):$(REDIS_PORT)"; exit 0; fi; sleep 0.2; done; \
	if [ "$${CI:-}" = true ]; then echo "!! Redis is required under CI=true and could not be started" >&2; exit 1; fi; \
	echo "!! no Redis on $(REDIS_HOST):$(REDIS_PORT): tests marked 'redis' will be skipped" >&2

# Debian's redis-sentinel for the failover test (tests/integration/test_redis_sentinel.py starts its own
# primary, replica and three sentinels on free ports; the package's service is not used).
# Under CI=true a missing redis-sentinel fails the run; elsewhere that test skips.
redis-sentinel:
	@if ! command -v redis-sentinel >/dev/null 2>&1; then \
		echo ">> installing Debian's redis-sentinel"; \
		($(SUDO) apt-get update -qq && DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq redis-sentinel) >/dev/null \
			|| { [ "$${CI:-}" != true ] || { echo "!! redis-sentinel is required under CI=true" >&2; exit 1; }; }; \
	fi

# Node dependencies (the JS client and Echo tests use npm packages), from package-lock.json.
node-deps:
	@if ! command -v npm >/dev/null 2>&1; then \
		($(SUDO) apt-get update -qq && DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq nodejs npm) >/dev/null; \
	fi
	@if [ ! -f node_modules/.installed ] || [ package.json -nt node_modules/.installed ] \
		|| [ package-lock.json -nt node_modules/.installed ]; then \
		npm ci --no-audit --no-fund && touch node_modules/.installed; \
	fi

# Debian's Chromium for the browser tests (never a downloaded browser build).
chromium:
	@if [ ! -x /usr/bin/chromium ]; then \
		echo ">> installing Debian's chromium"; \
		$(SUDO) apt-get update -qq && DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq chromium >/dev/null \
			|| { [ "$${CI:-}" != true ] || { echo "!! chromium is required under CI=true" >&2; exit 1; }; }; \
	fi

# ---------------------------------------------------------------------------------------------
# Fuzz: Hypothesis inputs against live servers (tests/fuzz); prints the number of inputs per target.
# The ordinary suite runs the same tests with 300 inputs. FUZZ_SERVERS=daphne picks one server.
FUZZ_EXAMPLES ?= 100000

fuzz: install services
	FUZZ_EXAMPLES=$(FUZZ_EXAMPLES) $(VPY) -m pytest tests/fuzz -m fuzz -q -p no:cacheprovider --timeout=0 $(PYTEST_ARGS)

# ---------------------------------------------------------------------------------------------
bench: install
	$(VPY) -m bench $(BENCH_ARGS)

bench-smoke: install
	$(VPY) -m bench --smoke $(BENCH_ARGS)

# Soak and churn (bench/soak.py): thousands of sockets joining, whispering and leaving for DURATION
# minutes; prints RSS and its slope, and checks that nothing is lost and every figure comes back.
DURATION ?= 5
SOAK_SOCKETS ?= 2000
SOAK_BACKEND ?= memory
soak: install
	$(VPY) -m bench.soak --duration $(DURATION) --sockets $(SOAK_SOCKETS) --backend $(SOAK_BACKEND) $(SOAK_ARGS)

lint: install
	$(VPY) -m ruff check django_broadcasting example_project tests $(wildcard bench)

clean:
	rm -rf build dist *.egg-info .pytest_cache .ruff_cache .coverage htmlcov staticfiles
	find . -path ./$(VENV) -prune -o -path ./node_modules -prune -o -name __pycache__ -type d -print \
		| xargs rm -rf

distclean: clean
	rm -rf $(VENV) $(DJ6_VENV) node_modules
