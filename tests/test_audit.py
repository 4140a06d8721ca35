"""`main.py audit`: a recording fed through a fresh safety monitor on the recording's clock gives back the trips it
holds (from real simulated sessions: device-reported contact loss, unplug, E-stop with reset and resume), and a
recording whose telemetry breaks its own recorded limits without a trip shows the trip as extra."""

from __future__ import annotations

import threading
from pathlib import Path

import h5py
import numpy as np
import pytest
from helpers_load import LOAD_INTERLOCKS
from helpers_recording import write_session

from drivers.codes import InterlockCause
from main import main
from tests.conftest import wait_for
from workstation.bus import Event
from workstation.protocols.library import seeds_dir
from workstation.recording import Recording
from workstation.session.audit import audit, format_audit
from workstation.session.rig import Rig
from workstation.session.runner import run_scenario
from workstation.session.safety import LIMITS_EVENT, StepLimits
from workstation.session.scenario import load_scenario
from workstation.session.session import Session, State, Step

SCENARIOS = seeds_dir() / "scenarios"
T0 = 1000.0  # helpers_recording's session start
# light and needling allowed; the synthetic lamp's 35–45 °C sawtooth stays under this lamp limit
ALLOWED = StepLimits("cheek", light_allowed=True, needling_allowed=True, target_dose_mj_cm2=500.0,
                     area_dose_cap_mj_cm2=10_000.0, depth_limit_mm=2.0, max_lamp_temp_c=60.0)


def limits_event(t_s: float, limits: StepLimits) -> Event:
    return Event(T0 + t_s, LIMITS_EVENT, "info", "safety", limits.describe(), limits.to_details())


@pytest.mark.parametrize(("scenario", "first_trip"), [
    ("contact-lost-mid-exposure.toml", {InterlockCause.CONTACT_LOST}),
    # the unplug trips `disconnected` when the reader's read fails, and `telemetry_lost` when no frame came within
    # 250 ms: which comes first is a live race the machine's load decides (both are true of an unplug); the recording
    # settles it, and the audit must give back whichever happened
    ("unplug-mid-exposure.toml", {InterlockCause.DISCONNECTED, InterlockCause.TELEMETRY_LOST}),
    ("combined-uneventful.toml", set()),
])
def test_scenario_recordings_give_back_their_trips(tmp_path: Path, scenario: str, first_trip: set[str]) -> None:
    for attempt in range(3):
        # A loaded machine can stop any scenario early on its telemetry or heartbeat watchdog (the watchdog doing its
        # job, docs/safety.md): such a run is made again, up to three times, as the crash tests do (helpers_load)
        result = run_scenario(load_scenario(SCENARIOS / scenario), tmp_path / str(attempt), out=lambda _line: None)
        with Recording.open(result.recording) as rec:
            r = audit(rec)
            text = format_audit(rec, r)
        recorded = [t.interlock for t in r.recorded]
        if not recorded or recorded[0] in first_trip or recorded[0] not in LOAD_INTERLOCKS:
            break
    assert r.limits_recorded >= 2  # the step's limits, then the idle ones after it
    assert (recorded[0] in first_trip) if first_trip else not recorded, recorded
    assert r.same and [a.interlock for a, _ in r.reproduced] == recorded
    for recorded, replayed in r.reproduced:
        if recorded.interlock == InterlockCause.TELEMETRY_LOST:
            # a silence's cause is when the live watchdog noticed it, which a loaded machine delays; the replay
            # notices it at the first tick past 250 ms, never later than the live run did
            assert replayed.t_cause_s <= recorded.t_cause_s + 0.02
        else:
            assert abs(replayed.t_cause_s - recorded.t_cause_s) <= 0.02  # blocks and events at their recorded times
    assert text.endswith("result: the same trips")
    assert main(["audit", str(result.recording)]) == 0


