"""A signal that arrives while a library is cleaning up ends the run as the signal, never as "an internal error".

A headless run's SIGTERM (and Ctrl+C) raises its exception at whatever line the main thread is on. Inside
SQLAlchemy's commit, the commit's own `finally` then raised an AssertionError in its place, and the run ended
"error: an internal error stopped the command", exit 1 instead of 143 (tenth session, a loaded run of
`test_a_signal_while_planning_says_not_started`; found again at will by sending the signal at every line of a run:
`tests/signal_inject.py`). The signal is now found behind whatever replaced it (`workstation.errors.signal_behind`).

Real subprocesses, each signalled at one chosen line inside SQLAlchemy's commit, before and during the treatment."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest
from helpers_load import with_internal_error
from test_recovery_signals import _scenario_without_crash

from workstation.errors import Terminated, signal_behind
from workstation.recording.format import checksum_path
from workstation.recording.summary import check_checksum
from workstation.store import ClinicStore

ROOT = Path(__file__).resolve().parents[1]
IN_A_COMMIT = "_deactivate_from_connection"  # SQLAlchemy's, called from Transaction.commit's try (its finally asserts)


def _run_signalled(tmp_path: Path, signum: int, after: str = "", at: str = IN_A_COMMIT
                   ) -> tuple[subprocess.CompletedProcess, Path]:
    store = tmp_path / "training.sqlite3"
    with ClinicStore.open(store, training=True):
        pass
    env = {**os.environ, "INJECT_AT": at, "INJECT_AFTER": after, "INJECT_SIGNAL": str(int(signum))}
    cmd = [sys.executable, str(ROOT / "tests" / "signal_inject.py"), "session", "--simulate", "--scenario",
           str(_scenario_without_crash(tmp_path)), "--record", str(tmp_path / "rec"), "--store", str(store)]
    done = subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT, env=env, timeout=180)
    assert f"INJECTED {at}" in done.stderr, done.stdout + done.stderr  # the signal came where meant
    return done, store


@pytest.mark.parametrize(("signum", "code", "cause"), [
    (signal.SIGTERM, 143, "terminated by a signal (SIGTERM)"),
    (signal.SIGINT, 130, "interrupted (Ctrl+C)"),
])
def test_a_signal_inside_the_stores_commit_while_planning_says_not_started(tmp_path: Path, signum: int, code: int,
                                                                          cause: str) -> None:
    """The first commit after the handler is set is the store's, while the visit is planned."""
    done, store = _run_signalled(tmp_path, signum)
    shown = with_internal_error(done.stdout + done.stderr)
    assert done.returncode == code, shown
    assert done.stdout.splitlines() == [f"outcome: not started ({cause}); exit code {code}"], shown
    assert "internal error" not in done.stderr and "Traceback" not in done.stderr, shown
    with sqlite3.connect(store) as c:
        assert c.execute("SELECT count(*) FROM sessions").fetchone() == (0,)
    assert not list((tmp_path / "rec").rglob("*.h5"))


def test_a_sigterm_inside_a_commit_mid_session_ends_saved_with_its_cause(tmp_path: Path) -> None:
    """The first commit after the step is journalled: the summary with the signal as its cause (not "Ctrl+C": the
    words came from the exception that replaced the signal's), exit 143, the recording closed with its checksum and
    linked, the store's row closed with the same cause."""
    done, store = _run_signalled(tmp_path, signal.SIGTERM, after="journal_steps")
    out, shown = done.stdout, with_internal_error(done.stdout + done.stderr)  # a load trip's words for the rerun rule
    assert done.returncode == 143, shown
    assert "internal error" not in done.stderr and "Traceback" not in done.stderr, shown
    assert out.splitlines()[-1] == ("outcome: completed (every step done), then terminated by a signal (SIGTERM), "
                                    "before the session was ended; exit code 143"), shown  # not "stopped early"
    assert "Ctrl+C" not in out, shown
    (recording,) = (tmp_path / "rec").rglob("*.h5")
    assert checksum_path(recording).exists() and check_checksum(recording).intact, shown
    with sqlite3.connect(store) as c:
        (state, note, path), = c.execute("SELECT state, outcome_note, recording_path FROM sessions").fetchall()
    assert state in ("completed", "partial", "aborted"), shown
    assert note.startswith("terminated by a signal (SIGTERM)"), f"{note}\n{shown}"
    assert Path(path) == recording, shown


def _replaced(signal_exc: BaseException) -> AssertionError:
    try:
        try:
            raise signal_exc
        except BaseException:
            raise AssertionError  # noqa: B904 - as a library's finally does, no `from`
    except AssertionError as exc:
        return exc


def test_the_signal_is_found_behind_what_replaced_it_and_nothing_else_is_taken_for_one() -> None:
    term = Terminated(143)
    assert signal_behind(term) is term
    assert signal_behind(_replaced(term)) is term
    ctrl_c = KeyboardInterrupt()
    assert signal_behind(_replaced(ctrl_c)) is ctrl_c
    assert signal_behind(_replaced(SystemExit(2))) is None  # an exit asked for is not a signal
    assert signal_behind(AssertionError("a defect")) is None  # a defect stays "an internal error"
    a, b = ValueError("a"), ValueError("b")
    a.__context__, b.__context__ = b, a  # a cycle ends the walk
    assert signal_behind(a) is None


