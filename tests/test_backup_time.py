"""Backup exposure time, end to end: computed by the driver from the target and the calibrated irradiance, sent with
the target, enforced by the device, watched by the host (`backup_time`). Trainer fault: `sensor_low`."""

from __future__ import annotations

import math
import time

import numpy as np
import pytest

from drivers.base import DeviceError
from drivers.codes import InterlockCause
from drivers.light import BACKUP_TIME_EXTRA_S, BACKUP_TIME_MARGIN, backup_time_s
from tests.conftest import wait_for
from tests.test_interlocks import (
    OrderTap,
    assert_off,
    assert_stopped_on_the_block_that_crossed,
    light_limits,
    tripped,
)
from workstation.session.rig import Rig
from workstation.session.safety import BACKUP_TIME_TOLERANCE_S


@pytest.fixture
def sim():
    rig = Rig.simulation(seed=13, light_warmup_s=0.2)
    tap = OrderTap()
    rig.bus.subscribe(tap)
    time.sleep(0.3)  # lamp warm
    yield rig, tap
    rig.close()


def _open_past_the_limit(tap, ev):
    """Whether a light block shows this test's one exposure open past its backup time + tolerance, on the device
    clock (as the monitor judges it)."""
    rows = np.concatenate(tap.blocks["light"])
    start = int(rows["t_device_us"][rows["shutter_open"].astype(bool)][0])
    limit_s = ev.details["backup_time_s"] + BACKUP_TIME_TOLERANCE_S

    def crossed(b) -> bool:
        on = b["shutter_open"].astype(bool)
        return bool(on.any()) and (int(b["t_device_us"][on][-1]) - start) / 1e6 > limit_s
    return crossed


def test_backup_time_is_the_margin_times_the_expected_time():
    assert backup_time_s(300.0, 100.0) == pytest.approx(1.25 * 3.0 + BACKUP_TIME_EXTRA_S)
    assert BACKUP_TIME_MARGIN == 1.25  # CLINICAL.md, "Backup time": team default
    for bad in (0.0, -5.0, math.nan, math.inf, 1e6):
        with pytest.raises(DeviceError, match="backup time"):
            backup_time_s(300.0, bad)


def test_the_backup_time_travels_with_every_target_and_the_device_holds_it(sim):
    rig, tap = sim
    light, emu = rig.devices["light"], rig.emulators["light"]
    calibrated = light.identity.extra["calibration"]["irradiance_mw_cm2"]
    light.set_target_dose(200.0)  # the session's own call
    sets = [c for c in tap.commands if c.command == "set"]
    assert [c.args["param"] for c in sets[-2:]] == ["backup_time_s", "target_dose_mj_cm2"]
    assert emu.state().backup_time_s == pytest.approx(backup_time_s(200.0, calibrated), abs=1e-3)
    assert light.backup_time_s == pytest.approx(emu.state().backup_time_s, abs=1e-6)  # f32 on the wire


def test_a_sensor_reading_low_is_stopped_by_the_device_at_its_backup_time(sim):
    """Half the true irradiance measured: without a backup the skin would get twice the target."""
    rig, tap = sim
    light, emu = rig.devices["light"], rig.emulators["light"]
    target = 50.0
    emu.sensor_low(0.5)
    rig.monitor.set_limits(light_limits(target_dose_mj_cm2=target))
    light.set_target_dose(target)
    light.arm()
    light.start()
    ev = tripped(tap, InterlockCause.BACKUP_TIME, "light")
    assert ev.details["detected_by"] == "device"
    assert_off(rig, "light")
    state = emu.state()
    assert state.dose_mj_cm2 < target  # the device's own (low) reading never reached the target
    # the true dose is bounded by the backup time: ≈ 1.25 × target (the lamp is at its calibrated output) + 2 %
    assert state.true_dose_mj_cm2 <= BACKUP_TIME_MARGIN * target * 1.05 + 2.0
    assert state.shutter_closed_reason.name == "BACKUP_TIME"


