"""`make install-desktop` puts a menu entry and an icon in the user's freedesktop.org folders; the entry starts the
workstation window with this clone's `cicatrix`."""

from __future__ import annotations

import configparser
import os
import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.skipif(shutil.which("make") is None, reason="make is not installed (CI installs it)")
def test_install_desktop_writes_a_valid_entry_and_icon(tmp_path):
    env = os.environ | {"XDG_DATA_HOME": str(tmp_path)}
    done = subprocess.run(["make", "-s", "install-desktop"], cwd=ROOT, env=env, capture_output=True, text=True,
                          timeout=600)
    assert done.returncode == 0, done.stdout + done.stderr
    icon = tmp_path / "icons" / "hicolor" / "scalable" / "apps" / "cicatrix.svg"
    assert icon.read_text().lstrip().startswith("<svg")
    entry = configparser.ConfigParser(interpolation=None)
    entry.optionxform = str  # keys are case-sensitive
    entry.read(tmp_path / "applications" / "cicatrix.desktop")
    d = entry["Desktop Entry"]
    assert d["Type"] == "Application" and d["Name"] == "Cicatrix" and d["Icon"] == "cicatrix"
    assert d["Terminal"] == "false" and d["Categories"].endswith(";")
    program, command = d["Exec"].rsplit(" ", 1)
    program = program.strip('"')
    assert command == "run" and Path(program).is_absolute()
    version = subprocess.run([program, "--version"], capture_output=True, text=True, timeout=60, cwd=tmp_path)
    assert version.returncode == 0 and version.stdout.startswith("cicatrix ")
    subprocess.run(["make", "-s", "uninstall-desktop"], cwd=ROOT, env=env, check=True, timeout=60)
    assert not icon.exists() and not (tmp_path / "applications" / "cicatrix.desktop").exists()


@pytest.mark.skipif(shutil.which("make") is None, reason="make is not installed (CI installs it)")
def test_install_desktop_for_an_installed_copy_leaves_the_clone_alone(tmp_path):
    """CICATRIX=/path/to/installed/cicatrix: nothing of the clone's .venv is built (make -B would redo `setup`)."""
    installed = tmp_path / "cicatrix"
    installed.write_text("#!/bin/sh\necho cicatrix 0\n")
    installed.chmod(0o755)
    for env_or_arg in ({"CICATRIX": str(installed)}, {}):
        args = [] if env_or_arg else [f"CICATRIX={installed}"]
        plan = subprocess.run(["make", "-n", "-B", "install-desktop", *args], cwd=ROOT, capture_output=True,
                              text=True, env=os.environ | env_or_arg | {"XDG_DATA_HOME": str(tmp_path)}, timeout=60)
        assert plan.returncode == 0, plan.stderr
        assert "pip install" not in plan.stdout and str(installed) in plan.stdout
    clone = subprocess.run(["make", "-n", "-B", "install-desktop"], cwd=ROOT, capture_output=True, text=True,
                           env=os.environ | {"XDG_DATA_HOME": str(tmp_path)}, timeout=60)
    assert "pip install" in clone.stdout  # the clone's own copy is set up first
