"""Every recovery path, headless: trip → reset (refused while the cause remains, naming it) → resume → the step gives
only what is left → the session ends saved and true in the store's journal. A crash is a real SIGKILL of a
`main.py session` subprocess; the next start closes the session from its recording and the plan counts it."""

from __future__ import annotations

import datetime as dt
import os
import shutil
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from conftest import make_emulator, wait_for
from helpers_load import run_until_killed

from workstation.dose import plan_next_session
from workstation.errors import UserError
from workstation.protocols import load_library
from workstation.recording.mark import open_mark
from workstation.session.journal import deliveries_from_recording, process_alive, process_token
from workstation.session.rig import Rig
from workstation.session.runner import EXIT_COMPLETED, run_scenario
from workstation.session.safety import ResetRefused
from workstation.session.scenario import load_scenario
from workstation.session.session import State
from workstation.session.visit import Visit
from workstation.store import ClinicStore

ROOT = Path(__file__).resolve().parents[1]
SCENARIOS = ROOT / "seeds" / "scenarios"


def quiet(_line: str) -> None:
    pass


def journal(store_path: Path) -> tuple[list[tuple], list[tuple]]:
    with sqlite3.connect(store_path) as c:
        sessions = c.execute("SELECT id, state, outcome_note FROM sessions ORDER BY id").fetchall()
        treatments = c.execute("SELECT session_id, area_id, modality, dose_mj_cm2, passes FROM treatments "
                               "ORDER BY session_id, modality").fetchall()
    return sessions, treatments


# --- the trainer scenarios, each with its expected outcome (make test runs them) --------------------------------
@pytest.mark.parametrize(("scenario", "rows"), [
    ("stop-resume-complete.toml", {"light": 260.0, "needling": 2}),
    ("overtemp-cool-reset-resume.toml", {"light": 330.0}),
    ("unplug-replug-resume.toml", {"needling": 2}),
])
def test_recovery_scenarios_complete_and_each_step_is_one_true_row(tmp_path, scenario, rows):
    lines: list[str] = []
    store = tmp_path / "training.sqlite3"
    result = run_scenario(load_scenario(SCENARIOS / scenario), tmp_path, store_path=store, out=lines.append)
    assert result.exit_code == EXIT_COMPLETED, "\n".join(lines)
    assert result.summary["state"] == "completed" and result.summary["trips"]
    assert any("outcome: completed, as expected" in line for line in lines)
    sessions, treatments = journal(store)
    assert sessions == [(1, "completed", "")]
    assert {t[2] for t in treatments} == set(rows)  # one row per area and modality: no constraint fired
    for _sid, _area, modality, dose, passes in treatments:
        if modality == "light":
            assert dose == pytest.approx(rows["light"], abs=1.5)  # the resumed exposure gave only what was left
        else:
            assert passes == rows["needling"]  # the interrupted pass counted; the resumed step ran only the rest
    # what crash recovery would rebuild from the recording agrees with the journal
    rebuilt = {t.modality: t for t in deliveries_from_recording(result.recording)}
    for _sid, _area, modality, dose, passes in treatments:
        if modality == "light":
            assert rebuilt["light"].dose_mj_cm2 == pytest.approx(dose, abs=0.05)
        else:
            assert rebuilt["needling"].passes == passes
    # one summary line per step, however many runs it took
    assert len(result.summary["results"]) == len(rows)
    assert all(r["runs"] == 2 for r in result.summary["results"] if r["step_index"] == 0)


def test_overtemp_reset_is_refused_while_hot_with_the_temperature_in_the_sentence(tmp_path):
    lines: list[str] = []
    run_scenario(load_scenario(SCENARIOS / "overtemp-cool-reset-resume.toml"), tmp_path, out=lines.append)
    refused = [line for line in lines if "reset at 1.3 s could not be done" in line]
    assert refused and "reset is allowed below 39 °C" in refused[0] and "Let it cool" in refused[0]


