"""Dosimetry QA on record: light devices by serial number, their radiometer checks, and the calibration status a plan
must show (CLINICAL.md, "Dosimetry QA": Moseley et al., BJD 2015; JAAD NB-UVB guideline: meter UVB lamps weekly).

A check compares a calibrated reference radiometer held at the handpiece window with the irradiance the device
reports at the same moment; `factor = measured / reported` is what the device's readings must be multiplied by to be
true. A calibration is *due* once its interval has passed (a clinic setting, default `seeds/tables/dosimetry.toml`);
it is *mismatched* when the factor the device reports in its identity differs from the store's last check by more
than the tolerance. Either is a warning on the plan, and a block in clinical mode until a new check is recorded or
the block is overridden (reason, who; valid for that day).
"""

from __future__ import annotations

import dataclasses
import math
import tomllib
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any

from drivers.channels import CHECK_FACTOR_RANGE, MAX_IRRADIANCE_MW_CM2
from drivers.plausibility import expected_irradiance_problem
from workstation.errors import UserError
from workstation.protocols.library import seeds_dir
from workstation.store.clinic_store import ClinicStore
from workstation.terminal import quoted

INTERVAL_KEY = "calibration_interval_days"  # clinic setting in the store's meta table


@dataclass(frozen=True, slots=True)
class DosimetryDefaults:
    interval_days: int
    factor_tolerance: float


def defaults() -> DosimetryDefaults:
    """The factory defaults from seeds/tables/dosimetry.toml; a missing or broken file is a UserError in words."""
    path = seeds_dir() / "tables" / "dosimetry.toml"
    try:
        section = tomllib.loads(path.read_text(encoding="utf-8"))["radiometer_check"]
        interval, tolerance = int(section["interval_days"]), float(section["factor_tolerance"])
    except (OSError, tomllib.TOMLDecodeError, KeyError, TypeError, ValueError) as exc:
        raise UserError(f"The dosimetry table {path} could not be read ({exc}); restore it from the release.") from exc
    if interval < 1 or not 0 < tolerance < 1:
        raise UserError(f"The dosimetry table {path} holds an impossible interval or tolerance; restore it.")
    return DosimetryDefaults(interval, tolerance)


@dataclass(frozen=True, slots=True)
class RadiometerCheck:
    serial_number: str
    checked_on: date
    reference_meter: str
    measured_mw_cm2: float
    reported_mw_cm2: float
    factor: float
    who: str


@dataclass(frozen=True, slots=True)
class DeviceRecord:
    serial_number: str
    kind: str
    model: str
    lamp_hours: float | None
    reported_factor: float | None
    last_seen: str
    last_check: RadiometerCheck | None
    due_on: date | None  # None: never checked (due now)


@dataclass(frozen=True, slots=True)
class CalibrationStatus:
    serial_number: str
    problems: tuple[str, ...]  # sentences; empty when the calibration is current and matches
    overridden: str = ""  # the reason of today's override, if any

    @property
    def blocks_clinical_use(self) -> bool:
        return bool(self.problems) and not self.overridden


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


def record_device(store: ClinicStore, identity: dict[str, Any], kind: str) -> None:
    """Remember a connected device (by serial number) with its lamp hours and reported calibration factor."""
    serial = str(identity.get("serial_number") or "").strip()
    if not serial or serial == "?":
        raise UserError("The device reported no serial number, so its calibration cannot be kept on record.")
    cal = identity.get("calibration")
    factor = cal.get("factor") if isinstance(cal, dict) else None
    hours = identity.get("lamp_hours")
    now = _now()
    with store.transaction() as c:
        c.execute(
            "INSERT INTO devices (serial_number, kind, model, lamp_hours, reported_factor, first_seen, last_seen) "
            "VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT (serial_number) DO UPDATE SET kind = excluded.kind, "
            "model = excluded.model, lamp_hours = excluded.lamp_hours, reported_factor = excluded.reported_factor, "
            "last_seen = excluded.last_seen",
            (serial, kind, str(identity.get("model", "?")), _number_or_none(hours), _number_or_none(factor), now, now))


