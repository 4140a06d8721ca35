"""Dosimetry QA on record (issue 10): radiometer checks per device serial in a real SQLite store, the status a plan
must show, the plan hook, `main.py devices`, and the emulator's radiometer reading."""

from __future__ import annotations

import dataclasses
import time
from datetime import date, timedelta

import pytest

from drivers.emulators.lamp import LampParams
from drivers.emulators.light import LightEmulator
from main import main
from workstation.dose.plan import SessionPlan
from workstation.errors import UserError
from workstation.store import LATEST_VERSION
from workstation.store import calibration as cal
from workstation.store.clinic_store import ClinicStore

IDENT = {"model": "UVB-308 excimer handpiece", "serial_number": "UVB-42", "lamp_hours": 812.5,
         "calibration": {"factor": 1.0, "date": "2026-11-02", "irradiance_mw_cm2": 95.0}}
TODAY = date(2026, 11, 30)


@pytest.fixture
def store(tmp_path):
    s = ClinicStore.open(tmp_path / "clinic.sqlite3", training=False)
    yield s
    s.close()


def test_the_migration_adds_the_tables(store):
    assert store.schema_version == LATEST_VERSION
    names = {r[0] for r in store._all("SELECT name FROM sqlite_master WHERE type = 'table'")}
    assert {"devices", "radiometer_checks", "calibration_overrides"} <= names


def test_a_check_keeps_its_factor_and_the_device_its_hours(store):
    cal.record_device(store, IDENT, "light")
    check = cal.add_check(store, "UVB-42", TODAY, "Solarmeter 8.0 #77", 90.0, 100.0, "dr. A")
    assert check.factor == pytest.approx(0.9)
    (dev,) = cal.devices(store)
    assert dev.lamp_hours == 812.5 and dev.last_check == check and dev.due_on == TODAY + timedelta(days=7)


@pytest.mark.parametrize("measured, reported, meter, who", [
    (0.0, 100.0, "m", "a"), (90.0, float("nan"), "m", "a"), (90.0, 100.0, " ", "a"), (90.0, 100.0, "m", ""),
    # findings v10 #2 and #8: the driver's plausible range for an expected irradiance, and a factor far from 1
    (0.001, 0.001, "m", "a"), (49.9, 50.0, "m", "a"), (500.0, 100.0, "m", "a"), (300.1, 300.0, "m", "a"),
    (100.0, 301.0, "m", "a"), (150.0, 70.0, "m", "a"), (60.0, 130.0, "m", "a"), (True, 100.0, "m", "a"),
])
def test_an_impossible_check_is_refused_in_words(store, measured, reported, meter, who):
    with pytest.raises(UserError):
        cal.add_check(store, "UVB-42", TODAY, meter, measured, reported, who)
    assert not store._all("SELECT * FROM radiometer_checks")


def test_the_devices_check_command_refuses_an_implausible_reading_in_words(tmp_path, capsys):
    db = tmp_path / "clinic.sqlite3"
    for measured, reported, words in (("0.001", "0.001", "not plausible"), ("500", "100", "not plausible"),
                                      ("200", "50", "sensor is broken")):
        assert main(["devices", "--store", str(db), "check", "--serial", "UVB-42", "--meter", "m", "--measured",
                     measured, "--reported", reported, "--who", "dr. A"]) == 2
        err = capsys.readouterr().err
        assert words in err and "Traceback" not in err
    with ClinicStore.open(db, training=False) as s:
        assert not s._all("SELECT * FROM radiometer_checks")


def test_status_no_check_overdue_mismatch_and_override(store):
    cal.record_device(store, IDENT, "light")
    assert "no radiometer check" in cal.status(store, "UVB-42", 1.0, TODAY).problems[0]
    cal.add_check(store, "UVB-42", TODAY, "meter", 100.0, 100.0, "dr. A")
    assert cal.status(store, "UVB-42", 1.0, TODAY).problems == ()
    assert cal.status(store, "UVB-42", 1.0, TODAY + timedelta(days=7)).problems == ()
    late = cal.status(store, "UVB-42", 1.0, TODAY + timedelta(days=8))
    assert "past its interval" in late.problems[0] and late.blocks_clinical_use
    cal.set_interval_days(store, 30)
    assert cal.status(store, "UVB-42", 1.0, TODAY + timedelta(days=8)).problems == ()
    mismatch = cal.status(store, "UVB-42", 1.1, TODAY)
    assert "factor of 1.1" in mismatch.problems[0]
    cal.record_device(store, {**IDENT, "calibration": {"factor": 1.1}}, "light")  # as it now reports itself
    cal.override(store, "UVB-42", "radiometer at the service centre", "dr. A", TODAY)
    assert not cal.status(store, "UVB-42", 1.1, TODAY).blocks_clinical_use
    assert cal.status(store, "UVB-42", 1.1, TODAY + timedelta(days=1)).blocks_clinical_use  # only for that day


def test_the_plan_gets_a_warning_in_training_and_a_block_in_clinical_mode(store):
    plan = SessionPlan(course_id=1, protocol_id="p", protocol_version=1, visit_date=TODAY, session_number=1,
                       areas=())
    cal.record_device(store, IDENT, "light")
    st = cal.status(store, "UVB-42", 1.0, TODAY)
    assert cal.with_calibration(plan, st, clinical=False).warnings and not cal.with_calibration(
        plan, st, clinical=False).blocks
    assert "Dosimetry QA" in cal.with_calibration(plan, st, clinical=True).blocks[0]
    cal.add_check(store, "UVB-42", TODAY, "meter", 95.0, 95.0, "dr. A")
    assert cal.with_calibration(plan, cal.status(store, "UVB-42", 1.0, TODAY), clinical=True) == plan