# --- each interlock kind tripped and reset through the visit service ------------------------------------------
@pytest.fixture
def visit(tmp_path):
    v = Visit.training(load_scenario(SCENARIOS / "combined-uneventful.toml"), tmp_path / "rec",
                       store_path=tmp_path / "t.sqlite3")
    v.begin()
    yield v
    v.close()


def trip_and_wait(v: Visit, interlock: str) -> None:
    wait_for(lambda: interlock in {t.interlock for t in v.rig.monitor.tripped.values()}, 5, interlock)
    wait_for(lambda: v.session.state == State.PAUSED or v.session.state == State.ARMED, 5, "session stopped")


def step_with(v: Visit, when, action) -> None:
    """Run the next step on this thread (the store's); `action()` happens on another thread once `when()`."""
    def inject() -> None:
        wait_for(when, 5, "the moment to inject")
        action()

    th = threading.Thread(target=inject, daemon=True)
    th.start()
    v.run_step()
    th.join(5)


def test_contact_lost_reset_needs_contact_back_then_resets_the_device_too(visit):
    v = visit
    emu = v.rig.emulators["light"]
    step_with(v, lambda: emu.state().active, lambda: emu.set_contact(False))
    trip_and_wait(v, "contact_lost")
    wait_for(lambda: emu.state().faults != 0, 2, "device latched")
    with pytest.raises(ResetRefused, match="no skin contact"):
        v.reset_interlocks()
    assert v.rig.monitor.is_tripped() and emu.state().faults != 0  # nothing was cleared
    emu.set_contact(True)
    wait_for(lambda: v.rig.monitor._last_row["light"]["skin_contact"] == 1, 2, "contact seen")
    cleared = v.reset_interlocks()
    assert [t.interlock for t in cleared] == ["contact_lost"]
    assert emu.state().faults == 0 and not v.rig.monitor.needs_reset()  # the device's latch is gone too
    v.resume()
    v.run_step()
    v.run_step()
    saved = v.end()
    assert saved.summary["state"] == "completed"
    light = saved.summary["results"][0]
    assert light["runs"] == 2 and light["delivered_dose_mj_cm2"] == pytest.approx(260.0, abs=1.5)


def test_motor_jam_reset_is_refused_until_the_jam_is_freed(visit):
    v = visit
    v.run_step()  # the light step
    pen = v.rig.emulators["pen"]
    step_with(v, lambda: pen.state().active, pen.motor_jam)
    wait_for(lambda: v.rig.monitor.is_tripped("pen"), 5, "jam trip")
    wait_for(lambda: not v.rig.monitor._active.get("pen"), 2, "pen stopped")
    with pytest.raises(ResetRefused, match="motor still jammed"):
        v.reset_interlocks()
    pen.clear_faults_cause()
    v.reset_interlocks()
    assert pen.state().faults == 0
    v.resume()
    v.run_step()
    saved = v.end()
    assert saved.summary["state"] == "completed"
    assert saved.summary["results"][1]["passes_done"] == 2  # the jammed pass counted, one more was run


def test_unplugged_device_cannot_be_reset_until_it_answers_again(visit):
    v = visit
    v.run_step()
    pen = v.rig.emulators["pen"]
    step_with(v, lambda: pen.state().active, pen.unplug)
    trip_and_wait(v, "disconnected")
    with pytest.raises(ResetRefused, match="pen .* is disconnected"):
        v.reset_interlocks()
    pen.replug()
    wait_for(lambda: v.rig.devices["pen"].connected, 10, "reconnected")
    wait_for(lambda: _reset_ok(v), 20, "reset accepted")
    assert pen.state().faults == 0
    v.resume()
    v.run_step()
    assert v.end().summary["state"] == "completed"


def _reset_ok(v: Visit) -> bool:
    try:
        v.reset_interlocks()
    except ResetRefused:
        return False
    return True