def check_reading(measured_mw_cm2: float, reported_mw_cm2: float) -> float:
    """The factor measured / reported of a radiometer reading, or UserError in words when the reading is impossible
    (checked before anything else, so an impossible reading is refused before anyone signs in)."""
    # The measured irradiance becomes the expected one (the backup times): the driver's own plausible range.
    problem = expected_irradiance_problem(measured_mw_cm2)
    if problem:
        raise UserError(f"The measured irradiance is not plausible: {problem}. Check the reference meter's reading "
                        "and the lamp; nothing was recorded.")
    if (isinstance(reported_mw_cm2, bool) or not isinstance(reported_mw_cm2, (int, float))
            or not math.isfinite(reported_mw_cm2) or not 0 < reported_mw_cm2 <= MAX_IRRADIANCE_MW_CM2):
        raise UserError(f"The reported irradiance must be a number of mW/cm² above 0 and up to "
                        f"{MAX_IRRADIANCE_MW_CM2:g} (the handpiece's sensor range), not {quoted(reported_mw_cm2)}.")
    factor = measured_mw_cm2 / reported_mw_cm2
    low, high = CHECK_FACTOR_RANGE
    if not low <= factor <= high:
        raise UserError(f"The device reports {reported_mw_cm2:g} mW/cm² where the reference meter reads "
                        f"{measured_mw_cm2:g} (factor {factor:.3g}, outside {low:g}–{high:g}): its sensor is broken, "
                        "not off calibration. Have the device serviced; nothing was recorded.")
    return factor


def add_check(store: ClinicStore, serial_number: str, checked_on: date, reference_meter: str,
              measured_mw_cm2: float, reported_mw_cm2: float, who: str) -> RadiometerCheck:
    """Record a radiometer check; the factor is measured / reported. Raises UserError on impossible input."""
    serial_number = serial_number.strip()
    if not serial_number:
        raise UserError("A radiometer check needs the device's serial number.")
    if not reference_meter.strip() or not who.strip():
        raise UserError("A radiometer check needs the reference meter (make and serial) and who made it.")
    factor = check_reading(measured_mw_cm2, reported_mw_cm2)
    check = RadiometerCheck(serial_number, checked_on, reference_meter.strip(), float(measured_mw_cm2),
                            float(reported_mw_cm2), round(factor, 4), who.strip())
    with store.transaction() as c:
        now = _now()  # a light checked before it was ever connected here is put on record by its check
        c.execute("INSERT INTO devices (serial_number, kind, model, first_seen, last_seen) "
                  "VALUES (?, 'light', '?', ?, ?) ON CONFLICT (serial_number) DO NOTHING", (serial_number, now, now))
        c.execute("INSERT INTO radiometer_checks (serial_number, checked_on, reference_meter, measured_mw_cm2, "
                  "reported_mw_cm2, factor, who, at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                  (serial_number, checked_on.isoformat(), check.reference_meter, check.measured_mw_cm2,
                   check.reported_mw_cm2, check.factor, check.who, _now()))
    return check


def last_check(store: ClinicStore, serial_number: str) -> RadiometerCheck | None:
    row = store._one("SELECT * FROM radiometer_checks WHERE serial_number = ? ORDER BY checked_on DESC, id DESC "
                     "LIMIT 1", (serial_number,))
    if row is None:
        return None
    return RadiometerCheck(row["serial_number"], date.fromisoformat(row["checked_on"]), row["reference_meter"],
                           row["measured_mw_cm2"], row["reported_mw_cm2"], row["factor"], row["who"])


def check_since(store: ClinicStore, serial_number: str, at_utc_iso: str) -> RadiometerCheck | None:
    """The last radiometer check of the device recorded at or after `at_utc_iso` (UTC, ISO seconds), or None."""
    row = store._one("SELECT * FROM radiometer_checks WHERE serial_number = ? AND at >= ? ORDER BY id DESC LIMIT 1",
                     (serial_number, at_utc_iso))
    if row is None:
        return None
    return RadiometerCheck(row["serial_number"], date.fromisoformat(row["checked_on"]), row["reference_meter"],
                           row["measured_mw_cm2"], row["reported_mw_cm2"], row["factor"], row["who"])


def interval_days(store: ClinicStore) -> int:
    row = store._one("SELECT value FROM meta WHERE key = ?", (INTERVAL_KEY,))
    return int(row["value"]) if row else defaults().interval_days


def set_interval_days(store: ClinicStore, days: int) -> None:
    if not isinstance(days, int) or not 1 <= days <= 366:
        raise UserError(f"The calibration interval must be a whole number of days from 1 to 366, not {quoted(days)}.")
    with store.transaction() as c:
        c.execute("INSERT INTO meta (key, value) VALUES (?, ?) ON CONFLICT (key) DO UPDATE SET value = excluded.value",
                  (INTERVAL_KEY, str(days)))


