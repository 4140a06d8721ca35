"""Backup exposure time, end to end: computed by the driver from the target and the calibrated irradiance, sent with
the target, enforced by the device, watched by the host (`backup_time`). Trainer fault: `sensor_low`."""

from __future__ import annotations

import math
import time

import pytest

from drivers.base import DeviceError
from drivers.light import BACKUP_TIME_EXTRA_S, BACKUP_TIME_MARGIN, backup_time_s
from tests.conftest import Tap, wait_for
from tests.test_interlocks import assert_off, light_limits, tripped
from workstation.rig import Rig
from workstation.safety import BACKUP_TIME_TOLERANCE_S, Interlock


@pytest.fixture
def sim():
    rig = Rig.simulation(seed=13, light_warmup_s=0.2)
    tap = Tap()
    rig.bus.subscribe(tap)
    time.sleep(0.3)  # lamp warm
    yield rig, tap
    rig.close()


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
    light.set("target_dose_mj_cm2", 200.0)  # the session's own call
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
    ev = tripped(tap, Interlock.BACKUP_TIME, "light", timeout_s=3.0)
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
    ev = tripped(tap, Interlock.BACKUP_TIME, "light", timeout_s=3.0)
    assert ev.details.get("detected_by") != "device"
    assert ev.details["open_s"] > ev.details["backup_time_s"] + BACKUP_TIME_TOLERANCE_S
    assert ev.details["latency_ms"] < 50
    assert_off(rig, "light")
    # open for at most the backup time, the tolerance, one frame and the shutter (plus scheduling on a loaded box)
    limit_s = light.backup_time_s + BACKUP_TIME_TOLERANCE_S + 0.010 + 0.005 + 0.025
    assert emu.state().true_dose_mj_cm2 <= 110.0 * limit_s


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
    from workstation.audit import audit
    from workstation.protocols.library import seeds_dir
    from workstation.recording import Recording
    from workstation.runner import EXIT_INTERLOCK, run_scenario
    from workstation.scenario import load_scenario

    result = run_scenario(load_scenario(seeds_dir() / "scenarios" / "sensor-low-backup-time.toml"), tmp_path,
                          out=lambda _line: None)
    assert result.exit_code == EXIT_INTERLOCK and result.state == "aborted"
    [res] = result.summary["results"]
    with Recording.open(result.recording) as rec:
        trips = [e for e in rec.events if e.kind == "interlock"]
        assert trips[0].details["interlock"] == Interlock.BACKUP_TIME, trips[0].message
        assert trips[0].details["detected_by"] == "device"
        target = rec.plan["areas"][0]["target_dose_mj_cm2"]  # 220 mJ/cm², skin type II
        # the sensor's (half) reading when the backup time closed the shutter: ≈ 1.25 × target / 2
        assert res["outcome"] == "interrupted" and 0.5 * target < res["delivered_dose_mj_cm2"] < 0.7 * target
        assert audit(rec).same
    assert main(["audit", str(result.recording)]) == 0