def test_estop_resets_and_a_second_overtemperature_while_paused_alarms_again(visit):
    v = visit
    light = v.rig.emulators["light"]
    step_with(v, lambda: light.state().active, light.over_temperature)
    trip_and_wait(v, "over_temperature")
    light.clear_faults_cause()
    wait_for(lambda: v.rig.monitor._last_row["light"]["lamp_temp_c"] < 39, 2, "cooled")
    v.reset_interlocks()
    assert light.state().faults == 0
    light.over_temperature()  # paused, and hot again: the device trips again and the monitor latches it
    wait_for(lambda: v.rig.monitor.is_tripped("light"), 3, "second trip")
    with pytest.raises(ResetRefused, match="The lamp is at"):
        v.reset_interlocks()


def test_partial_session_is_not_called_completed_and_depth_only_for_needling(visit):
    v = visit
    light = v.rig.emulators["light"]
    step_with(v, lambda: light.state().active, lambda: (time.sleep(0.3), v.stop("test")))
    saved = v.end()  # without resetting: ended by the operator
    s = saved.summary
    assert s["state"] == "partial" and s["steps_done"] == 0
    assert "0 of 2 steps" in s["abort_reason"]
    [light] = s["results"]
    assert light["outcome"] == "interrupted" and 0 < light["delivered_dose_mj_cm2"] < 260
    assert "depth_mm" not in light
    sessions, treatments = journal(v.store.path)
    assert sessions[0][1] == "partial" and treatments[0][3] == pytest.approx(light["delivered_dose_mj_cm2"], abs=0.01)


# --- ports ----------------------------------------------------------------------------------------------------
def test_the_same_port_twice_is_refused_before_connecting():
    with pytest.raises(UserError, match="light port and the pen port are both /dev/ttyUSB0"):
        Rig.clinical({"light": "/dev/ttyUSB0", "pen": "/dev/ttyUSB0"}, connect=False)


def test_swapped_ports_are_refused_naming_the_port_and_what_answered():
    light, pen = make_emulator("light").start(), make_emulator("pen").start()
    try:
        with pytest.raises(UserError) as err:
            Rig.clinical({"light": pen.port, "pen": light.port})
        text = str(err.value)
        assert f"The port {pen.port} given for the light answered as a microneedling pen" in text
        assert f"the port {light.port} given for the pen answered as a UV light" in text and "are swapped" in text
    finally:
        light.stop()
        pen.stop()


# --- crash: a real SIGKILL, then the next start --------------------------------------------------------------
def test_crash_mid_exposure_is_closed_from_the_recording_and_the_plan_counts_it(tmp_path):
    store_path, rec = tmp_path / "training.sqlite3", tmp_path / "rec"
    cmd = [sys.executable, str(ROOT / "main.py"), "session", "--simulate", "--scenario",
           str(SCENARIOS / "crash-and-restart.toml"), "--record", str(rec), "--store", str(store_path)]
    first = run_until_killed(cmd, [store_path, rec], timeout=120, cwd=ROOT, env={**os.environ, "PYTHONUNBUFFERED": "1"})
    assert first.returncode == -signal.SIGKILL, first.stdout + first.stderr
    sessions, treatments = journal(store_path)
    assert [s[1] for s in sessions] == ["in_progress"]  # the journal holds the session from its start
    with ClinicStore.open(store_path, training=True) as store:
        [row] = store.in_progress_sessions()
        recorded = deliveries_from_recording(Path(row["recording_path"]))
        h5_path = Path(row["recording_path"])
    [light] = recorded
    assert open_mark(h5_path)  # the killed recorder's "open for writing" mark: HDF5's tools refuse the file
    if shutil.which("h5dump"):
        refused = subprocess.run(["h5dump", "-H", str(h5_path)], capture_output=True, text=True, timeout=60)
        assert refused.returncode != 0
    assert 50 < light.dose_mj_cm2 < 260  # 2.2 s of a 260 mJ/cm² exposure (warm-up included)
    second = subprocess.run(cmd, capture_output=True, text=True, timeout=120, cwd=ROOT)
    assert "closed as interrupted by a crash" in second.stdout
    assert second.returncode == 2 and "Too early" in second.stderr + second.stdout  # the plan counts the session
    sessions, treatments = journal(store_path)
    assert sessions == [(1, "crashed", "interrupted by a crash")]
    assert treatments == [(1, 1, "light", pytest.approx(light.dose_mj_cm2, abs=0.01), None)]
    assert not open_mark(h5_path)  # crash-closing cleared it, then linked the SHA-256 of the cleared file
    if shutil.which("h5dump"):  # Debian's hdf5-tools (CI installs them)
        for tool in (["h5dump", "-H"], ["h5ls", "-r"]):
            dumped = subprocess.run([*tool, str(h5_path)], capture_output=True, text=True, timeout=60)
            assert dumped.returncode == 0 and "h5clear" not in dumped.stdout + dumped.stderr, dumped.stderr
    with ClinicStore.open(store_path, training=True) as store:
        assert store.recording(1) is not None and store.verify_recording(1)
        library = load_library()
        plan = plan_next_session(store, library, 1, dt.date.today() + dt.timedelta(days=7), device_model="UVB-308")
        assert "light" in [s.modality for s in plan.steps]
        [hist] = store.history(1)
        assert hist.state == "crashed" and hist.treatment(1, "light").dose_mj_cm2 == pytest.approx(light.dose_mj_cm2)


