"""The log an engineer reads: the command, every state change, interlock and device command of a session; a Python
error's trace; a hard crash's trace from faulthandler; background failures at WARNING. Never a patient's identity."""

from __future__ import annotations

import logging
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import workstation.cli_protocols
from main import main
from workstation import places

ROOT = Path(__file__).resolve().parents[1]


def _log_text() -> str:
    from workstation.logsetup import stop_logging

    stop_logging()  # the listener thread writes what is queued
    return (places.log_dir() / "cicatrix.log").read_text(encoding="utf-8")


def test_log_after_an_interlocked_session(tmp_path, capsys):
    assert main(["session", "--simulate", "--scenario", "contact-lost-mid-exposure", "--record", str(tmp_path)]) == 3
    log = _log_text()
    assert f"command: session --simulate --scenario contact-lost-mid-exposure --record {tmp_path}" in log
    for expected in ("session idle → connected", "session armed → treating",
                     "WARNING light-reader workstation.events: interlock high safety: INTERLOCK contact_lost on light",
                     "command light stop", "session treating → aborted", "command ended with exit status 3"):
        assert expected in log, expected
    assert "contact interlock on the uv light" in capsys.readouterr().out.lower()  # the user saw the same trip, in words


def test_a_refused_command_is_logged_with_its_sentence(tmp_path, capsys):
    assert main(["session", "--simulate", "--scenario", "combined-uneventful", "--record", str(tmp_path / "x.h5")]) == 2
    err = capsys.readouterr().err
    assert err.count("--record takes a folder, not a file name") == 1  # said once on stderr, not twice
    assert not (tmp_path / "x.h5").exists()
    assert "refused (exit 2): --record takes a folder, not a file name" in _log_text()


def test_an_internal_error_leaves_its_trace_in_the_log_not_in_tmp(monkeypatch, capsys):
    def broken(args):
        raise RuntimeError("simulated defect")

    monkeypatch.setattr(workstation.cli_protocols, "_check", broken)
    assert main(["protocols", "check"]) == 1
    err = capsys.readouterr().err
    log_file = places.log_dir() / "cicatrix.log"
    assert f"details were saved to {log_file}" in err and "Traceback" not in err
    log = _log_text()
    assert "ERROR" in log and "internal error" in log and "RuntimeError: simulated defect" in log
    assert 'in broken\n    raise RuntimeError("simulated defect")' in log


def test_a_hard_crash_leaves_a_faulthandler_trace(tmp_path):
    """A segfault kills the interpreter: no Python handler runs, only faulthandler writes (into the log folder)."""
    env = os.environ | {"XDG_STATE_HOME": str(tmp_path / "state")}
    proc = subprocess.Popen([sys.executable, str(ROOT / "main.py"), "emulate", "light"], cwd=tmp_path, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        line = proc.stdout.readline()  # the emulator prints its port once it is serving
        assert line, proc.stderr.read()
        time.sleep(0.2)
        os.kill(proc.pid, signal.SIGSEGV)
        proc.wait(timeout=20)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == -signal.SIGSEGV
    folder = tmp_path / "state" / "cicatrix" / "log"
    crash = (folder / "crash.log").read_text()
    assert "Fatal Python error: Segmentation fault" in crash
    assert "most recent call first" in crash and "main.py" in crash
    assert "command: emulate light" in (folder / "cicatrix.log").read_text()


def test_background_task_failure_is_a_warning(qtbot, caplog):
    from workstation.ui.bus_bridge import Tasks

    tasks = Tasks("test-worker")
    errors: list[Exception] = []
    with caplog.at_level(logging.WARNING, logger="workstation.ui.bus_bridge"):
        tasks.run(lambda: 1 / 0, lambda _: None, errors.append)
        qtbot.waitUntil(lambda: bool(errors), timeout=3000)
    tasks.shutdown()
    (record,) = [r for r in caplog.records if r.message == "background task failed"]
    assert record.levelno == logging.WARNING and record.exc_info[0] is ZeroDivisionError


def test_log_dir_option_and_an_uncaught_exception_in_a_thread(tmp_path, capsys):
    import threading

    from workstation.logsetup import configure_logging, current_log_file, stop_logging

    assert main(["--log-dir", str(tmp_path / "logs"), "settings"]) == 0
    assert current_log_file() == tmp_path / "logs" / "cicatrix.log"
    assert f"log file: {tmp_path / 'logs' / 'cicatrix.log'}" in capsys.readouterr().out
    configure_logging(tmp_path / "logs")

    def dies() -> None:
        raise ValueError("a defect in a background thread")

    t = threading.Thread(target=dies, name="worker-x")
    t.start()
    t.join()
    stop_logging()
    text = (tmp_path / "logs" / "cicatrix.log").read_text()
    assert "thread worker-x ended by an uncaught exception" in text and "ValueError: a defect" in text


def test_an_unwritable_log_folder_is_a_sentence_and_the_command_still_runs(tmp_path, capsys):
    blocker = tmp_path / "file"
    blocker.write_text("a file where the log folder should be")
    assert main(["--log-dir", str(blocker / "logs"), "settings"]) == 0
    captured = capsys.readouterr()
    assert "cannot be written" in captured.err and "nothing is logged to a file" in captured.err
    assert "log file: none: the log folder is not writable" in captured.out
