"""Driver for the UVB/308 nm phototherapy handpiece (dose-controlled exposure: the device closes its own shutter).

Two bounds on every exposure (CLINICAL.md, "Backup time", Daavlin technical notes on integrating dosimetry): the
device closes at the target dose *or* at a backup time, whichever comes first, so a sensor that reads low cannot
prolong the exposure. Whenever the target dose is set, the driver first sends the backup time computed from that
target and the irradiance the device was calibrated at (`backup_time_s`).
"""

from __future__ import annotations

from drivers import protocol as p
from drivers.base import DeviceError, SerialDevice
from drivers.channels import LIGHT_CHANNELS
from drivers.interfaces import LightSource
from drivers.plausibility import EXPECTED_IRRADIANCE_308_MW_CM2, expected_irradiance_problem
from drivers.types import Bound, DriverInfo

# CLINICAL.md, turn 2, "Backup time": team default margin 1.25 × the expected time at the calibrated irradiance.
BACKUP_TIME_MARGIN = 1.25
# Plus the shutter's opening and closing (5 ms each on the handpiece) and one 10 ms telemetry frame, so that a very
# short exposure at exactly the calibrated output is not cut by its own mechanics.
BACKUP_TIME_EXTRA_S = 0.02
BACKUP_TIME_RANGE_S = (0.01, 3600.0)  # the device's bound (the host never asks for more than ~125 s)


def backup_time_s(target_dose_mj_cm2: float, expected_irradiance_mw_cm2: float,
                  plausible: tuple[float, float] = EXPECTED_IRRADIANCE_308_MW_CM2,
                  what: str = "a 308 nm handpiece") -> float:
    """Backup exposure time in s: 1.25 × target / expected irradiance + 0.02 s (1 mW/cm² for 1 s = 1 mJ/cm²).

    Raises DeviceError if the expected irradiance is not plausible (`drivers.plausibility.expected_irradiance_problem`:
    50–300 mW/cm²): no backup can be computed, so no exposure may be prepared. (A tiny irradiance once gave the
    device's maximum of 3600 s, which is no bound; at 50 mW/cm² the 5000 mJ/cm² maximum takes 125 s.)
    """
    problem = expected_irradiance_problem(expected_irradiance_mw_cm2, plausible, what)
    if problem:
        raise DeviceError(f"the expected irradiance is not plausible ({problem}): no backup time can be computed; "
                          "run a radiometer check of the light (the program's `devices check` command)")
    t = BACKUP_TIME_MARGIN * float(target_dose_mj_cm2) / float(expected_irradiance_mw_cm2) + BACKUP_TIME_EXTRA_S
    return min(max(t, BACKUP_TIME_RANGE_S[0]), BACKUP_TIME_RANGE_S[1])


class UVB308Light(SerialDevice, LightSource):
    INFO = DriverInfo(
        name="light-uvb308",
        kind="light",
        version="1.1.0",
        description="Targeted UVB / 308 nm phototherapy handpiece, Cicatrix wire protocol v2",
        nominal_rate_hz=2000.0,
        channels=LIGHT_CHANNELS,
        # The device's own range: the NB-UVB maximum for skin types V–VI (CLINICAL.md, JAAD Table IV). Protocol caps,
        # lower, are enforced by the dose engine and the safety monitor.
        bounds=(Bound("target_dose_mj_cm2", "mJ/cm²", 1.0, 5000.0), Bound("backup_time_s", "s", *BACKUP_TIME_RANGE_S)),
        model_prefixes=("UVB-308",),
        protocol_versions=(p.PROTOCOL_VERSION,),
    )
    # The irradiance an exposure may plausibly be expected at (its backup time is computed from it): a driver for
    # another light declares its own range.
    EXPECTED_IRRADIANCE_MW_CM2 = EXPECTED_IRRADIANCE_308_MW_CM2
    BLOCK_DTYPE = p.LIGHT_BLOCK
    WIRE_HEADER, WIRE_SAMPLE = p.LIGHT_HEADER, p.LIGHT_SAMPLE
    PARAMS = {"target_dose_mj_cm2": p.LightParam.TARGET_DOSE_MJ_CM2, "backup_time_s": p.LightParam.BACKUP_TIME_S}
    FAULTS = p.LightFault
    DEFAULT_NAME = "light"
    active_channel = "shutter_open"

    calibrated_irradiance_mw_cm2: float | None = None  # set from the clinic store's last radiometer check, if any
    backup_time_s: float | None = None  # the backup time last sent with a target

    def set_target_dose(self, dose_mj_cm2: float) -> float:
        """Set the target dose (mJ/cm², within INFO.bounds) after its backup time (s, `backup_time_s`); returns the
        dose sent. Raises BoundsError (nothing sent), DeviceError (no plausible expected irradiance: nothing sent),
        NotConnected, CommandRefused, CommandTimeout."""
        return self._set("target_dose_mj_cm2", dose_mj_cm2)

    def _set(self, param: str, value: float) -> float:
        """As `SerialDevice._set`; a target dose is preceded by its backup time (so the two always travel together)."""
        if param == "target_dose_mj_cm2":
            target = next(b for b in self.INFO.bounds if b.name == param).check(value)
            backup = backup_time_s(target, self.expected_irradiance_mw_cm2(), self.EXPECTED_IRRADIANCE_MW_CM2,
                                   self.INFO.description)
            self.backup_time_s = super()._set("backup_time_s", round(backup, 3))
        return super()._set(param, value)

    def expected_irradiance_mw_cm2(self) -> float:
        """The irradiance the exposure is expected at: the store's radiometer check if given, else the device's
        calibration report (IDENTITY `calibration.irradiance_mw_cm2`). Raises DeviceError if neither is known."""
        if self.calibrated_irradiance_mw_cm2 is not None:
            return float(self.calibrated_irradiance_mw_cm2)
        cal = self.identity.extra.get("calibration") if self.identity else None
        value = cal.get("irradiance_mw_cm2") if isinstance(cal, dict) else None
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise DeviceError(f"{self.name} reports no calibrated irradiance, so no backup exposure time can be "
                              "computed: run a radiometer check (`python main.py devices`)")
        return float(value)