def test_process_tokens_tell_a_live_process_from_a_dead_one():
    assert process_alive(process_token())
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    token = process_token(proc.pid)
    proc.wait()
    assert not process_alive(token)
    assert not process_alive("") and not process_alive("nonsense")


def test_an_interlock_latched_before_arming_refuses_the_start_in_words_with_its_cause(tmp_path: Path) -> None:
    """From the fresh tester of issue 16: a trip between connect and arm (a stalled light) ended the headless runner
    with "an internal error" and exit 1. The start is refused in words naming the interlock, the session is closed
    as aborted in the store, and the cause (interlock: exit 3) goes with the refusal."""
    from drivers.codes import AbortCause
    from workstation.session.runner import EXIT_CODES
    from workstation.session.visit import StartRefused

    store_path = tmp_path / "training.sqlite3"
    v = Visit.training(load_scenario(SCENARIOS / "combined-uneventful.toml"), tmp_path / "rec", store_path=store_path)
    try:
        v.rig.monitor.estop("trainer")
        with pytest.raises(StartRefused, match="an interlock is latched") as refused:
            v.begin()
        assert refused.value.cause == AbortCause.INTERLOCK and EXIT_CODES[refused.value.cause] == 3
        assert "internal" not in str(refused.value) and "SessionError" not in str(refused.value)
        assert v.session is None and v.session_id is None
    finally:
        v.close()
    with ClinicStore.open(store_path, training=True) as s:
        assert s.in_progress_sessions() == []
        assert s.session_state(1)["state"] == "aborted"  # the store's first session: the refused start


def test_a_crash_whose_recording_cannot_be_read_here_holds_light_back_for_the_light_interval(tmp_path: Path) -> None:
    """From the fresh tester of issue 17: room 1 crashed mid-exposure (82 mJ/cm² given), its recording on room 1's
    disk; room 2 closed the session with no light row and re-planned a full first dose on the same area the same day.
    A crashed session that planned light and whose recording could not be read gave an unknown dose: the next plan
    keeps light off its areas for the light interval, and says why."""
    from workstation.session.journal import close_crashed_sessions
    from workstation.session.planning import plan_visit, prepare_training_plan
    from workstation.session.visit import _load_library

    scenario = load_scenario(SCENARIOS / "combined-uneventful.toml")
    library = _load_library()
    with ClinicStore.open(tmp_path / "t.sqlite3", training=True) as store:
        course, plan = prepare_training_plan(scenario, store, library, "UVB-308")
        lit = [a.area_id for a in plan.areas if a.target_dose_mj_cm2]
        assert lit, "the scenario plans light"
        sid = store.add_session(course.id, dt.date.today(), device_model="UVB-308", plan=plan.to_dict(),
                                state="in_progress", process="999999999:1",  # a process that is gone
                                recording_path=tmp_path / "on-room-1s-disk.h5")  # not readable here
        [closed] = close_crashed_sessions(store)
        assert closed.session_id == sid and "dose it gave is unknown" in closed.note
        again = plan_visit(store, library, course.id, dt.date.today(), device_model="UVB-308")
        for area in again.areas:
            if area.area_id in lit:
                assert not area.target_dose_mj_cm2, area
                assert any("dose it gave is unknown" in r for r in area.reasons), area.reasons