def test_a_device_whose_backup_timer_fails_is_stopped_by_the_host(sim):
    rig, tap = sim
    light, emu = rig.devices["light"], rig.emulators["light"]
    target = 30.0
    emu.sensor_low(0.5)
    emu.backup_timer_failure()
    rig.monitor.set_limits(light_limits(target_dose_mj_cm2=target))
    light.set_target_dose(target)
    light.arm()
    light.start()
    ev = tripped(tap, InterlockCause.BACKUP_TIME, "light")
    assert ev.details.get("detected_by") != "device"
    assert ev.details["open_s"] > ev.details["backup_time_s"] + BACKUP_TIME_TOLERANCE_S
    assert_off(rig, "light")
    # the host judged the time open on the device's clock and tripped on the first block past the limit; the stop it
    # wrote closed the shutter (how much light passed meanwhile is a latency: bench/interlock.py `backup_time`)
    assert_stopped_on_the_block_that_crossed(rig, tap, ev, _open_past_the_limit(tap, ev))


def test_a_healthy_exposure_ends_at_its_dose_well_before_its_backup_time(sim):
    rig, tap = sim
    light, emu = rig.devices["light"], rig.emulators["light"]
    rig.monitor.set_limits(light_limits(target_dose_mj_cm2=40.0))
    light.set_target_dose(40.0)
    light.arm()
    light.start()
    wait_for(lambda: any(e.details.get("reason") == "DOSE_REACHED" for e in tap.kinds("device_state")),
             what="dose reached")
    assert not rig.monitor.trips
    assert emu.state().dose_mj_cm2 == pytest.approx(40.0, abs=0.1)


def test_a_trainer_scenario_with_a_low_sensor_ends_at_the_backup_time_and_audits_the_same(tmp_path):
    """The whole session path: the device closes at its backup time, the session aborts on `backup_time`, the
    recording holds the trip, and the audit gives it back."""
    from main import main
    from workstation.protocols.library import seeds_dir
    from workstation.recording import Recording
    from workstation.session.audit import audit
    from workstation.session.runner import EXIT_INTERLOCK, run_scenario
    from workstation.session.scenario import load_scenario

    result = run_scenario(load_scenario(seeds_dir() / "scenarios" / "sensor-low-backup-time.toml"), tmp_path,
                          out=lambda _line: None)
    assert result.exit_code == EXIT_INTERLOCK and result.state == "aborted"
    [res] = result.summary["results"]
    with Recording.open(result.recording) as rec:
        trips = [e for e in rec.events if e.kind == "interlock"]
        assert trips[0].details["interlock"] == InterlockCause.BACKUP_TIME, trips[0].message
        assert trips[0].details["detected_by"] == "device"
        target = rec.plan["areas"][0]["target_dose_mj_cm2"]  # 220 mJ/cm², skin type II
        # the sensor's (half) reading when the backup time closed the shutter: ≈ 1.25 × target / 2
        assert res["outcome"] == "interrupted" and 0.5 * target < res["delivered_dose_mj_cm2"] < 0.7 * target
        assert audit(rec).same
    assert main(["audit", str(result.recording)]) == 0


def test_after_a_backup_time_trip_the_rest_of_the_step_waits_for_a_radiometer_check(sim):
    """Findings v10 #1: a reset and resume after `backup_time` let the same low sensor measure "what is left" (the
    skin got 191 % of the plan over three runs). Now the light step is not resumed, nor any light step started,
    until a radiometer check is recorded after the trip; the session can end, saving what was given."""
    from workstation.session.session import Session, SessionError, State, Step

    rig, tap = sim
    emu = rig.emulators["light"]
    session = Session(rig.bus, rig.devices, rig.monitor, operator_id="dr-test")
    session.connect("dr-test")
    session.load_plan([Step("a", "abdomen", "light", target_dose_mj_cm2=50.0, area_dose_cap_mj_cm2=1000.0)],
                      "dr-test")
    emu.sensor_low(0.5)
    session.arm("dr-test")
    first = session.run_step("dr-test")
    assert first.outcome == "interrupted" and session.state == State.PAUSED
    assert InterlockCause.BACKUP_TIME in {t.interlock for t in rig.monitor.trips}
    true_dose = emu.state().true_dose_mj_cm2
    assert true_dose > first.delivered_dose_mj_cm2 * 1.5  # the sensor read about half
    rig.monitor.reset_checked("dr-test")  # the cause (a closed shutter) is gone: the reset itself is allowed
    with pytest.raises(SessionError, match="radiometer check"):
        session.resume("dr-test")
    assert session.state == State.PAUSED and len(session.results) == 1
    assert not emu.state().active and emu.state().true_dose_mj_cm2 == pytest.approx(true_dose)
    session.finish("dr-test")  # what was given is kept: partial
    assert session.state == State.ABORTED and session.outcome() == "partial"


