"""The conftest's rerun rule: only a failure with a load interlock (telemetry_lost, heartbeat_lost) published in the
test's process during the attempt runs a test once more; any other interlock, or none, does not."""

from __future__ import annotations

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
