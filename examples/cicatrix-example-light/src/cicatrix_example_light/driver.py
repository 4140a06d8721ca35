"""Driver for the EXL-311: a narrowband (311 nm) UVB handpiece speaking the Cicatrix wire protocol v2.

The device is a variant of the built-in UVB-308 light: the same telemetry, parameters and faults, its own model and a
lower device bound on the target dose (3000 mJ/cm², the vendor's limit for this example). It is a
`drivers.interfaces.LightSource` (INFO.kind "light"), which is what the application uses: `set_target_dose`,
`expected_irradiance_mw_cm2`, `active_channel` "shutter_open". Subclassing the built-in light keeps what the safety
case relies on from it: every target dose is preceded by its backup exposure time (drivers/light.py). Everything else
a driver must do (heartbeat, stop on connect, bounds before sending, faults and disconnects as coded events) is in
drivers.base.SerialDevice and its drivers.link.SerialLink. This module imports `drivers` only.
"""

from __future__ import annotations

from drivers import protocol as p
from drivers.channels import LIGHT_CHANNELS
from drivers.interfaces import LightSource
from drivers.light import BACKUP_TIME_RANGE_S, UVB308Light
from drivers.types import Bound, DriverInfo

MODEL_PREFIX = "EXL-311"
# The example vendor's device limit (refused by the device above it); protocol caps, lower, stay the dose engine's
# and the safety monitor's (CLINICAL.md).
TARGET_DOSE_RANGE_MJ_CM2 = (1.0, 3000.0)


class ExampleLight(UVB308Light, LightSource):
    """The EXL-311 handpiece, a LightSource. Channels, units, plausible ranges and where each travels on the wire:
    drivers.channels.LIGHT_CHANNELS (so the one telemetry decoder reads its frames)."""

    INFO = DriverInfo(
        name="vendor-example-light",
        kind="light",
        version="0.1.0",
        description="EXL-311 narrowband UVB handpiece (example third-party driver), Cicatrix wire protocol v2",
        nominal_rate_hz=2000.0,
        channels=LIGHT_CHANNELS,
        bounds=(Bound("target_dose_mj_cm2", "mJ/cm²", *TARGET_DOSE_RANGE_MJ_CM2),
                Bound("backup_time_s", "s", *BACKUP_TIME_RANGE_S)),
        model_prefixes=(MODEL_PREFIX,),
        protocol_versions=(p.PROTOCOL_VERSION,),
    )
    # A narrowband lamp of about 40 mW/cm²: the backup time is computed against this light's own plausible range.
    EXPECTED_IRRADIANCE_MW_CM2 = (20.0, 100.0)