def test_an_exposure_the_recording_shows_open_at_its_end_is_never_under_counted(tmp_path: Path) -> None:
    """Fresh tester of issue 12: a session cut short by a full disk was closed from its recording with 179 mJ/cm²
    where the device gave 195: the last ~170 ms of the exposure were in the write that failed. An exposure still open
    when its recording ends counts UNRECORDED_EMISSION_MAX_S more at its last irradiance, never past its target; one
    the recording shows ended counts what it shows."""
    import math

    import numpy as np
    from helpers_recording import write_session

    from workstation.bus import Event
    from workstation.recording import Recording
    from workstation.session.journal import UNRECORDED_EMISSION_MAX_S
    from workstation.store.records import Treatment

    t0 = 1000.0

    def step(target: float, ended: bool) -> list[Treatment]:
        events = [Event(t0 + 0.001, "protocol", "info", "session", "step 1 started",
                        {"event": "step_started", "step_index": 0, "area_id": 1, "area": "chin", "modality": "light",
                         "target_dose_mj_cm2": target})]
        if ended:
            events.append(Event(t0 + 2.0, "protocol", "info", "session", "step 1 ended",
                                {"event": "step_ended", "step_index": 0, "outcome": "interrupted"}))
        folder = tmp_path / f"{target}-{ended}"
        return deliveries_from_recording(write_session(folder, 2.0, events=events, t0_host_s=t0))

    with Recording.open(write_session(tmp_path / "probe", 2.0)) as rec:
        rows = rec.telemetry("light")
        shown, last_irradiance = float(rows["dose_mj_cm2"].max()), float(rows["irradiance_mw_cm2"][-1])
    assert rows["shutter_open"][-1]  # the synthetic light is still open when these 2 s end
    [open_end] = step(1000.0, ended=False)
    assert open_end.dose_mj_cm2 == pytest.approx(shown + last_irradiance * UNRECORDED_EMISSION_MAX_S, abs=0.01)
    [capped] = step(shown + 1.0, ended=False)
    assert capped.dose_mj_cm2 == pytest.approx(shown + 1.0, abs=0.01)  # never past its target
    [ended] = step(1000.0, ended=True)
    assert ended.dose_mj_cm2 == pytest.approx(shown, abs=0.01) and math.isfinite(ended.dose_mj_cm2)
    assert np.isfinite(shown) and shown > 0


def test_a_session_whose_program_ended_it_is_not_called_a_crash(tmp_path: Path) -> None:
    """Third fresh tester of issue 12: with the store and the recording on one disk that filled, the recording failed
    first (its store-failure alarm could not be recorded) and the next start called the session 'interrupted by a
    crash'. A recording its recorder closed says the program ended the session: whatever kept the store from hearing
    the end (a store failure, a kill between the two), it is closed as aborted from that recording, never as a
    crash. Here a real completed session's row is put back in progress under a process that is gone."""
    from workstation.session.journal import close_crashed_sessions, deliveries_from_recording
    from workstation.session.runner import run_scenario

    store_path = tmp_path / "t.sqlite3"
    result = run_scenario(load_scenario(SCENARIOS / "combined-uneventful.toml"), tmp_path / "rec",
                          store_path=store_path, out=lambda s: None)
    with ClinicStore.open(store_path, training=True) as store:
        with store.transaction() as db:  # the end the store did not hear
            db.execute("UPDATE sessions SET state = 'in_progress', process = '999999999:1', ended_at = NULL")
        [closed] = close_crashed_sessions(store)
        assert closed.ended_unsaved and "never heard its end" in closed.told and "crash" not in closed.told
        assert store.session_state(closed.session_id)["state"] == "aborted"
        # what it gave is what its recording shows (a loaded machine may have cut the session short: no matter)
        assert closed.treatments == deliveries_from_recording(Path(result.recording))