def override(store: ClinicStore, serial_number: str, reason: str, who: str, on: date) -> None:
    """Let a device with an overdue or mismatched calibration be used on `on`, for a stated reason."""
    if not reason.strip() or not who.strip():
        raise UserError("An override of the calibration needs a reason and who gives it.")
    if not _known(store, serial_number):
        raise UserError(f"No device with serial number {serial_number} is on record.")
    row = store._one("SELECT reported_factor FROM devices WHERE serial_number = ?", (serial_number,))
    if not status(store, serial_number, row["reported_factor"], on).problems:
        raise UserError(f"The light {serial_number} has a current radiometer check that matches its reported "
                        "calibration: there is nothing to override.")
    with store.transaction() as c:
        c.execute("INSERT INTO calibration_overrides (serial_number, reason, who, on_date, at) VALUES (?, ?, ?, ?, ?)",
                  (serial_number, reason.strip(), who.strip(), on.isoformat(), _now()))


def status(store: ClinicStore, serial_number: str, reported_factor: float | None, today: date) -> CalibrationStatus:
    """What the plan must say about this device's calibration today."""
    problems = []
    check = last_check(store, serial_number)
    if check is None:
        problems.append(f"the light {serial_number} has no radiometer check on record")
    else:
        due = check.checked_on + timedelta(days=interval_days(store))
        if today > due:
            problems.append(f"the light {serial_number}'s radiometer check of {check.checked_on} is past its "
                            f"interval (due {due})")
        tolerance = defaults().factor_tolerance
        if reported_factor is not None and abs(reported_factor - check.factor) > tolerance * check.factor:
            problems.append(f"the light {serial_number} reports a calibration factor of {reported_factor:g}, the "
                            f"store's last check found {check.factor:g}")
    return CalibrationStatus(serial_number, tuple(problems), override_on(store, serial_number, today))


def override_on(store: ClinicStore, serial_number: str, day: date) -> str:
    """The reason of the device's override for `day` ("" if none), with who gave it."""
    row = store._one("SELECT reason, who FROM calibration_overrides WHERE serial_number = ? AND on_date = ? "
                     "ORDER BY id DESC LIMIT 1", (serial_number, day.isoformat()))
    return f"{row['reason']} ({row['who']})" if row else ""


def with_calibration(plan: Any, cal: CalibrationStatus, *, clinical: bool) -> Any:
    """The plan with the calibration's problems added: blocks in clinical mode (unless overridden), else warnings.
    A block takes the light steps out of the plan (needling stays): a sentence alone did not stop the light (the fresh
    tester of issue 17 started one and it emitted). `plan` is a `workstation.dose.plan.SessionPlan` (frozen; its
    `blocks` and `warnings` are tuples of sentences, `steps` the visit's steps)."""
    if not cal.problems:
        return plan
    from workstation.progname import command

    text = "Dosimetry QA: " + "; ".join(cal.problems) + f". Run a radiometer check (`{command('devices check')}`)"
    if cal.overridden:
        return dataclasses.replace(plan, warnings=(*plan.warnings, f"{text} — overridden today: {cal.overridden}."))
    if clinical:
        return dataclasses.replace(plan, blocks=(*plan.blocks, f"{text} or override with a reason; no light today "
                                                               "until then."),
                                   steps=tuple(s for s in plan.steps if s.modality != "light"))
    return dataclasses.replace(plan, warnings=(*plan.warnings, f"{text}."))


def apply_to_plan(store: ClinicStore, light: Any, plan: Any, today: date) -> Any:
    """The hook where a plan is produced: with the connected light (a `drivers.light.UVB308Light`, or None), put it
    on record, give it the irradiance of its last radiometer check (its backup times are computed from it), and add
    the calibration's problems to a plan that has a light step: a block in the clinic store, a warning in training."""
    ident = light.identity.as_dict() if light is not None and getattr(light, "identity", None) else None
    if ident is None or not any(getattr(s, "modality", "") == "light" for s in plan.steps):
        return plan
    record_device(store, ident, "light")
    serial = str(ident["serial_number"])
    check = last_check(store, serial)
    if check is not None:
        light.calibrated_irradiance_mw_cm2 = check.measured_mw_cm2
    reported = ident.get("calibration")
    factor = _number_or_none(reported.get("factor")) if isinstance(reported, dict) else None
    return with_calibration(plan, status(store, serial, factor, today), clinical=store.role == "clinic")


def devices(store: ClinicStore) -> list[DeviceRecord]:
    """Every device on record with its last check and the date the next one is due."""
    days = interval_days(store)
    out = []
    for row in store._all("SELECT * FROM devices ORDER BY kind, serial_number"):
        check = last_check(store, row["serial_number"])
        out.append(DeviceRecord(row["serial_number"], row["kind"], row["model"], row["lamp_hours"],
                                row["reported_factor"], row["last_seen"], check,
                                check.checked_on + timedelta(days=days) if check else None))
    return out


def _known(store: ClinicStore, serial_number: str) -> bool:
    return store._one("SELECT 1 FROM devices WHERE serial_number = ?", (serial_number,)) is not None


def _number_or_none(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        return None
    return float(value)
