# Two commands a newcomer needs: `make run` and `make test`. Both set up .venv first.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: setup run test lint bench clean install-desktop uninstall-desktop

setup: $(STAMP)

$(STAMP): pyproject.toml constraints.txt
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else "Cicatrix needs Python 3.11 or newer")'
	@test -x $(PY) || $(PYTHON) -m venv $(VENV) || { echo "Could not create $(VENV): on Debian run 'apt-get install python3-venv' and try again."; exit 1; }
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -c constraints.txt -e '.[test]'
	@touch $(STAMP)

run: setup
	$(PY) main.py run --simulate

# The example driver package (docs/writing-a-driver.md) installs as a third-party package would; pytest runs its
# contract tests with the project's (testpaths in pyproject.toml).
EXAMPLE_DRIVER := examples/cicatrix-example-light
EXAMPLE_STAMP := $(VENV)/.example-driver-installed

$(EXAMPLE_STAMP): $(STAMP) $(EXAMPLE_DRIVER)/pyproject.toml
	$(PY) -m pip install --quiet -c constraints.txt -e $(EXAMPLE_DRIVER)
	@touch $(EXAMPLE_STAMP)

test: setup $(EXAMPLE_STAMP)
	QT_QPA_PLATFORM=offscreen $(PY) -m pytest

lint: setup
	$(PY) -m ruff check .

# Quick runs of every benchmark (docs/benchmarks.md gives the full-length commands and the figures measured).
bench: setup
	$(PY) bench/telemetry.py --seconds 5
	$(PY) bench/interlock.py --trips 20
	$(PY) bench/recording.py --seconds 10 --hours 0.25
	QT_QPA_PLATFORM=offscreen $(PY) bench/gui.py --seconds 3

# A menu entry and icon for this user (freedesktop.org places: XDG_DATA_HOME, default ~/.local/share). It starts
# `cicatrix run` from this clone's .venv; set CICATRIX=/path/to/cicatrix for an installed copy instead.
XDG_DATA_HOME ?= $(HOME)/.local/share
CICATRIX ?= $(abspath $(VENV))/bin/cicatrix
DESKTOP_FILE := $(XDG_DATA_HOME)/applications/cicatrix.desktop
ICON_FILE := $(XDG_DATA_HOME)/icons/hicolor/scalable/apps/cicatrix.svg

# Only the clone's own copy needs `setup`; an installed copy given as CICATRIX=... leaves this clone's .venv alone.
install-desktop: $(if $(filter file,$(origin CICATRIX)),setup)
	@test -x "$(CICATRIX)" || { echo "$(CICATRIX) is not an executable; set CICATRIX=/path/to/cicatrix"; exit 1; }
	install -D -m 644 workstation/resources/cicatrix.svg "$(ICON_FILE)"
	mkdir -p "$(dir $(DESKTOP_FILE))"
	sed 's|@EXEC@|"$(CICATRIX)"|' workstation/resources/cicatrix.desktop.in > "$(DESKTOP_FILE)"
	@if command -v desktop-file-validate >/dev/null; then desktop-file-validate "$(DESKTOP_FILE)"; fi
	@if command -v update-desktop-database >/dev/null; then update-desktop-database -q "$(dir $(DESKTOP_FILE))"; fi
	@echo "Cicatrix is in the applications menu ($(DESKTOP_FILE))."

uninstall-desktop:
	rm -f "$(DESKTOP_FILE)" "$(ICON_FILE)"

clean:
	rm -rf $(VENV) build *.egg-info