def test_an_estop_with_reset_and_resume_is_reproduced(tmp_path: Path) -> None:
    rig = Rig.simulation(seed=5, light_warmup_s=0.2)
    try:
        session = Session(rig.bus, rig.devices, rig.monitor, operator_id="dr-test")
        session.connect("dr-test")
        rig.start_recording(tmp_path, patient_pseudonym="PX-1", operator_id="dr-test", protocol_id="test",
                            protocol_version="1")
        session.load_plan([Step("1", "cheek", "light", target_dose_mj_cm2=60.0, area_dose_cap_mj_cm2=1000.0)],
                          "dr-test")
        session.arm("dr-test")
        worker = threading.Thread(target=session.run_step, args=("dr-test",))
        worker.start()
        wait_for(lambda: rig.emulators["light"].state().emitting, what="emission")
        session.estop("test")
        worker.join(5)
        assert session.state == State.PAUSED
        wait_for(lambda: not rig.emulators["light"].state().active, what="light off")
        rig.monitor.reset("dr-test")
        session.resume("dr-test")
        assert session.run_step("dr-test").outcome == "done"
        session.finish("dr-test")
        path, _digest = rig.stop_recording()
    finally:
        rig.close()
    with Recording.open(path) as rec:
        r = audit(rec)
    assert [(t.interlock, t.device) for t in r.recorded] == [(InterlockCause.ESTOP, "light"), (InterlockCause.ESTOP, "pen")]
    assert r.same, format_audit(rec, r)


def test_telemetry_against_recorded_limits_without_a_trip_is_extra(tmp_path: Path) -> None:
    """The synthetic light emits 0–5 s, 10–15 s, 20–25 s and the synthetic pen runs throughout; the recorded limits
    allow both until 8 s, then neither, and no trip is recorded: this monitor would have stopped the pen at its first
    frame after 8 s and the light at the start of its 10 s exposure (protocol rule), and the audit says so."""
    path = write_session(tmp_path, 12.0, [limits_event(0.001, ALLOWED), limits_event(8.0, StepLimits())])
    with Recording.open(path) as rec:
        r = audit(rec)
        text = format_audit(rec, r)
    assert not r.same and not r.recorded and not r.missing
    pen, light = r.extra
    assert (pen.interlock, pen.device) == (InterlockCause.PROTOCOL_RULE, "pen")
    assert pen.t_cause_s == pytest.approx(8.003, abs=1e-6)  # pen frames arrive 3 ms after each 10 ms mark
    assert (light.interlock, light.device) == (InterlockCause.PROTOCOL_RULE, "light")
    assert light.t_cause_s == pytest.approx(10.01, abs=1e-6)  # the first frame of the 10 s exposure
    assert "EXTRA (made now, not recorded): protocol_rule on light" in text and "the trips DIFFER" in text
    assert main(["audit", str(path)]) == 1


def test_a_recorded_trip_the_monitor_no_longer_makes_is_missing(tmp_path: Path) -> None:
    """A recording older than limits events (audited with permissive limits): its recorded contact-loss trip has no
    cause in the telemetry (skin contact throughout), so it is missing; the synthetic lamp passes the host's 42 °C
    while emitting (35–45 °C sawtooth), so this monitor trips over-temperature first, which the recording lacks."""
    trip = Event(T0 + 3.0, "interlock", "high", "safety", "INTERLOCK contact_lost on light: skin contact lost",
                 {"interlock": InterlockCause.CONTACT_LOST, "device": "light", "cause_t_host_s": T0 + 3.0})
    path = write_session(tmp_path, 6.0, [trip])
    with Recording.open(path) as rec:
        r = audit(rec)
        text = format_audit(rec, r)
    assert r.limits_recorded == 0 and "NONE recorded (no step ran, or a recording older than limits events)" in text
    assert [(t.interlock, t.t_cause_s) for t in r.missing] == [(InterlockCause.CONTACT_LOST, 3.0)]
    (extra,) = r.extra
    assert extra.interlock == InterlockCause.OVER_TEMPERATURE
    assert extra.t_cause_s == pytest.approx(0.36, abs=1e-6)  # sample 701 (42.01 °C) arrives with frame 35
    assert "MISSING (recorded, not made now): contact_lost on light at 3.000 s" in text


