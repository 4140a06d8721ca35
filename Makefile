# Two commands a newcomer needs: `make run` and `make test`. Both set up .venv first.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: setup run test lint bench clean

setup: $(STAMP)

$(STAMP): pyproject.toml constraints.txt
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else "Cicatrix needs Python 3.11 or newer")'
	@test -x $(PY) || $(PYTHON) -m venv $(VENV) || { echo "Could not create $(VENV): on Debian run 'apt-get install python3-venv' and try again."; exit 1; }
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -c constraints.txt -e '.[test]'
	@touch $(STAMP)

run: setup
	$(PY) main.py run --simulate

test: setup
	QT_QPA_PLATFORM=offscreen $(PY) -m pytest

lint: setup
	$(PY) -m ruff check .

# Quick runs of every benchmark (docs/benchmarks.md gives the full-length commands and the figures measured).
bench: setup
	$(PY) bench/telemetry.py --seconds 5
	$(PY) bench/interlock.py --trips 20
	$(PY) bench/recording.py --seconds 10 --hours 0.25
	QT_QPA_PLATFORM=offscreen $(PY) bench/gui.py --seconds 3

clean:
	rm -rf $(VENV) build *.egg-info