def test_a_store_failure_whose_recording_could_not_be_closed_is_not_called_a_crash(tmp_path: Path) -> None:
    """Fourth fresh tester of issue 12 (5 of 5 runs): the store and the recording on one disk that filled to the last
    byte; the store's failure was recorded, then the recording's close failed too, so the file has no end time and
    the next start called the session a crash. The recorded store failure says how it ended, closed or not."""
    import h5py
    from helpers_recording import write_session

    from workstation.bus import Event
    from workstation.session.journal import STORE_FAILED, recorded_end

    alarm = Event(1001.0, "alarm", "high", "session", "The clinic store could not be written (its disk is full): "
                  "the devices were stopped.", {"cause": STORE_FAILED})
    for with_alarm in (True, False):
        path = write_session(tmp_path / str(with_alarm), 2.0, events=[alarm] if with_alarm else [])
        with h5py.File(path, "r+") as f:  # as a close that failed on the full disk left it
            del f.attrs["end_time_utc"]
        if with_alarm:
            assert recorded_end(path) == alarm.message
        else:  # nothing recorded but the telemetry: a crash, as before
            assert recorded_end(path) is None



@pytest.mark.parametrize("reserve_left", [False, True])
def test_a_recorder_that_failed_before_it_could_record_its_end_is_not_called_a_crash(tmp_path: Path,
                                                                                    reserve_left: bool) -> None:
    """Sixth fresh tester of issue 12: the store and the recording on one disk that another program kept filling;
    the recorder failed and gave back its reserve file, but neither the store failure nor the file's end could be
    written, and the next start called the session a crash. A recorder gives its reserve file back only when a write
    fails (or at its close); a killed one leaves it. So a file with no end whose reserve is gone was ended by its
    program: closed as aborted, in words saying so. With the reserve file left (a kill), a crash as before.
    A real completed session, its row put back in progress under a process that is gone, its end time removed as a
    close the full disk refused leaves it."""
    import h5py

    from workstation.recording.format import ballast_path
    from workstation.session.journal import WRITE_FAILED, close_crashed_sessions

    store_path = tmp_path / "t.sqlite3"
    result = run_scenario(load_scenario(SCENARIOS / "combined-uneventful.toml"), tmp_path / "rec",
                          store_path=store_path, out=lambda s: None)
    path = Path(result.recording)
    with h5py.File(path, "r+") as f:
        del f.attrs["end_time_utc"]
    if reserve_left:
        ballast_path(path).write_bytes(b"\0" * 4096)
    with ClinicStore.open(store_path, training=True) as store:
        with store.transaction() as db:
            db.execute("UPDATE sessions SET state = 'in_progress', process = '999999999:1', ended_at = NULL")
        [closed] = close_crashed_sessions(store)
    with sqlite3.connect(store_path) as c:
        [(state, note)] = c.execute("SELECT state, outcome_note FROM sessions").fetchall()
    assert closed.treatments == deliveries_from_recording(path)
    if reserve_left:
        assert state == "crashed" and note.startswith("interrupted by a crash") and not closed.ended_unsaved
    else:
        assert state == "aborted" and "crash" not in note + closed.told and WRITE_FAILED in note, note
        assert closed.ended_unsaved and "never heard its end" in closed.told
    assert not ballast_path(path).exists()