def test_audit_of_a_file_that_is_not_a_recording_is_exit_2(tmp_path: Path, capsys) -> None:
    bogus = tmp_path / "x.h5"
    with h5py.File(bogus, "w") as f:
        f["x"] = np.arange(3)
    assert main(["audit", str(bogus)]) == 2
    assert "not a Cicatrix session recording" in capsys.readouterr().err
    assert main(["audit", str(tmp_path / "x.h5"), "--tolerance-ms", "-1"]) == 2


def _light_cut_at(path: Path, rows: int) -> None:
    """Keep only the first `rows` light samples: the light went silent while emitting (the pen goes on)."""
    with h5py.File(path, "r+") as f:
        ds = f["devices/light/telemetry"]
        kept = ds[:rows]
        ds.resize((rows,))
        ds[:] = kept


@pytest.mark.parametrize(("cut_rows", "counted"), [(2000, True), (5480, False)])
def test_a_silent_light_trips_telemetry_lost_and_the_recordings_end_is_not_held_against_it(
        tmp_path: Path, cut_rows: int, counted: bool) -> None:
    """The light's last frame arrives at 1.00 s (or 2.74 s); the pen's go on to 3.003 s, the recording's end. This
    monitor trips telemetry-lost 250 ms after the last frame. At 1.26 s nothing excuses its absence from the
    recording; at 3.00 s it falls in the last watchdog period, where the live watchdog may have ticked after the
    recording closed: shown, not counted."""
    path = write_session(tmp_path, 3.0, [limits_event(0.001, ALLOWED)])
    _light_cut_at(path, cut_rows)
    with Recording.open(path) as rec:
        r = audit(rec)
        text = format_audit(rec, r)
    expected_t = 1.26 if counted else 3.00
    (trip,) = r.extra if counted else r.at_end
    assert (trip.interlock, trip.device) == (InterlockCause.TELEMETRY_LOST, "light")
    assert trip.t_cause_s == pytest.approx(expected_t, abs=1e-6)
    assert r.same is not counted
    assert ("EXTRA" in text) is counted and ("at the end, not counted" in text) is not counted


@pytest.mark.parametrize("trip_s", [1.2555, 1.2501, 1.2599])
def test_a_trip_at_the_look_a_stall_starts_from_is_given_back(tmp_path: Path, trip_s: float) -> None:
    """The live watchdog tripped telemetry-lost at a look off the audit's 10 ms grid, and its next look came 210 ms
    late: its `stall` event starts at that very look (a fresh tester of issue 12, a loaded machine). The audit makes
    that look too, so it gives the trip back at its recorded time; it skipped the whole stretch and said "the trips
    DIFFER" (missing, then an extra trip 215 ms later) on a recording nothing was wrong with."""
    trip = Event(T0 + trip_s + 1e-4, "interlock", "high", "safety", "INTERLOCK telemetry_lost on light: no telemetry",
                 {"interlock": InterlockCause.TELEMETRY_LOST, "device": "light", "cause_t_host_s": T0 + trip_s})
    stall = Event(T0 + trip_s + 0.21, "stall", "info", "safety", "the workstation was held up for 210 ms",
                  {"from_t_host_s": T0 + trip_s, "stall_s": 0.21})
    path = write_session(tmp_path, 3.0, [limits_event(0.001, ALLOWED), trip, stall])
    _light_cut_at(path, 2000)  # the light's last frame at 1.00 s: silent for 250 ms at 1.25 s
    with Recording.open(path) as rec:
        r = audit(rec)
        text = format_audit(rec, r)
    ((recorded, replayed),) = r.reproduced
    assert (replayed.interlock, replayed.device) == (InterlockCause.TELEMETRY_LOST, "light")
    assert replayed.t_cause_s == pytest.approx(trip_s, abs=1e-6)
    assert r.same and not r.missing and not r.extra, text
    assert text.endswith("result: the same trips")
