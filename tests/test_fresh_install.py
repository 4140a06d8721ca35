"""What a fresh tester (an installed copy, a fresh venv, user folders in /tmp) found, each checked through a real
process where it is about the command line: the command named in messages is the one the user ran, a closed output
pipe ends quietly, no display is one sentence, scenarios resolve the same way for every command, refused clinic
protocols are said in the window and the log, settings and log-folder mistakes are sentences, crash.log says when and
what, and the window fits a small screen."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from workstation import places
from workstation.errors import UserError
from workstation.protocols.library import seeds_dir
from workstation.session.scenario import ScenarioError, resolve_scenario
from workstation.settings import load_settings

ROOT = Path(__file__).resolve().parents[1]
CONSOLE_SCRIPT = Path(sys.executable).parent / "cicatrix"


def cli(*args: str, cwd: Path, env: dict | None = None, launcher: str = "main.py",
        timeout: float = 60) -> subprocess.CompletedProcess:
    """Run the program as a user does: `python main.py ARGS` (a clone) or the installed `cicatrix ARGS`."""
    head = [sys.executable, str(ROOT / "main.py")] if launcher == "main.py" else [str(CONSOLE_SCRIPT)]
    return subprocess.run([*head, *args], cwd=cwd, env=env or dict(os.environ), capture_output=True, text=True,
                          timeout=timeout)


# ---- 8: the command named in messages --------------------------------------------------------------------------
@pytest.mark.skipif(not CONSOLE_SCRIPT.exists(), reason="the console script is installed by `make setup`")
def test_messages_name_the_command_the_user_ran(tmp_path):
    bad = tmp_path / "bad.toml"
    bad.write_text("[paths\n")
    installed = cli("--settings", str(bad), "settings", cwd=tmp_path, launcher="cicatrix")
    assert installed.returncode == 2
    assert "(`cicatrix settings` checks it)" in installed.stderr and "main.py" not in installed.stderr
    clone = cli("--settings", str(bad), "settings", cwd=tmp_path)
    assert clone.returncode == 2 and "(`python main.py settings` checks it)" in clone.stderr


def test_no_user_facing_text_names_main_py_or_a_docs_file():
    """String literals (not docstrings or comments) in the package never name main.py or docs/ (not installed);
    messages use workstation.progname.command. Left to their owners: the files listed."""
    import ast

    # progname.py is the one place that knows the launcher's name
    left_to_owners = {"workstation/progname.py"}
    found = []
    for path in sorted((ROOT / "workstation").rglob("*.py")):
        rel = path.relative_to(ROOT).as_posix()
        if rel in left_to_owners:
            continue
        tree = ast.parse(path.read_text(encoding="utf-8"))
        docstrings = {id(n.body[0].value) for n in ast.walk(tree)
                      if isinstance(n, (ast.Module, ast.FunctionDef, ast.ClassDef, ast.AsyncFunctionDef))
                      and n.body and isinstance(n.body[0], ast.Expr) and isinstance(n.body[0].value, ast.Constant)}
        for node in ast.walk(tree):
            if (isinstance(node, ast.Constant) and isinstance(node.value, str) and id(node) not in docstrings
                    and ("main.py" in node.value or "docs/" in node.value)):
                found.append(f"{rel}:{node.lineno}: {node.value[:60]!r}")
    assert found == []


# ---- 10: a closed output pipe ----------------------------------------------------------------------------------
def test_a_closed_output_pipe_ends_quietly(tmp_path):
    proc = subprocess.Popen([sys.executable, str(ROOT / "main.py"), "settings"], cwd=tmp_path,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    proc.stdout.close()  # `| head -0`: the reader is gone before anything is written
    err = proc.stderr.read()
    assert proc.wait(timeout=60) == 141, err
    assert "internal error" not in err and "Traceback" not in err and "BrokenPipe" not in err


# ---- 7: no display ---------------------------------------------------------------------------------------------
@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="the display check is Linux's")
def test_run_without_a_display_is_one_sentence(tmp_path):
    env = {k: v for k, v in os.environ.items() if k not in ("DISPLAY", "WAYLAND_DISPLAY", "QT_QPA_PLATFORM")}
    done = cli("run", cwd=tmp_path, env=env)
    assert done.returncode == 2
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and "no display" in lines[0] and "QT_QPA_PLATFORM=offscreen" in lines[0]
    assert "Reinstalling" not in done.stderr and "xcb" not in done.stderr


# ---- 9: one scenario resolver ----------------------------------------------------------------------------------
def test_scenarios_resolve_by_path_name_or_name_toml(tmp_path, monkeypatch):
    packaged = seeds_dir() / "scenarios" / "combined-uneventful.toml"
    monkeypatch.chdir(tmp_path)
    assert resolve_scenario("combined-uneventful") == packaged
    assert resolve_scenario(Path("combined-uneventful.toml")) == packaged
    assert resolve_scenario(packaged) == packaged
    with pytest.raises(ScenarioError, match="is a folder, not a scenario file"):
        resolve_scenario(tmp_path)
    with pytest.raises(ScenarioError, match="no packaged scenario of that name .packaged: .*combined-uneventful"):
        resolve_scenario("combined-eventful")
    with pytest.raises(ScenarioError, match="The scenario file .* does not exist"):
        resolve_scenario(tmp_path / "x" / "combined-uneventful.toml")  # a path is a path, not a name


def test_run_and_session_take_the_same_scenario_names(tmp_path):
    for command in (["run"], ["session", "--simulate"]):
        folder = cli(*command, "--scenario", str(tmp_path), cwd=tmp_path)
        assert folder.returncode == 2 and "is a folder, not a scenario file" in folder.stderr, folder.stderr
        typo = cli(*command, "--scenario", "combined-uneventfull", cwd=tmp_path)
        assert typo.returncode == 2 and "packaged: " in typo.stderr, typo.stderr
    session = cli("session", "--simulate", "--scenario", "combined-uneventful.toml", "--record",
                  str(tmp_path / "rec"), cwd=tmp_path, timeout=120)
    # accepted: the session ran (its own outcome, 0 or an interlock on a loaded machine, is test_session's business)
    assert session.returncode != 2 and "scenario" not in session.stderr, session.stderr
    env = os.environ | {"QT_QPA_PLATFORM": "offscreen"}
    run = cli("run", "--scenario", "combined-uneventful", "--exit-after-first-show", cwd=tmp_path, env=env,
              timeout=120)
    assert run.returncode == 0, run.stderr
    assert "first_paint" in run.stdout or run.stdout.strip().startswith("{")


# ---- 6: refused clinic protocols -------------------------------------------------------------------------------
def test_refused_clinic_protocols_are_said_in_the_window_and_the_log(tmp_path):
    folder = tmp_path / "clinic-protocols"
    folder.mkdir()
    (folder / "bad.toml").write_text('id = "x"\nversion = "one"\n')
    (folder / "broken.toml").write_text("[light\n")
    env = os.environ | {"QT_QPA_PLATFORM": "offscreen"}
    done = cli("run", "--protocols", str(folder), "--exit-after-first-show", cwd=tmp_path, env=env, timeout=120)
    assert done.returncode == 0, done.stderr
    log = (places.log_dir() / "cicatrix.log").read_text()
    expected = f"2 clinic protocol files in {folder} (command line --protocols) were refused"
    window_lines = [ln for ln in log.splitlines() if "window warning: " in ln and expected in ln]
    assert len(window_lines) == 1, log  # the window's message area showed it (notify logs what it shows)
    assert "bad.toml, broken.toml" in window_lines[0]
    assert f"“python main.py protocols check {folder}” says why" in window_lines[0]  # no backticks on screen
    assert "WARNING" not in done.stderr  # the terminal gets no logger lines


# ---- 11: settings and log-folder mistakes ----------------------------------------------------------------------
def test_settings_mistakes_are_named(tmp_path, monkeypatch):
    f = tmp_path / "cicatrix.toml"
    f.write_text('[paths]\nstore = ""\n')
    with pytest.raises(UserError, match=r"paths.store: is empty; give a path in quotes, or remove the line"):
        load_settings(f)
    f.write_bytes(b"\xef\xbb\xbf[paths]\nstore = 'rel/clinic.sqlite3'\n")  # saved by a Windows editor
    assert load_settings(f)["paths.store"] == tmp_path / "rel" / "clinic.sqlite3"
    monkeypatch.chdir(tmp_path)
    relative = load_settings(Path("cicatrix.toml"))["paths.store"]
    assert relative.is_absolute() and relative == tmp_path / "rel" / "clinic.sqlite3"
    f.write_bytes(b"[paths]\nstore = '\xe9'\n")
    with pytest.raises(UserError, match="is not UTF-8 text"):
        load_settings(f)
    with pytest.raises(UserError, match="is a folder, not a settings file"):
        load_settings(tmp_path)


def test_protocols_check_says_where_a_bad_folder_came_from(tmp_path):
    settings = tmp_path / "s.toml"
    settings.write_text(f"[paths]\nprotocols = '{tmp_path / 'nowhere'}'\n")
    done = cli("--settings", str(settings), "protocols", "check", cwd=tmp_path)
    assert done.returncode == 2
    assert f"({'paths.protocols of the settings file ' + str(settings)}) does not exist" in done.stderr


def test_a_log_dir_that_is_a_file_is_named_so(tmp_path):
    file = tmp_path / "logs"
    file.write_text("not a folder")
    done = cli("--log-dir", str(file), "settings", cwd=tmp_path)
    assert done.returncode == 0
    assert f"the log folder {file} cannot be written (it is a file, not a folder)" in done.stderr


# ---- 13: crash.log ---------------------------------------------------------------------------------------------
def test_crash_log_says_when_and_what_and_the_next_start_notes_it(tmp_path):
    proc = subprocess.Popen([sys.executable, str(ROOT / "main.py"), "emulate", "light"], cwd=tmp_path,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert proc.stdout.readline(), proc.stderr.read()
        time.sleep(0.2)
        os.kill(proc.pid, signal.SIGSEGV)
        proc.wait(timeout=20)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    crash = (places.log_dir() / "crash.log").read_text()
    header = next(ln for ln in crash.splitlines() if ln.startswith("=== cicatrix started "))
    assert f"pid {proc.pid}: main.py emulate light" in header and "T" in header.split()[3]
    assert "Fatal Python error: Segmentation fault" in crash
    assert cli("settings", cwd=tmp_path).returncode == 0
    log = (places.log_dir() / "cicatrix.log").read_text()
    assert log.count("a hard crash was recorded since the last start") == 1
    note = next(ln for ln in log.splitlines() if "a hard crash was recorded since the last start" in ln)
    assert "Fatal Python error: Segmentation fault" in note and f"pid {proc.pid}: main.py emulate light" in note
    assert cli("settings", cwd=tmp_path).returncode == 0  # noted once, not at every start
    assert (places.log_dir() / "cicatrix.log").read_text().count("a hard crash was recorded") == 1


def test_crash_log_is_rotated_at_start_when_large(tmp_path):
    from workstation.logsetup import CRASH_MAX_BYTES

    folder = places.log_dir()
    folder.mkdir(parents=True)
    (folder / "crash.log").write_text("x" * (CRASH_MAX_BYTES + 1))
    assert cli("settings", cwd=tmp_path).returncode == 0
    assert (folder / "crash.log.1").stat().st_size == CRASH_MAX_BYTES + 1
    assert (folder / "crash.log").stat().st_size < 1000


# ---- the window fits a small screen ----------------------------------------------------------------------------
FIT = """
import json, sys, tempfile
from pathlib import Path
from PyQt6.QtWidgets import QApplication
from workstation.ui.main_window import MainWindow
app = QApplication(sys.argv[:1])
avail = app.primaryScreen().availableGeometry()
w = MainWindow(recordings_dir=Path(tempfile.mkdtemp()))
w.show()
app.processEvents()
out = {"avail": [avail.width(), avail.height()], "pages": {}}
for page in (w.start_page, w.patient, w.plan_view, w.treatment, w.after, w.replay):
    w.show_page(page)
    app.processEvents()
    g = w.frameGeometry()
    out["pages"][type(page).__name__] = avail.contains(g)
