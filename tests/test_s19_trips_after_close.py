"""A trip made while the recording closes, after the file took its last event, is never said to be in it.

Fresh tester of issue 12 (seventeenth session), a three-area combined run at load 10: the pen's telemetry interlock
tripped 0.5 s after the file's last event, while the close was still writing the checksum and signature. The runner
printed it with no "(after the recording closed …)" label (its "closed" state flipped only when the whole close had
returned) and the summary listed it among the session's trips, as if the file held it. Now the label follows the
moment the file takes no more (SessionRecorder.takes_more), and each summary trip says whether the file holds it, read
back from the closed file.

The trip is made certain by an E-stop from inside the close, right after the closing reopen (the recorder's own
method, wrapped on this one instance).
"""

from __future__ import annotations

from workstation.recording.reader import Recording
from workstation.session.outcome import NOT_RECORDED
from workstation.session.runner import ProgressPrinter, _say_trips


def test_a_trip_made_after_the_closing_reopen_is_labelled_and_marked_not_in_the_recording(visit, monkeypatch):
    v = visit
    lines: list[str] = []
    printer = ProgressPrinter(lines.append, lambda: v.rig.recording_state)
    v.rig.bus.subscribe(printer)
    assert v.rig.recording_state == "before"
    v.begin(abort_on_trip=True)
    assert v.rig.recording_state == "open"
    v.run_all()
    rec = v.rig.recorder
    reopen, states = rec._write_closing_attrs, []

    def reopen_then_trip() -> None:
        reopen()
        states.append(v.rig.recording_state)
        v.rig.monitor.estop("during the close, after the file's last event")

    monkeypatch.setattr(rec, "_write_closing_attrs", reopen_then_trip)
    saved = v.end()
    assert states == ["closed"]  # before the checksum and signature: the file takes no more
    assert saved.sha256 is not None
    with Recording.open(saved.recording) as r:
        assert not [e for e in r.events if e.kind == "interlock"]  # the file holds no trip: the session had none
    trips = saved.summary["trips"]
    assert [(t["device"], t["interlock"], t["in_recording"]) for t in trips] == [
        ("light", "estop", False), ("pen", "estop", False)]
    estop_lines = [ln for ln in lines if "E-stop" in ln and "during the close" in ln]
    assert len(estop_lines) == 2 and all(ln.endswith(" (after the recording closed: in the log file, not in the "
                                                     "recording)") for ln in estop_lines), lines
    said: list[str] = []
    _say_trips(said.append, trips)
    assert len(said) == 2 and all(ln.endswith(NOT_RECORDED) for ln in said), said
    assert v.rig.recording_state == "closed"


def test_the_trips_a_recording_holds_are_marked_in_it(visit):
    """A trip during the session: in the file, and the summary says so (no label printed after it)."""
    v = visit
    v.begin(abort_on_trip=True)
    v.rig.monitor.estop("mid-session")
    saved = v.end()
    with Recording.open(saved.recording) as r:
        recorded = {(e.details["device"], e.details["interlock"]) for e in r.events if e.kind == "interlock"}
    assert recorded == {("light", "estop"), ("pen", "estop")}
    assert all(t["in_recording"] is True for t in saved.summary["trips"])
    said: list[str] = []
    _say_trips(said.append, saved.summary["trips"])
    assert said and not any(NOT_RECORDED in ln for ln in said)


def test_a_start_refused_says_which_of_its_trips_the_recording_holds():
    """Fresh tester of issue 12: a start refused on a full disk listed the pen's telemetry trip and both E-stops with
    no label, and no "recording stopped early" line (runner: both now come from the refusal's closed recording)."""
    from drivers.codes import AbortCause, InterlockCause
    from workstation.session.outcome import not_started_summary, trip_key
    from workstation.session.safety import Trip

    kept = Trip(InterlockCause.TELEMETRY_LOST, "light", "no telemetry", 10.0, 10.001)
    after = Trip(InterlockCause.ESTOP, "pen", "E-stop (recording failed)", 11.0, 11.002)
    recorded = frozenset({trip_key({"device": "light", "interlock": "telemetry_lost", "stop_written_t_host_s": 10.001})})
    summary = not_started_summary("could not start", AbortCause.INTERLOCK, [kept, after], 2, recorded)
    assert [t["in_recording"] for t in summary["trips"]] == [True, False]
    said: list[str] = []
    _say_trips(said.append, summary["trips"])
    assert not said[0].endswith(NOT_RECORDED) and said[1].endswith(NOT_RECORDED), said
    assert [t["in_recording"] for t in not_started_summary("x", AbortCause.INTERLOCK, [kept], 1)["trips"]] == [None]
