"""Installed the way a clinic's IT installs it: build the wheel, install it into a fresh venv in a temporary folder,
and run the `cicatrix` command from another folder, with nothing of the repository on the path."""

from __future__ import annotations

import os
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def _run(cmd: list[str], cwd: Path, env: dict[str, str], timeout: float = 600) -> subprocess.CompletedProcess:
    result = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout)
    assert result.returncode == 0, f"{cmd} exited {result.returncode}\n{result.stdout}\n{result.stderr}"
    return result


def _repo_packages() -> set[str]:
    found = {"workstation.seeds"}
    for top in ("workstation", "drivers"):
        for init in (ROOT / top).rglob("__init__.py"):
            found.add(".".join(init.parent.relative_to(ROOT).parts))
    return found


@pytest.mark.slow
def test_wheel_installs_and_runs_from_any_folder(tmp_path):
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTHON", "VIRTUAL_ENV"))}
    env |= {"QT_QPA_PLATFORM": "offscreen", "XDG_DATA_HOME": str(tmp_path / "data"),
            "XDG_CONFIG_HOME": str(tmp_path / "config"), "XDG_STATE_HOME": str(tmp_path / "state")}
    wheels = tmp_path / "wheels"
    _run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--quiet", "-w", str(wheels), str(ROOT)], tmp_path, env)
    (wheel,) = wheels.glob("cicatrix-*.whl")

    with zipfile.ZipFile(wheel) as z:
        names = set(z.namelist())
        top_level = z.read(next(n for n in names if n.endswith(".dist-info/top_level.txt"))).decode().split()
    assert sorted(top_level) == ["drivers", "workstation"]  # no `main` (nor anything else) at top level
    packages = {n.rsplit("/", 1)[0].replace("/", ".") for n in names if n.endswith("/__init__.py")}
    assert _repo_packages() <= packages, f"missing from the wheel (list them in pyproject.toml): " \
                                         f"{_repo_packages() - packages}"
    seeds = {p.relative_to(ROOT / "seeds").as_posix() for p in (ROOT / "seeds").rglob("*.toml")}
    assert seeds and {f"workstation/seeds/{s}" for s in seeds} <= names
    alembic = {p.relative_to(ROOT).as_posix() for p in (ROOT / "workstation" / "store" / "alembic").rglob("*")
               if p.is_file() and "__pycache__" not in p.parts}
    assert {"workstation/store/alembic/env.py", "workstation/store/alembic/script.py.mako"} <= alembic <= names

    venv = tmp_path / "venv"
    _run([sys.executable, "-m", "venv", str(venv)], tmp_path, env)
    py, cicatrix = venv / "bin" / "python", venv / "bin" / "cicatrix"
    _run([str(py), "-m", "pip", "install", "--quiet", "-c", str(ROOT / "constraints.txt"), str(wheel)], tmp_path, env,
         timeout=900)

    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    version = _run([str(cicatrix), "--version"], elsewhere, env).stdout
    assert version.split() == ["cicatrix", "0.1.0"]
    no_main = subprocess.run([str(py), "-P", "-c", "import main"], cwd=elsewhere, env=env, capture_output=True)
    assert no_main.returncode != 0 and b"No module named 'main'" in no_main.stderr
    check = _run([str(cicatrix), "protocols", "check"], elsewhere, env).stdout
    assert "tables ok" in check and "0 errors" in check
    assert f"factory library: {venv}" in check  # read from site-packages, not from the repository
    session = _run([str(cicatrix), "session", "--simulate", "--scenario", "combined-uneventful"], elsewhere, env)
    assert "outcome: completed, as expected; exit code 0" in session.stdout
    recordings = list((tmp_path / "data" / "cicatrix" / "training-recordings").rglob("*.h5"))
    assert len(recordings) == 1 and not list(elsewhere.iterdir())  # nothing written in the current folder
    log = (tmp_path / "state" / "cicatrix" / "log" / "cicatrix.log").read_text()
    assert "command: session --simulate --scenario combined-uneventful" in log