b = w.plan_view.start_button
w.show_page(w.plan_view)
app.processEvents()
top_left = b.mapToGlobal(b.rect().topLeft())
bottom_right = b.mapToGlobal(b.rect().bottomRight())
out["start_button"] = avail.contains(top_left) and avail.contains(bottom_right)
print(json.dumps(out))
"""


def test_the_window_fits_a_1280x800_screen(tmp_path):
    config = tmp_path / "screen.json"
    config.write_text(json.dumps({"screens": [{"name": "small", "x": 0, "y": 0, "width": 1280, "height": 800,
                                               "logicalDpi": 96, "logicalBaseDpi": 96, "dpr": 1}]}))
    env = os.environ | {"QT_QPA_PLATFORM": f"offscreen:configfile={config}", "PYTHONPATH": str(ROOT)}
    done = subprocess.run([sys.executable, "-c", FIT], cwd=tmp_path, env=env, capture_output=True, text=True,
                          timeout=120)
    assert done.returncode == 0, done.stderr
    out = json.loads(done.stdout.strip().splitlines()[-1])
    assert out["avail"] == [1280, 800]
    assert out["pages"] == dict.fromkeys(out["pages"], True) and len(out["pages"]) == 6
    assert out["start_button"]


# ---- 12: the start page's replay folder ------------------------------------------------------------------------
def test_start_page_replay_uses_the_recordings_folder_in_force(qtbot, tmp_path):
    from workstation.ui.main_window import MainWindow

    folder = tmp_path / "clinic-recordings"
    folder.mkdir()
    win = MainWindow(recordings_dir=folder)
    qtbot.addWidget(win)
    assert win.start_page.browse_folder() == folder
    assert win.start_page.replay_path.placeholderText().startswith(f"{folder}/")
    gone = MainWindow(recordings_dir=tmp_path / "not-yet")
    qtbot.addWidget(gone)
    assert gone.start_page.browse_folder() == Path.home()
