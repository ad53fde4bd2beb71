# The README's two commands: `make run` and `make test`. Each installs what it needs into .venv.
PYTHON ?= $(shell command -v python3.11 2>/dev/null || command -v python3)
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
PORT ?= 8000
export PIP_DISABLE_PIP_VERSION_CHECK=1

.PHONY: run test bench package load clean

$(STAMP): requirements.txt requirements-dev.txt
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q -r requirements-dev.txt
	@touch $(STAMP)

run: $(STAMP)
	PORT=$(PORT) $(PY) -m chalicelib.local run

test: $(STAMP)
	$(PY) -m pytest -q

bench: $(STAMP)
	$(PY) -m bench

load: $(STAMP)
	$(PY) -m tests.load.run_load --clients $${CLIENTS:-16} --seconds $${SECONDS_:-120}

package: $(STAMP)
	$(PY) -m infra.package

clean:
	rm -rf build .pytest_cache