def test_the_command_line_ends_a_replaced_signal_as_the_signal(monkeypatch, capsys) -> None:
    """Any command, not only `session`: `main` exits as the signal asks (143, 130), never "an internal error";
    a plain defect still is one."""
    from workstation import cli, cli_settings

    def replacing(exc: BaseException):
        def run(_args) -> int:
            raise _replaced(exc)
        return run

    monkeypatch.setattr(cli_settings, "_run", replacing(Terminated(143)))
    with pytest.raises(SystemExit) as ended:
        cli.main(["settings"])
    assert ended.value.code == 143
    monkeypatch.setattr(cli_settings, "_run", replacing(KeyboardInterrupt()))
    assert cli.main(["settings"]) == 130

    def defect(_args) -> int:
        raise AssertionError("a defect of ours")

    monkeypatch.setattr(cli_settings, "_run", defect)
    assert cli.main(["settings"]) == 1
    err = capsys.readouterr().err
    assert err.count("an internal error stopped the command") == 1, err


def test_a_signal_whose_exception_c_code_swallowed_still_ends_the_run_before_treatment(tmp_path: Path) -> None:
    """A handler's exception can be swallowed by the C code the main thread was in (a SIGTERM inside h5py's import
    ran the whole session, exit 0): the run's checkpoints raise it again. Here it came while planning and nothing
    raised it: not started, nothing recorded, no session in the store."""
    from test_recovery_signals import _scenario_without_crash as scenario_file

    from workstation.session.runner import run_scenario
    from workstation.session.scenario import load_scenario

    lines: list[str] = []
    store = tmp_path / "training.sqlite3"
    with pytest.raises(Terminated) as ended:
        run_scenario(load_scenario(scenario_file(tmp_path)), tmp_path / "rec", store_path=store, out=lines.append,
                     pending_signal=lambda: Terminated(143))
    assert ended.value.code == 143
    assert lines == ["outcome: not started (terminated by a signal (SIGTERM)); exit code 143"], lines
    with sqlite3.connect(store) as c:
        assert c.execute("SELECT count(*) FROM sessions").fetchone() == (0,)
    assert not list((tmp_path / "rec").rglob("*.h5"))


def test_a_swallowed_signal_mid_session_stops_before_the_next_step(tmp_path: Path) -> None:
    """Came during the first of two steps and swallowed: the second step is not started; the summary says the
    signal ended it, the store's row and the recording agree on what was given."""
    from workstation.session.runner import run_scenario
    from workstation.session.scenario import load_scenario

    lines: list[str] = []
    store = tmp_path / "training.sqlite3"

    def pending() -> BaseException | None:
        return Terminated(143) if any("step 1 done" in line for line in lines) else None

    with pytest.raises(Terminated):
        run_scenario(load_scenario(ROOT / "seeds" / "scenarios" / "combined-uneventful.toml"), tmp_path / "rec",
                     store_path=store, out=lines.append, pending_signal=pending)
    assert not any("step 2 started" in line for line in lines), lines
    assert "steps done: 1 of 2" in lines, lines
    assert lines[-1].endswith("stopped early: terminated by a signal (SIGTERM), so the scenario did not run to its "
                              "end; exit code 143"), lines
    (recording,) = (tmp_path / "rec").rglob("*.h5")
    assert check_checksum(recording).intact
    with sqlite3.connect(store) as c:
        (state, note), = c.execute("SELECT state, outcome_note FROM sessions").fetchall()
        modalities = [m for (m,) in c.execute("SELECT modality FROM treatments")]
    assert state == "partial" and note.startswith("terminated by a signal (SIGTERM)"), (state, note)
    assert len(modalities) == 1, modalities


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGHUP, signal.SIGINT])
def test_a_signal_after_the_session_is_saved_leaves_the_summary_and_its_exit_status_true(tmp_path: Path,
                                                                                      signum: int) -> None:
    """Saved, its summary being printed (the trip reviews read the closed file): the summary is printed whole and
    the process exits with the status it printed. The second fresh tester of the eleventh session saw the summary cut
    after "steps done", and "exit code 0" printed by a process then killed by the signal (-15, -1, -2)."""
    done, store = _run_signalled(tmp_path, signum, after="settle", at="_trip_reviews")
    shown = with_internal_error(done.stdout + done.stderr)
    assert done.returncode == 0, shown
    last = done.stdout.splitlines()[-1]  # (this scenario, crash-and-restart without its crash, expects a stop)
    assert last.startswith("outcome: completed, ") and last.endswith("; exit code 0"), shown
    assert any(line.startswith("recording: ") for line in done.stdout.splitlines()), shown
    assert "Traceback" not in done.stderr and "interrupted" not in done.stderr, shown
    with sqlite3.connect(store) as c:
        assert c.execute("SELECT state FROM sessions").fetchall() == [("completed",)]


def test_ctrl_c_while_the_log_is_set_up_says_interrupted_without_a_traceback(tmp_path: Path) -> None:
    """Before any command runs (the log file being opened): "interrupted", exit 130 (it was a traceback)."""
    done, _store = _run_signalled(tmp_path, signal.SIGINT, at="_open_crash_file")
    assert done.returncode == 130, done.stdout + done.stderr
    assert "Traceback" not in done.stderr and "interrupted" in done.stderr, done.stderr
