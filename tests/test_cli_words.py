"""A fresh tester's words (F9–F11): a typed value is shown as the terminal shows it, never as Python's repr
('caf\\udce9'); a text that is not UTF-8 is named when refused; a report's folder is checked before Qt is asked, and
Qt's own warnings stay off the terminal; counts agree with their nouns ("1 pass"); `run --simulate --store FILE`
keeps the training store in FILE."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from helpers_load import LOAD_TRIPS

from workstation.terminal import quoted

ROOT = Path(__file__).resolve().parents[1]
XDG_VARS = ("XDG_DATA_HOME", "XDG_CONFIG_HOME", "XDG_STATE_HOME", "XDG_CACHE_HOME")


def _cli(tmp_path: Path, *args: str | bytes, stdin: bytes | None = None) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONIOENCODING": "utf-8", "HOME": str(tmp_path / "home"), "QT_QPA_PLATFORM": "offscreen"}
    env.update({var: str(tmp_path / var.lower()) for var in XDG_VARS})
    argv = [os.fsencode(sys.executable), os.fsencode(ROOT / "main.py"), b"--log-dir", os.fsencode(tmp_path / "logs"),
            *(a if isinstance(a, bytes) else os.fsencode(a) for a in args)]
    return subprocess.run(argv, capture_output=True, timeout=180, env=env, cwd=ROOT, input=stdin)


def _no_escape(out: bytes) -> str:
    text = out.decode("utf-8")
    assert "\\udc" not in text and "\\x1b" not in text and "QPainter" not in text, text[-1500:]
    return text


# ---- F9a: a typed value in a message -----------------------------------------------------------------------------

def test_quoted_shows_a_value_as_the_terminal_does():
    assert quoted("caf\udce9") == "'caf?'"
    assert quoted("it's\x1b[2J\nx") == "'it's [2J x'"  # one line, no control, no repr quoting rules
    assert quoted(1.5) == "1.5" and quoted(["caf\udce9"]) == "['caf?']"


def test_a_typed_account_that_is_not_utf8_is_shown_with_a_question_mark(tmp_path):
    done = _cli(tmp_path, "operators", "add", b"caf\xe9\x1b[2J", "--role", "administrator", "--name", "x",
                "--password-stdin", "--store", str(tmp_path / "clinic.sqlite3"), stdin=b"a-long-enough-password-1\n")
    err = _no_escape(done.stderr)
    assert done.returncode == 2 and "Account 'caf? [2J' is not valid" in err, err


# ---- F9b: a text that is not UTF-8, refused by the store ---------------------------------------------------------

def test_a_text_that_is_not_utf8_is_named_when_the_store_refuses_it(tmp_path):
    record = os.fsencode(tmp_path) + b"/rec\xe9"
    done = _cli(tmp_path, "session", "--simulate", "--scenario", "pih-gentle-needling", "--store",
                str(tmp_path / "train.sqlite3"), "--record", record)
    err = _no_escape(done.stderr)
    assert done.returncode == 2 and "not UTF-8" in err, err
    assert f"The text '{tmp_path}/rec?'" in err and "internal error" not in err, err


# ---- F9c: the report's folder -------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def recording(tmp_path_factory) -> tuple[Path, Path]:
    """(the user folders it was made with: the report checks its signature with their key, the recording)."""
    base = tmp_path_factory.mktemp("report")
    for attempt in range(3):  # made again while a load trip stopped it (helpers_load: a rerun would reuse it)
        rec = base / f"rec-{attempt}"
        done = _cli(base, "session", "--simulate", "--scenario", "pih-gentle-needling", "--record", str(rec))
        if not any(words.encode() in done.stdout for words in LOAD_TRIPS):
            break
    assert done.returncode == 0, done.stderr.decode()[-1500:]
    (path,) = rec.glob("*/*.h5")
    return base, path


def test_a_report_into_a_missing_folder_is_refused_in_one_sentence(recording, tmp_path):
    out = os.fsencode(tmp_path) + b"/nonexist\xe9/x.pdf"
    done = _cli(recording[0], "report", str(recording[1]), "--out", out)
    err = _no_escape(done.stdout + done.stderr)
    assert done.returncode == 2, err
    assert err.count(f"{tmp_path}/nonexist?") == 1 and "does not exist" in err and "cannot write" not in err, err
    assert not os.path.exists(os.fsencode(tmp_path) + b"/nonexist\xe9")


def test_a_report_into_a_folder_whose_name_is_not_utf8_is_written(recording, tmp_path):
    folder = os.fsencode(tmp_path) + b"/caf\xe9"
    os.mkdir(folder)
    done = _cli(recording[0], "report", str(recording[1]), "--out", folder + b"/x.pdf")
    text = _no_escape(done.stdout + done.stderr)
    assert done.returncode == 0 and f"report written: {tmp_path}/caf?/x.pdf" in text, text
    with open(folder + b"/x.pdf", "rb") as f:
        assert f.read(5) == b"%PDF-"


# ---- F10: counts --------------------------------------------------------------------------------------------------

def test_an_interrupted_needling_step_says_1_pass(tmp_path):
    scenario = (ROOT / "seeds" / "scenarios" / "unplug-replug-resume.toml").read_text()
    scenario = scenario.split("[[events]]")[0].replace('expect = "completed"', 'expect = "aborted"')
    path = tmp_path / "unplugged.toml"
    path.write_text(scenario + '[[events]]\nat_s = 0.5\naction = "unplug"\ndevice = "pen"\n')
    done = _cli(tmp_path, "session", "--simulate", "--scenario", str(path))
    out = done.stdout.decode()
    assert "area 1 needling: interrupted, 1 pass\n" in out, out[-2000:]
    assert "1 passes" not in out and "1 steps" not in out, out[-2000:]


# ---- F11: run --simulate --store FILE -----------------------------------------------------------------------------

def test_run_simulate_refuses_a_store_url_in_words(tmp_path):
    done = _cli(tmp_path, "run", "--simulate", "--store", "postgresql+psycopg://dr@server/clinic",
                "--exit-after-first-show")
    err = _no_escape(done.stderr)
    assert done.returncode == 2 and "training store FILE, not a URL" in err, err


def test_run_simulate_keeps_the_training_store_in_the_file_given(qtbot, user_folders, tmp_path, capsys):
    from PyQt6.QtWidgets import QApplication

    from main import main
    from workstation.settings import load_settings
    from workstation.ui.main_window import MainWindow

    train = tmp_path / "train.sqlite3"
    before = QApplication.topLevelWidgets()
    assert main(["run", "--simulate", "--store", str(train), "--exit-after-first-show"]) == 0
    (win,) = [w for w in QApplication.topLevelWidgets() if isinstance(w, MainWindow) and
              not any(w is old for old in before)]
    qtbot.addWidget(win)
    assert win.controller.store_path == train  # the simulation's training store
    assert win.controller.places.clinic_store == load_settings(None)["paths.store"] != train  # clinic: unchanged
    assert '"first_show_monotonic_s"' in capsys.readouterr().out
