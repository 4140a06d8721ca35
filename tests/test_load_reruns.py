"""The conftest's rerun rule: only a failure with a load interlock (telemetry_lost, heartbeat_lost) published in the
test's process during the attempt runs a test once more; any other interlock, or none, does not."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import conftest

from workstation.bus import Event, SessionBus


def _interlock(cause: str, device: str = "pen") -> Event:
    return Event(1.0, "interlock", "high", "safety", f"INTERLOCK {cause} on {device}",
                 {"interlock": cause, "device": device})


def test_no_trip_no_rerun() -> None:
    assert conftest._tripped_by_load("t")() is False


def test_a_safety_interlock_that_is_not_a_load_trip_is_no_reason_to_run_again() -> None:
    bus = SessionBus()
    for cause in ("over_temperature", "contact_lost", "dose_exceeded", "estop"):
        bus.publish_event(_interlock(cause, "light"))
    assert conftest._load_trips == [] and conftest._tripped_by_load("t")() is False


def test_a_load_trip_is_named_and_runs_the_test_again() -> None:
    SessionBus().publish_event(_interlock("heartbeat_lost"))
    assert conftest._load_trips == ["heartbeat_lost on pen"]
    before = len(conftest._run_again)
    assert conftest._tripped_by_load("tests/x.py::t")() is True
    assert conftest._run_again[before:] == []  # asked after a passed phase too: only a rerun report counts

    class Report:
        nodeid, outcome = "tests/x.py::t", "rerun"

    conftest.pytest_runtest_logreport(Report())
    assert conftest._run_again[before:] == [("tests/x.py::t", "heartbeat_lost on pen")]
    del conftest._run_again[before:]  # this test's own entry is not a rerun of the suite
    conftest._load_trips.clear()


def test_a_load_trip_said_by_a_subprocess_session_in_the_failure_runs_the_test_again() -> None:
    error = AssertionError("1.663 s !! Telemetry interlock on the UV light: no telemetry from light for 258 ms")
    assert conftest._tripped_by_load("t")(error) is True
    assert conftest._load_trips == ["Telemetry interlock (in a subprocess)"]
    conftest._load_trips.clear()
    assert conftest._tripped_by_load("t")(AssertionError("Temperature interlock on the UV light")) is False
    assert conftest._load_trips == []


def test_a_load_trip_a_subprocess_logged_runs_the_test_again() -> None:
    """The screenshot tour prints the bus's log line, not the runner's words (a tenth-session loaded run failed on
    it: "a step did not finish within 40 s" after a heartbeat_lost on light); another interlock there is no reason."""
    error = AssertionError("interlock high safety: INTERLOCK heartbeat_lost on light: reported by the device: light "
                           "fault: WATCHDOG: ...\nscreenshot tour: a step did not finish within 40 s")
    assert conftest._tripped_by_load("t")(error) is True
    assert conftest._load_trips == ["heartbeat_lost on light (in a subprocess)"]
    conftest._load_trips.clear()
    other = AssertionError("interlock high safety: INTERLOCK contact_lost on light: reported by the device")
    assert conftest._tripped_by_load("t")(other) is False
    assert conftest._load_trips == []


def test_a_load_trip_in_the_output_a_failed_test_held_runs_it_again_though_its_message_was_shortened() -> None:
    """pytest shortens a message that is not a string: `test_headless_sigterm` asserted on a list of a run's summary
    lines, the trip's line fell in the part left out, and the test failed on a load trip without its rerun (eleventh
    session). The texts the failing test held are read too; another interlock there is still no reason."""
    def failing(summary: list[str]) -> AssertionError:
        try:
            assert summary[0] == "session partial: interrupted (Ctrl+C)", repr(summary)[:40]
        except AssertionError as exc:
            return exc
        raise RuntimeError("the assertion did not fail")

    lines = ["session partial: telemetry interlock on the UV light: no telemetry from light for 259 ms",
             "steps done: 0 of 1", "  Telemetry interlock on the UV light (decided in 0.60 ms; ...): no telemetry"]
    error = failing(lines)
    assert "Telemetry interlock" not in str(error)  # the message alone no longer names it
    assert conftest._tripped_by_load("t")(error) is True
    assert conftest._load_trips == ["Telemetry interlock (in a subprocess)"]
    conftest._load_trips.clear()
    assert conftest._tripped_by_load("t")(_failed_on(subprocess.CompletedProcess(
        [], 1, "  Temperature interlock on the UV light (stop sent)", ""))) is False
    assert conftest._load_trips == []


def _failed_on(done: subprocess.CompletedProcess) -> AssertionError:
    try:
        assert done.returncode == 0, "exit 1"
    except AssertionError as exc:
        return exc
    raise RuntimeError("the assertion did not fail")


def test_a_test_tripped_by_load_in_every_attempt_is_run_again_then_fails_naming_its_trip(tmp_path) -> None:
    """A real pytest run with this conftest: a test that meets a load trip in every attempt is run LOAD_RERUNS more
    times, then its failure stands and says the trip of its own (last) attempt; a test failing without a trip is not
    run again."""
    here = Path(__file__).resolve().parent
    for name in ("conftest.py", "helpers_load.py"):
        shutil.copy(here / name, tmp_path / name)
    (tmp_path / "test_tripped.py").write_text(
        "from workstation.bus import Event, SessionBus\n\n"
        "def test_tripped_every_time():\n"
        "    SessionBus().publish_event(Event(1.0, 'interlock', 'high', 'safety', 'INTERLOCK telemetry_lost on light',\n"
        "                                     {'interlock': 'telemetry_lost', 'device': 'light'}))\n"
        "    assert False, 'the session ended early'\n\n"
        "def test_fails_without_a_trip():\n"
        "    assert False\n")
    done = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-rA", str(tmp_path)],
                          capture_output=True, text=True, timeout=120, cwd=here.parent,
                          env={**os.environ, "PYTHONPATH": str(here.parent)})
    out = done.stdout
    assert done.returncode == 1, out + done.stderr
    assert f"2 failed, {conftest.LOAD_RERUNS} rerun" in out, out
    assert out.count("test_tripped.py::test_tripped_every_time: telemetry_lost on light") == conftest.LOAD_RERUNS, out
    assert "load trips in this attempt" in out and "telemetry_lost on light" in out.split("FAILURES")[1], out
    assert "test_fails_without_a_trip: " not in out.split("tests run again after a load trip")[1], out


# --- a module-scoped fixture that runs a session makes it again itself (helpers_load.scenario_run) ----------------
def test_a_fixtures_session_is_made_again_only_for_a_load_trip_not_for_the_scenarios_own_trips() -> None:
    from helpers_load import load_trips

    from drivers.codes import InterlockCause as C

    def trip(cause, device):
        return {"interlock": cause, "device": device}

    assert load_trips([]) == []
    assert load_trips([trip(C.CONTACT_LOST, "light")]) == []  # the scenario's own fault
    # an unplugged device's telemetry stops too: the scenario's own, as unplug-replug-resume shows on a quiet machine
    assert load_trips([trip(C.DISCONNECTED, "pen"), trip(C.TELEMETRY_LOST, "pen")]) == []
    assert load_trips([trip(C.DISCONNECTED, "pen"), trip(C.HEARTBEAT_LOST, "light")]) == ["heartbeat_lost on light"]
    assert load_trips([trip("telemetry_lost", "pen"), trip(C.HEARTBEAT_LOST, "pen")]) == [
        "telemetry_lost on pen", "heartbeat_lost on pen"]  # as the sixth session's loaded run met it


def test_scenario_run_makes_a_tripped_session_again_in_a_new_folder(tmp_path, monkeypatch) -> None:
    import helpers_load

    from drivers.codes import InterlockCause as C
    from workstation.session import runner

    real = runner.run_scenario
    calls: list[Path] = []

    def tripped_once(scenario, folder, **kw):  # the real session, its first attempt's summary given a load trip
        result = real(scenario, folder, **kw)
        calls.append(folder)
        if len(calls) == 1:
            result.summary["trips"] = [{"interlock": C.TELEMETRY_LOST, "device": "pen"}]
        return result

    monkeypatch.setattr(runner, "run_scenario", tripped_once)
    lines: list[str] = []
    result = helpers_load.scenario_run("pih-gentle-needling", tmp_path, out=lines.append)
    assert calls == [tmp_path / "attempt-0", tmp_path / "attempt-1"]
    assert result.exit_code == 0 and result.recording.is_relative_to(tmp_path / "attempt-1")
    assert any("outcome: completed" in line for line in lines)


def test_a_start_refused_gives_the_whole_summary_with_its_trips(tmp_path, monkeypatch) -> None:
    """A load trip while the devices were being connected refused the start; the runner's result then had no
    "trips" (nor most other keys) and `scenario_run` ended in KeyError: 'trips' instead of making the session
    again (eleventh session, a loaded run). A refused start now gives every key a finished session gives, with
    the trips the monitor made."""
    import helpers_load

    from drivers.codes import AbortCause
    from workstation.protocols.library import seeds_dir
    from workstation.session import visit as visit_module
    from workstation.session.runner import run_scenario
    from workstation.session.scenario import load_scenario

    scenario = load_scenario(seeds_dir() / "scenarios" / "pih-gentle-needling.toml")
    finished = run_scenario(scenario, tmp_path / "a", out=lambda _line: None)

    def refused(self, **_kw):
        self.rig.bus.publish_event(_interlock("heartbeat_lost", "pen"))
        self.rig.monitor.trips.append(_Trip("heartbeat_lost", "pen"))
        raise visit_module.StartRefused("The treatment could not start: an interlock is latched", AbortCause.INTERLOCK)

    monkeypatch.setattr(visit_module.Visit, "begin", refused)
    lines: list[str] = []
    result = run_scenario(scenario, tmp_path / "b", out=lines.append)
    assert lines[-1] == "outcome: not started; exit code 3", lines
    assert set(result.summary) == set(finished.summary), (result.summary, finished.summary)
    assert result.summary["state"] == "aborted" and result.summary["steps_done"] == 0
    assert helpers_load.load_trips(result.summary["trips"]) == ["heartbeat_lost on pen"]
    conftest._load_trips.clear()  # this test's own trip is no reason to run it again


class _Trip:
    def __init__(self, interlock: str, device: str) -> None:
        from drivers.codes import InterlockCause

        self.interlock, self.device, self.message = InterlockCause(interlock), device, "held up"
        self.latency_ms, self.details = 0.5, {}