def test_the_emulator_offers_a_radiometer_reading_that_shows_a_low_sensor():
    emu = LightEmulator(lamp=LampParams(warmup_s=0.1), seed=3).start()
    try:
        time.sleep(0.2)
        true = emu.radiometer_reading_mw_cm2()
        assert 90.0 < true < 100.0
        emu.sensor_low(0.5)  # the device would now report half: a check finds factor ≈ 2
        assert emu.radiometer_reading_mw_cm2() == pytest.approx(true, rel=0.01)
    finally:
        emu.stop()


def test_main_devices_lists_checks_and_due_dates(tmp_path, capsys):
    db = tmp_path / "training.sqlite3"
    assert main(["devices", "--store", str(db), "--training", "check", "--simulate", "--meter", "Solarmeter #1",
                 "--who", "trainer"]) == 0
    assert "factor" in capsys.readouterr().out
    assert main(["devices", "--store", str(db), "--training"]) == 0
    out = capsys.readouterr().out
    assert "UVB308-EMU-0001" in out and "lamp 350" in out and f"due {date.today() + timedelta(days=7)}" in out
    assert main(["devices", "--store", str(db), "--training", "interval", "0"]) == 2
    assert "whole number of days" in capsys.readouterr().err


@pytest.mark.parametrize("training", [True, False], ids=["training", "clinic"])
def test_the_plan_hook_records_the_connected_light_and_sets_its_backup_basis(tmp_path, training):
    from drivers.light import UVB308Light
    from workstation.dose.plan import Step

    plan = SessionPlan(course_id=1, protocol_id="p", protocol_version=1, visit_date=date.today(), session_number=1,
                       areas=(), steps=(Step("light", 1),))
    emu = LightEmulator(lamp=LampParams(warmup_s=0.1), seed=4).start()
    try:
        with ClinicStore.open(tmp_path / "s.sqlite3", training=training) as store, UVB308Light(emu.port) as light:
            first = cal.apply_to_plan(store, light, plan, date.today())
            assert (first.blocks if not training else first.warnings)[0].startswith("Dosimetry QA")
            assert (first.warnings if not training else first.blocks) == ()
            assert [d.serial_number for d in cal.devices(store)] == [emu.serial_number]
            assert light.calibrated_irradiance_mw_cm2 is None  # no check yet: the device's own report
            cal.add_check(store, emu.serial_number, date.today(), "meter", 90.0, 95.0, "dr. A")
            light.identity.extra["calibration"]["factor"] = 90.0 / 95.0  # recalibrated to the check
            assert cal.apply_to_plan(store, light, plan, date.today()) == plan
            assert light.calibrated_irradiance_mw_cm2 == 90.0
            light.set_target_dose(90.0)  # the backup time now comes from the store's check
            assert light.backup_time_s == pytest.approx(1.25 * 90.0 / 90.0 + 0.02, abs=1e-3)
            no_light = SessionPlan(course_id=1, protocol_id="p", protocol_version=1, visit_date=date.today(),
                                   session_number=1, areas=(), steps=(Step("needling", 1),))
            assert cal.apply_to_plan(store, light, no_light, date.today() + timedelta(days=30)) == no_light
    finally:
        emu.stop()


def test_an_override_needs_something_to_override_and_the_list_shows_it(tmp_path, capsys):
    """Findings v10 #9: an override was accepted for a device neither overdue nor mismatched, and the list did not
    show today's override."""
    db = tmp_path / "clinic.sqlite3"
    with ClinicStore.open(db, training=False) as s:
        cal.record_device(s, IDENT, "light")
        cal.add_check(s, "UVB-42", date.today(), "meter", 95.0, 95.0, "dr. A")
        with pytest.raises(UserError, match="nothing to override"):
            cal.override(s, "UVB-42", "just in case", "dr. A", date.today())
        assert not s._all("SELECT * FROM calibration_overrides")
        cal.record_device(s, {**IDENT, "calibration": {"factor": 1.2}}, "light")  # recalibrated elsewhere
        cal.override(s, "UVB-42", "radiometer at the service centre", "dr. B", date.today())
    assert main(["devices", "--store", str(db)]) == 0
    assert "overridden today: radiometer at the service centre (dr. B)" in capsys.readouterr().out


def test_a_calibration_block_takes_the_light_out_of_the_visit_and_a_light_only_visit_cannot_start(store):
    """From the fresh tester of issue 17: the plan showed "BLOCK: Dosimetry QA …" and Start treatment let the light
    emit. A block removes the light steps (needling stays); a visit left with nothing refuses to start, saying why;
    an override for the day gives the light back, with the sentence as a warning."""
    from workstation.dose.plan import Step

    plan = SessionPlan(course_id=1, protocol_id="p", protocol_version=1, visit_date=TODAY, session_number=1,
                       areas=(), steps=(Step("light", 1), Step("needling", 1)))
    cal.record_device(store, IDENT, "light")
    blocked = cal.with_calibration(plan, cal.status(store, "UVB-42", 1.0, TODAY), clinical=True)
    assert [s.modality for s in blocked.steps] == ["needling"] and "no light today" in blocked.blocks[0]
    light_only = dataclasses.replace(plan, steps=(Step("light", 1),))
    nothing = cal.with_calibration(light_only, cal.status(store, "UVB-42", 1.0, TODAY), clinical=True)
    assert nothing.steps == () and nothing.nothing_to_treat_reason().startswith("Dosimetry QA")
    assert [s.modality for s in cal.with_calibration(plan, cal.status(store, "UVB-42", 1.0, TODAY),
                                                     clinical=False).steps] == ["light", "needling"]
