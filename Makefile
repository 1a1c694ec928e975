# The README's two commands: `make run` and `make test`.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
FLASK := $(PY) -m flask --app wsgi
PORT ?= 5000
export PORT

.PHONY: run port-free test drill install ha-install dev-keys bench stop clean

$(VENV)/.installed: requirements.txt requirements-dev.txt
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -r requirements-dev.txt
	touch $@

install: $(VENV)/.installed

instance/keys/private.pem: | $(VENV)/.installed
	$(FLASK) token keygen instance/keys

# The development key that seals secrets at rest (SECRET_KEYS_FILE's default).
instance/keys/secret-keys: | $(VENV)/.installed
	$(FLASK) secrets keygen --file instance/keys/secret-keys

dev-keys: instance/keys/private.pem instance/keys/secret-keys

# The port first: a second `make run` stops here, before it seeds or mints anything.
port-free:
	@$(PYTHON) scripts/port_free.py $(PORT)

# Set up everything and run web + worker (embedded PostgreSQL unless DATABASE_URL is set).
# Ctrl-C stops web and worker; the embedded PostgreSQL keeps running (`make stop`).
run: port-free install dev-keys
	$(FLASK) db upgrade
	$(FLASK) demo seed --port $(PORT) --token-file instance/demo-token
	@echo "database: $$($(FLASK) db url)"
	DATABASE_URL="$$($(FLASK) db url)" PATH="$(CURDIR)/$(VENV)/bin:$$PATH" $(VENV)/bin/honcho start web worker

# Set up everything, check style and layers, run the whole test suite (embedded PostgreSQL
# unless TEST_DATABASE_URL is set) on PYTEST_WORKERS processes (pytest-xdist); the drills
# are `make drill`. Python keeps its bytecode caches for the suite even where the environment
# says not to (PYTHONDONTWRITEBYTECODE): each process would otherwise compile again every module
# it imports, pytest's rewritten ones included (seconds per process; the suite starts dozens).
# Three processes on two cores: much of the suite waits (workers, servers, timeouts), and on
# this 2-core machine, interleaved, 3 took 137 s and 140 s where 2 took 146-156 s.
PYTEST_WORKERS ?= 3
test: install
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/ruff check .
	$(VENV)/bin/lint-imports
	env -u PYTHONDONTWRITEBYTECODE $(PY) -m pytest -n $(PYTEST_WORKERS) --dist loadgroup $(PYTEST_ARGS)

# The HA engine's tools (docs/high-availability.md): Patroni in a virtualenv of its own, made
# with the system's python so that the postgres user can run it (not one under /root), for
# scripts/ha.py. etcd comes from the system's packages: apt-get install etcd-server.
PATRONI_VENV ?= /opt/pdam-patroni
export PATRONI_VENV
ha-install: $(PATRONI_VENV)/.installed

$(PATRONI_VENV)/.installed: requirements-ha.txt
	/usr/bin/python3 -m venv $(PATRONI_VENV)
	$(PATRONI_VENV)/bin/pip install --quiet -r requirements-ha.txt
	touch $@

# The drills (minutes each; not part of `make test`): the Patroni cluster's three faults
# (scripts/ha_drill.py), a primary lost and a standby promoted by hand, and the trap of a
# standby promoted by hand that still names a synchronous standby (scripts/failover_drill.py).
drill: install ha-install
	$(PY) -m pytest -m drill $(PYTEST_ARGS)

# Benchmarks (docs/benchmarks.md): API load, job server, bills import.
bench: install
	$(PY) bench/api.py
	$(PY) bench/worker.py
	$(PY) bench/import_bills.py

# Stop the embedded PostgreSQL servers (make run's and make test's), if running.
stop:
	@$(PYTHON) scripts/embedded_stop.py instance/pgdata instance/test-pgdata

# Stop the embedded servers first: deleting a running server's files leaves it running.
clean: stop
	rm -rf $(VENV) instance .pytest_cache