def test_a_recorded_radiometer_check_lets_the_step_go_on(sim, tmp_path):
    from workstation.session.session import Session, SessionError, State, Step
    from workstation.store import ClinicStore
    from workstation.store.calibration import add_check, check_since

    rig, tap = sim
    emu = rig.emulators["light"]
    session = Session(rig.bus, rig.devices, rig.monitor, operator_id="dr-test")
    session.connect("dr-test")
    session.load_plan([Step("a", "abdomen", "light", target_dose_mj_cm2=40.0, area_dose_cap_mj_cm2=1000.0)],
                      "dr-test")
    emu.sensor_low(0.5)
    session.arm("dr-test")
    session.run_step("dr-test")
    rig.monitor.reset_checked("dr-test")
    serial = rig.devices["light"].identity.serial_number
    at = session.sensor_doubt_at["light"]
    store = ClinicStore.open(tmp_path / "s.sqlite3", training=True, recordings_root=tmp_path)
    try:
        assert check_since(store, serial, at) is None
        import datetime as dt
        add_check(store, serial, dt.date.today(), "Solarmeter 8.0 #1", 100.0, 50.0, "dr-test")
        check = check_since(store, serial, at)
        assert check is not None and check.factor == 2.0
    finally:
        store.close()
    session.sensor_checked("light", check.who, "checked")
    assert any(e.kind == "sensor_checked" for e in tap.events)
    session.resume("dr-test")
    assert session.state == State.ARMED
    with pytest.raises(SessionError):
        session.resume("dr-test")  # only a paused session resumes: the refusal above was the doubt, not this


def test_an_implausible_expected_irradiance_prepares_no_exposure(sim):
    """Findings v10 #2: a calibration of 0.001 mW/cm² gave the device's maximum backup time (3600 s), which is no
    bound. Now the expected irradiance must be in the one plausible range (drivers/channels.py), or no target."""
    from drivers.channels import (
        MAX_IRRADIANCE_MW_CM2,
        MIN_EXPECTED_IRRADIANCE_MW_CM2,
        NOMINAL_IRRADIANCE_MW_CM2,
    )

    for bad in (0.001, 0.05, MIN_EXPECTED_IRRADIANCE_MW_CM2 - 0.01, MAX_IRRADIANCE_MW_CM2 + 0.01, True):
        with pytest.raises(DeviceError, match="not plausible"):
            backup_time_s(220.0, bad)
    for target in (1.0, 220.0, 5000.0):  # over the whole plausible range: at most 3 × the nominal exposure
        nominal_s = target / NOMINAL_IRRADIANCE_MW_CM2
        assert backup_time_s(target, MIN_EXPECTED_IRRADIANCE_MW_CM2) <= 3 * nominal_s + BACKUP_TIME_EXTRA_S
    rig, tap = sim
    light, emu = rig.devices["light"], rig.emulators["light"]
    light.calibrated_irradiance_mw_cm2 = 0.001  # as a device reporting it, or an old check in the store
    before = len([c for c in tap.commands if c.command == "set"])
    with pytest.raises(DeviceError, match="radiometer check"):
        light.set_target_dose(100.0)
    assert len([c for c in tap.commands if c.command == "set"]) == before  # nothing was sent
    assert not emu.state().target_dose_mj_cm2  # none set


def test_after_a_sensor_implausible_trip_the_light_waits_for_a_radiometer_check_too(sim):
    import threading

    from workstation.session.session import Session, SessionError, State, Step

    rig, tap = sim
    emu = rig.emulators["light"]
    session = Session(rig.bus, rig.devices, rig.monitor, operator_id="dr-test")
    session.connect("dr-test")
    session.load_plan([Step("a", "abdomen", "light", target_dose_mj_cm2=200.0, area_dose_cap_mj_cm2=1000.0)],
                      "dr-test")
    session.arm("dr-test")
    worker = threading.Thread(target=session.run_step, args=("dr-test",))
    worker.start()
    wait_for(lambda: emu.state().emitting, what="emitting")
    emu.sensor_glitch()
    worker.join(5)
    assert session.state == State.PAUSED
    assert rig.monitor.trips[0].interlock == InterlockCause.SENSOR_IMPLAUSIBLE
    rig.monitor.reset_checked("dr-test")
    with pytest.raises(SessionError, match="cannot be true.*radiometer check"):
        session.resume("dr-test")
